//! Text from outside (names, UPNs, files, Graph) made safe to show on a terminal.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: a control character (newlines, escapes,
/// NUL, DEL, C1 controls), a bidirectional control that reorders what follows it (U+202A–202E,
/// U+2066–2069, the marks U+200E/U+200F/U+061C) — a name could then show as another — or an
/// invisible character that can hide text or make two names look alike (zero-width space,
/// word joiner and the invisible operators, the byte-order mark, the Mongolian vowel
/// separator, the soft hyphen). Zero-width (non-)joiners are left as they are: names in
/// Persian, Indic scripts and emoji sequences need them.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `s` with the characters [`needs_escape`] names shown escaped (`\n`, `\u{202e}`), so that a
/// name cannot forge a line, a row, a terminal command or the order of what is shown. Text
/// without any is returned as it is.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
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

    #[test]
    fn bidi_controls_and_invisible_characters_are_shown_escaped() {
        // "Ann\u{202e}nimda" shows as "Annadmin" on a terminal that honours bidi controls.
        assert_eq!(printable("Ann\u{202e}nimda"), "Ann\\u{202e}nimda");
        assert_eq!(
            printable("\u{2066}a\u{2069}\u{200b}b\u{feff}\u{ad}"),
            "\\u{2066}a\\u{2069}\\u{200b}b\\u{feff}\\u{ad}"
        );
        // Joiners are part of names and emoji.
        assert_eq!(printable("می\u{200c}خواهم"), "می\u{200c}خواهم");
        assert_eq!(printable("Zoë Çelik 李娜"), "Zoë Çelik 李娜");
    }
}
