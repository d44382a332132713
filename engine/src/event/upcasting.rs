//! Reading an event written by an older roster: each version's shape brought to today's.

use super::*;

/// Brings an event of an older schema version to the current shape. Each version bump adds
/// one step here, from the oldest up, so that any stored version reaches the current one.
///
/// - 1 → 2: `Planned`/`Imported` gain `reason`, derived from the wording of `detail` that
///   version 1 wrote (the same wording version 2 still writes).
/// - 2 → 3: nothing to change: version 3 adds events (`ObjectUnlisted`, `ChoiceWithdrawn`,
///   `DeletionWithdrawn`) and optional `RunStarted` fields (`base`, `inputsDigest`); a
///   version-2 run is a full run.
pub fn upcast(version: u16, mut event: Value) -> Result<Value, DecodeError> {
    if version == 0 {
        return Err(DecodeError::Upcast {
            version,
            reason: "version 0 was never written".into(),
        });
    }
    if version > EVENT_VERSION {
        return Err(DecodeError::TooNew(version));
    }
    if version < 2 {
        let obj = event.as_object_mut().ok_or_else(|| DecodeError::Upcast {
            version,
            reason: "the event is not a JSON object".into(),
        })?;
        if matches!(
            obj.get("type").and_then(Value::as_str),
            Some("Planned" | "Imported")
        ) {
            let detail = obj
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let reason = reason_from_v1_detail(detail)
                .map(|r| serde_json::to_value(r).expect("reasons serialize"))
                .unwrap_or(Value::Null);
            obj.insert("reason".into(), reason);
        }
    }
    Ok(event)
}

/// The reason a version-1 entry's detail states, in the words the planner used.
fn reason_from_v1_detail(detail: &str) -> Option<Reason> {
    let rules: [(&str, Reason); 10] = [
        ("account disabled in Entra ID", Reason::AccountDisabled),
        ("a local user with login", Reason::LocalUser),
        (
            "an Active Directory (Windows) user with login",
            Reason::WindowsUser,
        ),
        (
            "belongs to an object imported from another organization",
            Reason::OtherTenant,
        ),
        ("is linked to another Entra object", Reason::LinkedElsewhere),
        (
            "exists on the server and is not linked to Entra ID",
            Reason::NameTaken,
        ),
        ("not found in the tenant snapshot", Reason::NotInSnapshot),
        ("no longer on the server", Reason::NotOnServer),
        ("; already disabled", Reason::AlreadyDisabled),
        ("not applied: ", Reason::WriteFailed),
    ];
    rules
        .iter()
        .find(|(words, _)| detail.contains(words))
        .map(|(_, r)| *r)
}
