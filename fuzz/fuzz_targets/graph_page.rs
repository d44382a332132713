//! Any bytes as a Graph response body: every shape roster reads parses or is refused, and
//! parsed users convert or give a reason.
#![no_main]
use adapters::wire::{
    BatchResponse, GraphDeletedItem, GraphErrorBody, GraphGroup, GraphMember, GraphUser, Page,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = serde_json::from_slice::<Page<GraphUser>>(data) {
        for user in page.value {
            if let Err(e) = user.into_entra() {
                roster_fuzz::one_line("", &e.to_string());
            }
        }
    }
    if let Ok(page) = serde_json::from_slice::<Page<GraphGroup>>(data) {
        for group in page.value {
            let _ = group.into_entra(Vec::new());
        }
    }
    if let Ok(page) = serde_json::from_slice::<Page<GraphMember>>(data) {
        for member in page.value {
            let _ = member.member_type();
        }
    }
    let _ = serde_json::from_slice::<Page<GraphDeletedItem>>(data);
    let _ = serde_json::from_slice::<GraphErrorBody>(data);
    let _ = serde_json::from_slice::<BatchResponse>(data);
});
