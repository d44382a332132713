//! `roster events`: events as JSON Lines for jq and external archives. Each line describes
//! itself: type, schema version (as stored), seq, run, time, chain hash, and the payload (in
//! the current shape, upcast if the event is older).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use engine::{Envelope, RunId};

#[derive(Serialize)]
pub struct EventLine<'a> {
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub version: u16,
    pub seq: u64,
    pub run: RunId,
    pub time: &'a DateTime<Utc>,
    pub hash: String,
    pub payload: Value,
}

pub fn event_line(env: &Envelope) -> EventLine<'_> {
    let mut payload = serde_json::to_value(&env.event).unwrap_or(Value::Null);
    if let Some(obj) = payload.as_object_mut() {
        obj.remove("type");
    }
    EventLine {
        event_type: env.event.type_name(),
        version: env.version,
        seq: env.seq.0,
        run: env.run,
        time: &env.time,
        hash: env.hash.to_hex(),
        payload,
    }
}
