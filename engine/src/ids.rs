//! Newtypes for the identifiers roster reasons about.
//!
//! Each is parsed once at the boundary (fixture, Graph page, CLI argument, stored event) and is
//! valid from then on: an `ObjectId` is always a lowercase GUID, a `RunId` always a UUID.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a string is not the identifier it was supposed to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not a GUID (expected 8-4-4-4-12 hexadecimal digits)")]
pub struct IdError {
    pub what: &'static str,
    pub value: String,
}

fn parse_guid(what: &'static str, s: &str) -> Result<[u8; 36], IdError> {
    let bytes = s.as_bytes();
    let well_formed = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    match <[u8; 36]>::try_from(bytes) {
        Ok(mut guid) if well_formed => {
            guid.make_ascii_lowercase();
            Ok(guid)
        }
        _ => {
            // Keep hostile input out of error messages' way: cap what we echo back.
            let value: String = s.chars().take(64).collect();
            Err(IdError { what, value })
        }
    }
}

macro_rules! guid_newtype {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        ///
        /// Held inline as its 36 ASCII characters: no allocation, and a clone is a copy. A
        /// large tenant holds hundreds of thousands of them (every membership is one).
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; 36]);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                parse_guid($what, s).map(Self)
            }
            pub fn as_str(&self) -> &str {
                std::str::from_utf8(&self.0).expect("parse admits ASCII only")
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // Read from the decoder's own buffer: a large run holds ids by the million.
                struct Id;
                impl serde::de::Visitor<'_> for Id {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} (a GUID)", $what)
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        $name::parse(s).map_err(E::custom)
                    }
                }
                d.deserialize_str(Id)
            }
        }
    };
}

guid_newtype!(
    /// The id of an Entra ID directory object (user or group), stored lowercase.
    ObjectId,
    "object id"
);
guid_newtype!(
    /// The id of an Entra ID tenant (the directory an org reads from), stored lowercase.
    TenantId,
    "tenant id"
);

/// One import (or dry run): a UUID v7, so ids sort by start time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub uuid::Uuid);

impl RunId {
    /// A new id for a run started at `at`; the random part comes from `entropy` so that
    /// callers (and tests) decide where randomness comes from.
    pub fn new(at: chrono::DateTime<chrono::Utc>, entropy: [u8; 10]) -> Self {
        let millis = at.timestamp_millis().max(0) as u64;
        RunId(uuid::Builder::from_unix_timestamp_millis(millis, &entropy).into_uuid())
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// When the run started, to the millisecond, as its id says.
    pub fn started_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let (secs, nanos) = self.0.get_timestamp()?.to_unix();
        chrono::DateTime::from_timestamp(secs as i64, nanos)
    }
}

impl FromStr for RunId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(RunId)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({})", self.0)
    }
}

/// Position of an event in the global log; the first event has sequence number 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

/// The form in which logins and group names are compared: without surrounding whitespace,
/// without regard to case (as Entra compares UPNs), and in Unicode NFC, so that `josé` typed
/// precomposed or decomposed, or ` a@contoso.com `, is the same login. Records keep their
/// original spelling for display.
pub fn fold_case(s: &str) -> String {
    let s = trimmed(s);
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    use unicode_normalization::UnicodeNormalization;
    s.to_lowercase().nfc().collect()
}

/// `s.trim()`, at once when `s` begins and ends with a printable ASCII character (as every
/// login does): whitespace at an end, Unicode's included, would begin or end with another byte.
fn trimmed(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// `fold_case(s) == folded`, without making the fold when `s` is ASCII.
pub fn folds_to(s: &str, folded: &str) -> bool {
    let t = trimmed(s);
    if t.is_ascii() {
        return t.len() == folded.len()
            && t.bytes()
                .zip(folded.bytes())
                .all(|(a, b)| a.to_ascii_lowercase() == b);
    }
    fold_case(s) == folded
}

/// `fold_case(a).cmp(&fold_case(b))`, without making either when both are ASCII (as nearly
/// every login is): compared byte by byte, lowercased on the way.
pub fn cmp_folded(a: &str, b: &str) -> std::cmp::Ordering {
    let (ta, tb) = (trimmed(a), trimmed(b));
    if ta.is_ascii() && tb.is_ascii() {
        return ta
            .bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(tb.bytes().map(|c| c.to_ascii_lowercase()));
    }
    fold_case(a).cmp(&fold_case(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_compare_trimmed_case_folded_and_composed() {
        assert_eq!(fold_case(" A@Contoso.com "), fold_case("a@contoso.com"));
        assert_eq!(fold_case("jos\u{e9}@x.com"), fold_case("jose\u{301}@x.com"));
        assert_eq!(fold_case("JOSE\u{301}@X.COM"), fold_case("jos\u{e9}@x.com"));
        assert_ne!(fold_case("jose@x.com"), fold_case("jos\u{e9}@x.com"));
        for (a, b) in [
            (" B@x.com", "a@X.com "),
            ("a@x.com", "A@X.COM"),
            ("ab", "a"),
            ("a b", "a"),
            ("jos\u{e9}@x.com", "JOSE\u{301}@X.COM"),
            ("jos\u{e9}", "josf"),
            ("\u{c9}mile", "emile"),
            ("\u{a0}a ", "A"),
            ("a\u{3000}", "\ta"),
            ("\u{1}a", "a"),
        ] {
            assert_eq!(
                cmp_folded(a, b),
                fold_case(a).cmp(&fold_case(b)),
                "{a:?} {b:?}"
            );
            assert_eq!(
                cmp_folded(b, a),
                fold_case(b).cmp(&fold_case(a)),
                "{b:?} {a:?}"
            );
            for (s, other) in [(a, b), (b, a)] {
                assert!(folds_to(s, &fold_case(s)));
                assert_eq!(
                    folds_to(s, &fold_case(other)),
                    fold_case(s) == fold_case(other)
                );
                assert!(!folds_to(s, &s.to_uppercase()) || fold_case(s) == s.to_uppercase());
            }
        }
    }

    #[test]
    fn object_ids_are_normalised_guids() {
        let id = ObjectId::parse("6EA91A8D-E32E-41A1-B7BD-D2D185EED0E0").unwrap();
        assert_eq!(id.as_str(), "6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0");
        for bad in [
            "",
            "632f6bb2-3ec8-4c1f-9073-0027a8c6859",
            "6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0x",
            "6ea91a8de32e-41a1-b7bd-d2d185eed0e0-",
            "zzzzzzzz-e32e-41a1-b7bd-d2d185eed0e0",
        ] {
            assert!(ObjectId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn run_ids_sort_by_time() {
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t1 = t0 + chrono::Duration::milliseconds(1);
        let a = RunId::new(t0, [0xff; 10]);
        let b = RunId::new(t1, [0; 10]);
        assert!(a < b);
        assert_eq!(a.0.get_version_num(), 7);
    }
}
