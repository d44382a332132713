//! URLs as roster says them back: never with the credentials someone put in them.

/// `given` as it may be shown (in a message, a table, a log line): a URL without its user
/// name and password; text that is not a URL cut before any `@` (where credentials would be)
/// and bounded, escaped as any outside text is.
pub fn shown(given: &str) -> String {
    let given = given.trim();
    let text = match url::Url::parse(given) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => match given.rfind('@') {
            Some(at) => format!("…{}", &given[at..]),
            None => given.to_owned(),
        },
    };
    let bounded: String = text.chars().take(300).collect();
    engine::text::printable(&bounded).into_owned()
}

/// Whether `given` carries credentials (`user:password@host`).
pub fn has_credentials(url: &url::Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_never_shown() {
        assert_eq!(
            shown("https://admin:hunter2@scim.example.com/v2"),
            "https://scim.example.com/v2"
        );
        assert_eq!(
            shown("http://127.0.0.1:8080/v2"),
            "http://127.0.0.1:8080/v2"
        );
        let odd = shown("not a url admin:hunter2@host");
        assert!(!odd.contains("hunter2"), "{odd}");
        assert!(!shown("https://a:b@h/\u{1b}[2J").contains('\u{1b}'));
    }
}
