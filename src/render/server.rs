//! The server's directory: a user, its history, `server load|enable|disable|show`.

use super::*;

pub fn server_user_table(u: &ServerUser, state: &ServerState) -> String {
    let mut t = table(&["Property", "Value"]);
    let login = engine::ids::fold_case(&u.login);
    let groups: Vec<String> = state
        .groups()
        .filter(|g| g.members.iter().any(|m| engine::ids::folds_to(m, &login)))
        .map(|g| cell(&g.name))
        .collect();
    let rows: Vec<(&str, String)> = vec![
        ("Login", cell(&u.login)),
        ("Display name", text(u.display_name.as_deref())),
        ("Email", text(u.email.as_deref())),
        ("Department", text(u.department.as_deref())),
        ("Authentication type", u.auth_type.label().to_owned()),
        (
            "Enabled",
            if u.enabled { "yes".into() } else { "no".into() },
        ),
        ("Groups", groups.join(", ")),
        (
            "Entra tenant",
            u.tenant_id
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_default(),
        ),
        (
            "Entra object id",
            u.entra_id
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_default(),
        ),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_owned(), v]);
    }
    if let Some(a) = &u.entra {
        for (k, v) in [
            ("Entra: userPrincipalName", a.user_principal_name.as_deref()),
            ("Entra: displayName", a.display_name.as_deref()),
            ("Entra: givenName", a.given_name.as_deref()),
            ("Entra: surname", a.surname.as_deref()),
            ("Entra: mail", a.mail.as_deref()),
            ("Entra: department", a.department.as_deref()),
            ("Entra: jobTitle", a.job_title.as_deref()),
            ("Entra: userType", a.user_type.map(|t| t.label())),
        ] {
            t.add_row(vec![k.to_owned(), text(v)]);
        }
    }
    format!("{t}\n")
}

pub fn history_table(items: &[replay::history::HistoryItem]) -> String {
    if items.is_empty() {
        return "History: no import has changed this user.\n".into();
    }
    let mut t = table(&["Run", "Time (UTC)", "Org", "By", "Result", "Changes"]);
    for i in items {
        let mut details = vec![cell(&i.detail)];
        details.extend(i.changes.iter().map(change_text));
        t.add_row(vec![
            i.run.to_string(),
            i.time.format("%Y-%m-%d %H:%M:%S").to_string(),
            // An administrator's action outside any import has no org.
            match i.org.as_str() {
                "" => "—".to_owned(),
                org => cell(org),
            },
            cell(&i.started_by),
            match i.org.as_str() {
                "" => "Changed by an administrator".to_owned(),
                _ => outcome_label(i.outcome, Mode::Apply).to_owned(),
            },
            details.join("\n"),
        ]);
    }
    format!("History:\n{t}\n")
}

/// `roster server load`.
pub fn server_loaded(state: &ServerState, file: &std::path::Path) -> String {
    format!(
        "Loaded {} users and {} groups from {}.\n",
        state.users().len(),
        state.groups().len(),
        cell(&file.display().to_string())
    )
}

/// `roster server show` as JSON: the user alone, or with its history.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ShownJson<'a> {
    User(Option<&'a ServerUser>),
    WithHistory {
        user: Option<&'a ServerUser>,
        history: &'a [replay::history::HistoryItem],
    },
}

/// `server enable|disable`: what was done, and where it is recorded.
pub fn edited(e: &app::server::Edited, enabled: bool) -> String {
    let state = if enabled { "enabled" } else { "disabled" };
    match e {
        app::server::Edited::Recorded { run, login } => format!(
            "{} is {state} on the server; recorded as run {run} (`roster server show {} --history`).\n",
            cell(login),
            cell(login)
        ),
        app::server::Edited::Already { login } => {
            format!("{} already is {state}; nothing changed or recorded.\n", cell(login))
        }
    }
}

pub fn shown_json(shown: &app::server::Shown) -> ShownJson<'_> {
    match &shown.history {
        None => ShownJson::User(shown.user.as_ref()),
        Some(items) => ShownJson::WithHistory {
            user: shown.user.as_ref(),
            history: items,
        },
    }
}

/// `roster server show` as a table: the user's properties (or that it is gone), and its history.
pub fn shown(shown: &app::server::Shown, login: &str) -> String {
    let mut out = match &shown.user {
        Some(user) => server_user_table(user, &shown.state),
        None => format!("{} is no longer on the server.\n", cell(login)),
    };
    if let Some(items) = &shown.history {
        out.push_str(&history_table(items));
    }
    out
}
