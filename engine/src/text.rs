//! Text from outside (names, UPNs, files, Graph) made safe to show on a terminal.

use std::borrow::Cow;

/// `s` with its control characters (newlines, escapes, NUL, DEL, C1 controls) shown escaped,
/// so that a name cannot forge a line, a row or a terminal command. Text without any is
/// returned as it is.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(printable("Ann"), "Ann");
        assert!(matches!(printable("Ann"), Cow::Borrowed(_)));
        assert_eq!(
            printable("a\nerror: forged\u{1b}[2J\u{9b}x"),
            "a\\nerror: forged\\u{1b}[2J\\u{9b}x"
        );
    }
}
