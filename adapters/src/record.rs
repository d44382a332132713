//! `roster record ORG --out TENANT.json`: save a tenant as a fixture that `org add --fixture`
//! accepts. Nothing secret is in a snapshot (directory attributes only); with `--anonymize`,
//! names, UPNs and mails are replaced consistently (one user keeps one pseudonym across its
//! name, UPN and mail; one domain keeps one pseudonym everywhere; guests keep `#EXT#`), so the
//! recording plans exactly as the tenant does.

use std::collections::HashMap;
use std::path::Path;

use engine::format_smolstr;
use engine::model::TenantSnapshot;

use crate::fixture::{to_tenant_file, TenantFile};
use crate::target::write_json_atomic;

/// The fixture form of `snapshot`, anonymised if asked.
pub fn recording(snapshot: &TenantSnapshot, anonymize: bool) -> TenantFile {
    if anonymize {
        to_tenant_file(&anonymized(snapshot))
    } else {
        to_tenant_file(snapshot)
    }
}

pub fn write_recording(
    path: &Path,
    snapshot: &TenantSnapshot,
    anonymize: bool,
) -> std::io::Result<()> {
    write_json_atomic(path, &recording(snapshot, anonymize))
}

/// Pseudonyms for domains, in order of first appearance.
#[derive(Default)]
struct Domains(HashMap<String, String>);

impl Domains {
    fn map(&mut self, domain: &str) -> String {
        let next = self.0.len() + 1;
        self.0
            .entry(domain.to_lowercase())
            .or_insert_with(|| format!("domain{next}.example"))
            .clone()
    }
}

fn split_address(s: &str) -> (&str, &str) {
    s.rsplit_once('@').unwrap_or((s, "unknown"))
}

/// A copy of `snapshot` with people's and groups' names, UPNs and mails replaced.
pub fn anonymized(snapshot: &TenantSnapshot) -> TenantSnapshot {
    let mut s = snapshot.clone();
    let mut domains = Domains::default();
    for (i, u) in s.users.iter_mut().enumerate() {
        let n = i + 1;
        let (local, domain) = split_address(&u.user_principal_name);
        let home = domains.map(domain);
        u.user_principal_name = match local.split_once("#EXT#") {
            // A guest: name_externaldomain#EXT#@home.
            Some((external, _)) => {
                let ext_domain = external.rsplit_once('_').map_or("external", |(_, d)| d);
                format_smolstr!("user{n:04}_{}#EXT#@{home}", domains.map(ext_domain))
            }
            None => format_smolstr!("user{n:04}@{home}"),
        };
        u.mail = u
            .mail
            .as_deref()
            .map(|m| format_smolstr!("user{n:04}@{}", domains.map(split_address(m).1)));
        u.display_name = u
            .display_name
            .as_ref()
            .map(|_| format_smolstr!("User {n:04}"));
        u.given_name = u
            .given_name
            .as_ref()
            .map(|_| format_smolstr!("Given{n:04}"));
        u.surname = u.surname.as_ref().map(|_| format_smolstr!("Surname{n:04}"));
    }
    for (i, g) in s.groups.iter_mut().enumerate() {
        let n = i + 1;
        g.display_name = Some(format_smolstr!("Group {n:04}"));
        g.description = g
            .description
            .as_ref()
            .map(|_| format_smolstr!("Description of group {n:04}"));
        g.mail = g
            .mail
            .as_deref()
            .map(|m| format_smolstr!("group{n:04}@{}", domains.map(split_address(m).1)));
    }
    for (i, d) in s.deleted_users.iter_mut().enumerate() {
        d.display_name = d
            .display_name
            .as_ref()
            .map(|_| format!("Deleted user {:04}", i + 1));
    }
    for (i, d) in s.deleted_groups.iter_mut().enumerate() {
        d.display_name = d
            .display_name
            .as_ref()
            .map(|_| format!("Deleted group {:04}", i + 1));
    }
    s
}
