//! A JSON object read a block at a time: each member's value — and each element of the arrays
//! a caller names — handed over as the bytes of that one value, for `serde_json` to read as it
//! would read them inside the whole document. A large tenant file is never held whole.
//!
//! Only the plain shape is followed: an object whose keys carry no escapes, arrays where the
//! caller expects them, nesting far below `serde_json`'s limit. Anything else — and any
//! read that fails — ends the walk with `None`, and the caller reads the document whole,
//! which says what is wrong exactly as it always did. So a document this walk accepts reads
//! as the whole read would read it, and one it does not is the whole read's to judge.

use std::io::Read;

/// Bytes read at a time.
const BLOCK: usize = 1 << 20;

/// Deeper than this and the whole read decides (`serde_json` stops at 128 levels).
const MAX_DEPTH: usize = 100;

/// One thing the walk found in the top-level object.
pub(crate) enum Member<'a> {
    /// A member's whole value (of a key not named as an array).
    Value { key: &'a str, json: &'a [u8] },
    /// The start of a named array: each of its elements follows as an `Element`.
    Array { key: &'a str },
    /// One element of the named array `key`.
    Element { key: &'a str, json: &'a [u8] },
}

/// Walks the top-level object of `reader`, giving `visit` each member (the named `arrays`
/// element by element). `None` when the document is not of the plain shape, a read fails,
/// or `visit` says `None`: the caller then reads the document whole.
pub(crate) fn walk_object<R: Read>(
    reader: R,
    arrays: &[&str],
    mut visit: impl FnMut(Member<'_>) -> Option<()>,
) -> Option<()> {
    let mut s = Scanner {
        reader,
        buf: Vec::with_capacity(BLOCK),
        pos: 0,
        eof: false,
    };
    s.expect(b'{')?;
    if s.next_is(b'}')? {
        return Some(());
    }
    loop {
        let key = s.key()?;
        s.expect(b':')?;
        if arrays.contains(&key.as_str()) && s.peek()? == b'[' {
            visit(Member::Array { key: &key })?;
            s.expect(b'[')?;
            let mut more = !s.next_is(b']')?;
            while more {
                let json = s.take_value()?;
                visit(Member::Element { key: &key, json })?;
                more = s.after_item(b']')?;
            }
        } else {
            let json = s.take_value()?;
            visit(Member::Value { key: &key, json })?;
        }
        if !s.after_item(b'}')? {
            return Some(());
        }
    }
}

/// The unread part of the document: `buf[pos..]`, more read as needed.
struct Scanner<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read> Scanner<R> {
    /// Reads another block after what is held, letting go of what was read. `false` at the
    /// end of the document; `None` when the read fails.
    fn more(&mut self) -> Option<bool> {
        if self.eof {
            return Some(false);
        }
        self.buf.drain(..self.pos);
        self.pos = 0;
        let held = self.buf.len();
        self.buf.resize(held + BLOCK, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[held..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        };
        self.buf.truncate(held + n);
        self.eof = n == 0;
        Some(n > 0)
    }

    /// The next byte that is not JSON white space, not consumed.
    fn peek(&mut self) -> Option<u8> {
        loop {
            while let Some(&b) = self.buf.get(self.pos) {
                match b {
                    b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                    _ => return Some(b),
                }
            }
            if !self.more()? {
                return None;
            }
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// Whether the next byte is `byte`, consumed if it is.
    fn next_is(&mut self, byte: u8) -> Option<bool> {
        let is = self.peek()? == byte;
        self.pos += usize::from(is);
        Some(is)
    }

    /// What follows an item of an object or array: `true` after a comma (another item
    /// comes), `false` at `close`; anything else is not the plain shape.
    fn after_item(&mut self, close: u8) -> Option<bool> {
        let next = self.peek()?;
        self.pos += 1;
        match next {
            b',' => Some(true),
            b if b == close => Some(false),
            _ => None,
        }
    }

    /// A key without escapes.
    fn key(&mut self) -> Option<String> {
        if self.peek()? != b'"' {
            return None;
        }
        let token = self.take_value()?;
        let inner = &token[1..token.len() - 1];
        if inner.contains(&b'\\') {
            return None;
        }
        Some(std::str::from_utf8(inner).ok()?.to_owned())
    }

    /// The bytes of the value that starts at the next byte, consumed.
    fn take_value(&mut self) -> Option<&[u8]> {
        let len = self.value()?;
        self.pos += len;
        Some(&self.buf[self.pos - len..self.pos])
    }

    /// The length of the value that starts at the next byte (white space skipped), all of it
    /// held. Only its extent is found here: its content is `serde_json`'s to check.
    fn value(&mut self) -> Option<usize> {
        if !matches!(self.peek()?, b'{' | b'[' | b'"') {
            return self.scalar();
        }
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let mut i = 0;
        loop {
            let Some(&b) = self.buf.get(self.pos + i) else {
                if !self.more()? {
                    return None;
                }
                continue;
            };
            i += 1;
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => {
                        in_string = false;
                        if depth == 0 {
                            return Some(i);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return None;
                    }
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
    }

    /// The length of a number or a literal: up to the delimiter after it.
    fn scalar(&mut self) -> Option<usize> {
        let mut i = 0;
        loop {
            let Some(&b) = self.buf.get(self.pos + i) else {
                if !self.more()? {
                    return (i > 0).then_some(i);
                }
                continue;
            };
            if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                return (i > 0).then_some(i);
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the walk gives, as text, reading `doc` `chunk` bytes at a time.
    fn walked(doc: &str, chunk: usize) -> Option<Vec<String>> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut seen = Vec::new();
        walk_object(Trickle(doc.as_bytes(), chunk), &["users"], |m| {
            seen.push(match m {
                Member::Value { key, json } => {
                    format!("{key}={}", std::str::from_utf8(json).unwrap())
                }
                Member::Array { key } => format!("{key}["),
                Member::Element { key, json } => {
                    format!("{key}:{}", std::str::from_utf8(json).unwrap())
                }
            });
            Some(())
        })
        .map(|()| seen)
    }

    #[test]
    fn each_value_and_element_is_handed_over_whole_however_the_reads_are_cut() {
        let doc = r#" { "tenantId" : "t", "n": -1.5e3 ,"x":[1,{"a":"}\"]"}],
            "users": [ {"id": "a", "m": [1, 2]}, {"id": "b\\"} ,3, "s", true],
            "users2": [1], "e": [], "o": {}, "z": null } trailing"#;
        let expected = [
            r#"tenantId="t""#,
            "n=-1.5e3",
            r#"x=[1,{"a":"}\"]"}]"#,
            "users[",
            r#"users:{"id": "a", "m": [1, 2]}"#,
            r#"users:{"id": "b\\"}"#,
            "users:3",
            r#"users:"s""#,
            "users:true",
            "users2=[1]",
            "e=[]",
            "o={}",
            "z=null",
        ];
        for chunk in [1, 2, 3, 7, 64, BLOCK] {
            assert_eq!(
                walked(doc, chunk).unwrap(),
                expected,
                "read {chunk} at a time"
            );
        }
        assert_eq!(walked("{}", 1).unwrap(), Vec::<String>::new());
        assert_eq!(walked(r#"{"users": []}"#, 1).unwrap(), ["users["]);
    }

    #[test]
    fn what_is_not_the_plain_shape_is_left_to_the_whole_read() {
        for doc in [
            "",
            "[]",
            "{",
            r#"{"a": 1"#,
            r#"{"a" 1}"#,
            r#"{"a": 1 "b": 2}"#,
            r#"{"users": [1 2]}"#,
            r#"{"users": [1,"#,
            r#"{"us\u0065rs": []}"#,
            r#"{"a": "unterminated}"#,
            r#"{"a": [}"#,
            r#"{1: 2}"#,
        ] {
            assert!(walked(doc, 3).is_none(), "{doc:?} walked");
        }
        let deep = format!(r#"{{"a": {}{}}}"#, "[".repeat(101), "]".repeat(101));
        assert!(walked(&deep, 64).is_none(), "nested past the bound");
        let fine = format!(r#"{{"a": {}{}}}"#, "[".repeat(99), "]".repeat(99));
        assert!(walked(&fine, 64).is_some());
    }
}
