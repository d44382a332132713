//! Any bytes as a stored event record: decoded, or a decode error — never a panic. A record
//! that decodes encodes back to one that decodes to the same event. The fast decoding path,
//! where it answers, answers exactly as the general decoder.
#![no_main]
use engine::event::{
    decode_current_by_type, decode_header, decode_record, decode_record_general, Hash,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_header(data);
    if let Some(fast) = decode_current_by_type(data, Hash::GENESIS) {
        let general = decode_record_general(data, Hash::GENESIS);
        assert_eq!(Some(&fast), general.as_ref().ok());
    }
    if let Ok(envelope) = decode_record(data, Hash::GENESIS) {
        let again = serde_json::to_vec(&envelope.event).expect("an event serialises");
        let back: engine::Event = serde_json::from_slice(&again).expect("an event round-trips");
        assert_eq!(back, envelope.event);
    }
});
