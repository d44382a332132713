//! Reading a file from outside, bounded: it must be a regular file, of a stated size at most
//! (an HTTP body is bounded in [`crate::http`]). And an I/O error said in words.

use std::path::Path;

/// The bytes of `path`, which must be a regular file (a FIFO would block, a device such as
/// `/dev/zero` would never end) of at most `limit` bytes — checked before reading, and again
/// while reading, in case the file grows.
pub fn read_regular_file(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let (file, len) = open_regular_file(path, limit)?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

/// `path` opened for reading, with its length, once it is shown to be a regular file of at
/// most `limit` bytes (see [`read_regular_file`]); a reader must still stop past `limit`.
pub fn open_regular_file(path: &Path, limit: u64) -> std::io::Result<(std::fs::File, u64)> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is a directory, expected a file",
        ));
    }
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a pipe, a device or a socket); give the path of a file",
        ));
    }
    if meta.len() > limit {
        return Err(too_large(limit));
    }
    Ok((std::fs::File::open(path)?, meta.len()))
}

/// A file over the bound.
pub fn too_large(limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("larger than the {limit} bytes roster reads"),
    )
}

/// An I/O error in words, without the "(os error N)" noise.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_owned(),
                None => s,
            }
        }
    }
}
