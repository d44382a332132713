//! The fast decoder: the event types a run holds by the hundred thousand, decoded straight
//! into their type from the layout `encode_record` writes, and the header of any record read
//! from its fixed prefix. The general decoder (`super::decode_record_general`) defines what a
//! record means; everything here either agrees with it or answers `None` and leaves the record
//! to it (`engine/tests/events.rs` and the `event` fuzz target compare the two).

use std::fmt;

use serde::Deserialize;

use super::{Envelope, Event, GroupSeen, Hash, RecordHeader, UserSeen};
use crate::ids::Seq;

/// The fast path for the events a run holds by the hundred thousand: a current-version record
/// laid out as `encode_record` writes it, whose type the header names, is decoded straight
/// into that type. (serde decodes an internally tagged enum by buffering every value first,
/// which costs more than the decoding itself.) Anything else, and anything this path cannot
/// read, returns `None` and takes the general path, which decides what is accepted.
#[doc(hidden)]
pub fn decode_current_by_type(bytes: &[u8], hash: Hash) -> Option<Envelope> {
    fn json<'a, T: Deserialize<'a>>(s: &'a str) -> Option<T> {
        serde_json::from_str(s).ok()
    }

    let (header, time, event) = split_record(bytes)?;
    if !super::has_current_shape(header.version) {
        return None;
    }
    // Checked once here, the parser then reads strings without checking each.
    let event = std::str::from_utf8(event).ok()?;
    let event = match header.event_type.as_str() {
        // The seen-events read their keys in order, so a second "type" cannot pass.
        "UserSeen" => json::<SeenFast<false>>(event)?.0?,
        "GroupSeen" => json::<SeenFast<true>>(event)?.0?,
        other => {
            // The general decoder refuses a second "type" key at the event's top level; the
            // types below would ignore it, so such a record is left to the general decoder.
            if !one_type_key(event) {
                return None;
            }
            match other {
                "ObjectDeleted" => Event::ObjectDeleted(json(event)?),
                "ActionChosen" => Event::ActionChosen(json(event)?),
                "Planned" => Event::Planned(json(event)?),
                "Imported" => Event::Imported(json(event)?),
                _ => return None,
            }
        }
    };
    Some(Envelope {
        seq: header.seq,
        run: header.run,
        time: time.parse().ok()?,
        version: header.version,
        hash,
        event,
    })
}

/// Whether an event object (which starts `{"type":`) holds the key `type` once at its top
/// level. Without a backslash no key can spell `type` any other way, so when the bytes `"type"`
/// occur once, that is the answer; otherwise the keys are read to find out.
fn one_type_key(event: &str) -> bool {
    let b = event.as_bytes();
    let unescaped = memchr::memchr(b'\\', b).is_none();
    if unescaped && memchr::memmem::find_iter(b, b"\"type\"").nth(1).is_none() {
        return true;
    }
    serde_json::from_str::<TypeKeys>(event).is_ok_and(|k| k.0 == 1)
}

/// A `UserSeen` (`GROUP` false) or `GroupSeen` event laid out as `encode_record` writes it —
/// `{"type":…,"source":…,"user":{…}}` — decoded in one pass: the source comes before the
/// object, so the object decodes straight into its type. Any other layout is `None` (the
/// general decoder decides about it).
struct SeenFast<const GROUP: bool>(Option<Event>);

impl<'de, const GROUP: bool> Deserialize<'de> for SeenFast<GROUP> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        enum Source {
            Entra,
            DeletedItems,
            Server,
        }
        struct Fields<const GROUP: bool>;
        impl<'de, const GROUP: bool> serde::de::Visitor<'de> for Fields<GROUP> {
            type Value = SeenFast<GROUP>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a seen-event object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let none = Ok(SeenFast(None));
                if map.next_key::<&str>()? != Some("type") {
                    return none;
                }
                map.next_value::<serde::de::IgnoredAny>()?;
                if map.next_key::<&str>()? != Some("source") {
                    return none;
                }
                let source: Source = map.next_value()?;
                if map.next_key::<&str>()? != Some(if GROUP { "group" } else { "user" }) {
                    return none;
                }
                let event = if GROUP {
                    Event::GroupSeen(match source {
                        Source::Entra => GroupSeen::Entra {
                            group: map.next_value()?,
                        },
                        Source::DeletedItems => GroupSeen::DeletedItems {
                            group: map.next_value()?,
                        },
                        Source::Server => GroupSeen::Server {
                            group: map.next_value()?,
                        },
                    })
                } else {
                    Event::UserSeen(match source {
                        Source::Entra => UserSeen::Entra {
                            user: map.next_value()?,
                        },
                        Source::DeletedItems => UserSeen::DeletedItems {
                            user: map.next_value()?,
                        },
                        Source::Server => UserSeen::Server {
                            user: map.next_value()?,
                        },
                    })
                };
                if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
                    return none;
                }
                Ok(SeenFast(Some(event)))
            }
        }
        d.deserialize_map(Fields::<GROUP>)
    }
}

/// How many times an object's top level holds the key `type` (values skipped, keys unescaped).
struct TypeKeys(usize);

impl<'de> Deserialize<'de> for TypeKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = TypeKeys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TypeKeys, A::Error> {
                let mut n = 0;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    n += usize::from(key == "type");
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                Ok(TypeKeys(n))
            }
        }
        d.deserialize_map(Keys)
    }
}

/// The header of a record as `encode_record` lays it out:
/// `{"seq":N,"run":"UUID","time":"…","version":V,"event":{"type":"Name",`.
pub(super) fn header_prefix(b: &[u8]) -> Option<RecordHeader> {
    split_record(b).map(|(header, _, _)| header)
}

/// A record as `encode_record` lays it out, split into its header, its time and the bytes of
/// its event object (from `{"type":` to the event's closing brace).
fn split_record(b: &[u8]) -> Option<(RecordHeader, &str, &[u8])> {
    fn take<'a>(b: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
        b.strip_prefix(prefix)
    }
    // Only what JSON itself admits: no leading zeros, no raw control characters in strings
    // (anything else is left to the full parser, which rejects it).
    fn digits(b: &[u8]) -> Option<(u64, &[u8])> {
        let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 19 || (n > 1 && b[0] == b'0') {
            return None;
        }
        let v = std::str::from_utf8(&b[..n]).ok()?.parse().ok()?;
        Some((v, &b[n..]))
    }
    fn string(b: &[u8]) -> Option<(&str, &[u8])> {
        let b = take(b, b"\"")?;
        let n = b.iter().position(|c| *c == b'"')?;
        let s = std::str::from_utf8(&b[..n]).ok()?;
        if s.bytes().any(|c| c == b'\\' || c < 0x20) {
            return None;
        }
        Some((s, &b[n + 1..]))
    }
    let b = take(b, b"{\"seq\":")?;
    let (seq, b) = digits(b)?;
    let b = take(b, b",\"run\":")?;
    let (run, b) = string(b)?;
    let b = take(b, b",\"time\":")?;
    let (time, b) = string(b)?;
    let b = take(b, b",\"version\":")?;
    let (version, b) = digits(b)?;
    let b = take(b, b",\"event\":")?;
    // The event object is the rest, less the record's closing brace.
    let event = b.strip_suffix(b"}")?;
    let b = take(b, b"{\"type\":")?;
    let (event_type, _) = string(b)?;
    let header = RecordHeader {
        seq: Seq(seq),
        run: run.parse().ok()?,
        version: u16::try_from(version).ok()?,
        event_type: event_type.to_owned(),
    };
    Some((header, time, event))
}
