//! Who connects, and with which password, when the URL does not say: `$PGUSER`, then
//! `$PGPASSWORD`, then the password file (`$PGPASSFILE`, else `~/.pgpass`), as libpq reads
//! them. Nothing here is ever shown: messages name the database by host, port and name only.

use std::path::PathBuf;

use postgres::config::Host;

/// Fills in the user and password `config` lacks from the environment and the password file.
pub(super) fn complete(config: &mut postgres::Config) {
    if config.get_user().is_none() {
        if let Some(user) = std::env::var("PGUSER").ok().filter(|u| !u.is_empty()) {
            config.user(&user);
        }
    }
    if config.get_password().is_some() {
        return;
    }
    if let Some(password) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
        config.password(password);
        return;
    }
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        // libpq matches a socket connection as `localhost`.
        Some(Host::Unix(_)) | None => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let database = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or_default()
        .to_owned();
    let user = config.get_user().unwrap_or_default().to_owned();
    let Some(text) = password_file() else {
        return;
    };
    if let Some(password) = lookup(&text, [&host, &port, &database, &user]) {
        config.password(password);
    }
}

/// The password file's text, if there is one that only its owner can read (libpq ignores a
/// file others can read, and so does roster).
fn password_file() -> Option<String> {
    let path = match std::env::var_os("PGPASSFILE") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".pgpass"),
    };
    let meta = std::fs::metadata(&path).ok()?;
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 || meta.len() > 1 << 20 {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

/// The password of the first line whose host, port, database and user match `wanted` (`*`
/// matches anything; `\:` and `\\` are a colon and a backslash).
fn lookup(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(fields)
        .find(|f| {
            f[..4]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field == "*" || field == want)
        })
        .map(|mut f| std::mem::take(&mut f[4]))
}

/// A line's five fields, unescaped.
fn fields(line: &str) -> Option<[String; 5]> {
    let mut out: Vec<String> = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut()?.push(chars.next()?),
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut()?.push(c),
        }
    }
    out.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_line_gives_the_password() {
        let text = "# a comment\n\
                    db.example.com:5432:roster:ann:first\n\
                    *:*:roster:*:any\\:thing\\\\\n\
                    db.example.com:5432:*:bob:second\n";
        let want = |h, p, d, u| lookup(text, [h, p, d, u]);
        assert_eq!(
            want("db.example.com", "5432", "roster", "ann").as_deref(),
            Some("first")
        );
        assert_eq!(
            want("localhost", "5433", "roster", "eve").as_deref(),
            Some("any:thing\\")
        );
        assert_eq!(
            want("db.example.com", "5432", "other", "bob").as_deref(),
            Some("second")
        );
        assert_eq!(want("db.example.com", "5432", "other", "ann"), None);
        assert_eq!(
            lookup("too:few:fields\n", ["too", "few", "fields", ""]),
            None
        );
    }
}
