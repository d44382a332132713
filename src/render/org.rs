//! Organizations and their tenants: `org …`, `search`, `record`, the device-code prompt.

use super::*;

pub fn search_table(rows: &[&SearchRow], ids: bool) -> String {
    let header = ["Name", "Type", "Department", "Description", "UPN", "Id"];
    let mut t = table(&header[..if ids { 6 } else { 5 }]);
    for r in rows {
        let mut row = vec![
            cell(&r.name),
            r.row_type.as_str().to_owned(),
            text(r.department.as_deref()),
            text(r.description.as_deref()),
            text(r.upn.as_deref()),
        ];
        if ids {
            row.push(r.id.to_string());
        }
        t.add_row(row);
    }
    unwrapped(&mut t, 5);
    let hidden = match ids {
        true => "",
        false => " (ids with --wide or --json)",
    };
    format!("{t}\n{}{hidden}\n", count(rows.len(), "entry", "entries"))
}

/// The device-code sign-in, as the admin reads it.
pub fn device_prompt(p: &adapters::auth::DevicePrompt) -> String {
    format!(
        "To sign in, open {} and enter the code {} (multi-factor authentication happens in the browser).\n",
        cell(&p.verification_uri),
        cell(&p.user_code)
    )
}

/// `roster org list`.
pub fn orgs_table(orgs: &[adapters::org::OrgConfig]) -> String {
    use adapters::org::OrgSource;
    if orgs.is_empty() {
        return "No orgs yet; add one with `roster org add NAME --fixture TENANT.json`.\n".into();
    }
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(["Org", "Tenant", "Source", "Added (UTC)"]);
    for o in orgs {
        let source = match &o.source {
            OrgSource::Fixture { path } => format!("fixture {}", cell(&path.display().to_string())),
            OrgSource::Graph(g) => format!(
                "graph {} ({})",
                cell(g.graph_url.as_deref().unwrap_or(g.cloud.graph_root())),
                match g.auth {
                    adapters::auth::AuthMode::DeviceCode => "device code",
                    adapters::auth::AuthMode::ClientSecret => "client secret",
                    adapters::auth::AuthMode::Certificate => "certificate",
                    adapters::auth::AuthMode::Federated => "federated token",
                }
            ),
        };
        t.add_row(vec![
            cell(&o.name),
            o.tenant_id.to_string(),
            source,
            o.added_at.format("%Y-%m-%d %H:%M").to_string(),
        ]);
    }
    format!("{t}\n")
}

/// `roster org add --fixture`.
pub fn org_added_from_fixture(added: &app::orgs::FixtureOrg, given: &std::path::Path) -> String {
    format!(
        "Added org {}: tenant {}, {} users, {} groups (fixture {}).\n",
        cell(&added.org.name),
        added.org.tenant_id,
        added.loaded.snapshot.users.len(),
        added.loaded.snapshot.groups.len(),
        cell(&given.display().to_string())
    )
}

/// `roster org set`.
pub fn org_set(set: &app::orgs::FixtureOrg, given: &std::path::Path) -> String {
    format!(
        "Org {} now reads fixture {}: tenant {}, {} users, {} groups; its runs stay its own.\n",
        cell(&set.org.name),
        cell(&given.display().to_string()),
        set.org.tenant_id,
        set.loaded.snapshot.users.len(),
        set.loaded.snapshot.groups.len(),
    )
}

/// `roster org add --tenant`.
pub fn org_added_live(added: &app::orgs::AddedGraphOrg) -> String {
    use adapters::auth::AuthMode;
    let org = &added.org;
    let auth = match &org.source {
        adapters::org::OrgSource::Graph(g) => g.auth,
        adapters::org::OrgSource::Fixture { .. } => AuthMode::DeviceCode,
    };
    let how = match (auth, &added.certificate) {
        (AuthMode::DeviceCode, _) => {
            "signed in (device code); the refresh token is cached so later commands do not prompt".to_owned()
        }
        (AuthMode::ClientSecret, _) => "signed in with the client secret (app-only)".to_owned(),
        (AuthMode::Certificate, Some(c)) => format!(
            "signed in with the certificate {} (app-only; it expires on {}, renew and upload it before then)",
            c.thumbprint,
            c.not_after.format("%Y-%m-%d")
        ),
        (AuthMode::Certificate, None) => "signed in with the certificate (app-only)".to_owned(),
        (AuthMode::Federated, _) => {
            "signed in with the platform's federated token (app-only; the token file is read again at every sign-in)".to_owned()
        }
    };
    format!(
        "Added org {}: tenant {}, {how}; users and groups are readable.\n",
        cell(&org.name),
        org.tenant_id
    )
}

/// `roster org remove`, `login`, `logout`.
pub fn org_removed(name: &str) -> String {
    format!("Removed org {}; its runs stay in the log.\n", cell(name))
}

pub fn signed_in(org: &adapters::org::OrgConfig) -> String {
    format!(
        "Signed in to org {} (tenant {}).\n",
        cell(&org.name),
        org.tenant_id
    )
}

pub fn signed_out(name: &str, had_tokens: bool) -> String {
    if had_tokens {
        format!(
            "Signed out of org {}: its tokens are deleted.\n",
            cell(name)
        )
    } else {
        format!("Org {} had no saved sign-in.\n", cell(name))
    }
}

/// `roster record`.
pub fn recorded(
    org: &str,
    s: &engine::model::TenantSnapshot,
    anonymized: bool,
    out: &std::path::Path,
) -> String {
    format!(
        "Recorded org {}: {} users, {} groups, {} deleted users, {} deleted groups{} → {}\n",
        cell(org),
        s.users.len(),
        s.groups.len(),
        s.deleted_users.len(),
        s.deleted_groups.len(),
        if anonymized { " (anonymized)" } else { "" },
        cell(&out.display().to_string())
    )
}
