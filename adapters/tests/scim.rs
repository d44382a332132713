//! The SCIM mapping and the client against a real SCIM service: `scim2-server` (PyPI), started
//! on loopback, one per test (`testkit::scim`).

use adapters::auth::Secret;
use adapters::clock::FixedClock;
use adapters::interrupt::Interrupt;
use adapters::scim::target::ScimTarget;
use adapters::scim::{
    add_members, group_resource, remove_member, replace, user_patch, user_resource, ScimClient,
    ServiceConfig, WriteError,
};
use adapters::target::Target;
use engine::event::{EntryOutcome, Outcome, Reason};
use engine::model::{AuthType, EntraAttributes, ServerGroup, ServerUser, UserType};
use engine::model::{Kind, ServerOp, ServerState};
use engine::{RunId, SledStore};
use serde_json::Value;
use testkit::scim::{Offers, TOKEN};
use url::Url;

/// A `scim2-server` (`testkit::scim`), and how these tests write to it directly.
struct Scim {
    _server: testkit::scim::Scim,
    url: Url,
}

impl Scim {
    fn start() -> Scim {
        Scim::on(testkit::scim::Scim::start())
    }

    /// A service whose `ServiceProviderConfig` offers only `offers`.
    fn offering(offers: Offers) -> Scim {
        Scim::on(testkit::scim::Scim::start_offering(offers))
    }

    fn on(server: testkit::scim::Scim) -> Scim {
        let url = server.url.parse().unwrap();
        Scim {
            _server: server,
            url,
        }
    }

    /// POSTs a resource; its SCIM id.
    async fn post(&self, http: &reqwest::Client, kind: &str, body: &Value) -> String {
        let resp = http
            .post(self.url.join(kind).unwrap())
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "{body}");
        let created: Value = resp.json().await.unwrap();
        created["id"].as_str().unwrap().to_owned()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn linked(n: u32, login: &str, guest: bool) -> ServerUser {
    let id: engine::ObjectId = format!("00000000-0000-4000-8000-{n:012}").parse().unwrap();
    let user = ServerUser {
        login: login.into(),
        display_name: Some(format!("User {n}").into()),
        email: Some(login.into()),
        department: n.is_multiple_of(2).then(|| "Sales".into()),
        auth_type: AuthType::Entra,
        entra_id: Some(id.clone()),
        tenant_id: Some(testkit::tenant()),
        enabled: !n.is_multiple_of(5),
        entra: None,
        disabled_by: None,
    };
    ServerUser {
        entra: Some(EntraAttributes {
            id: Some(id),
            user_principal_name: Some(login.into()),
            display_name: user.display_name.clone(),
            given_name: Some("User".into()),
            surname: Some(format!("{n}").into()),
            mail: user.email.clone(),
            department: user.department.clone(),
            job_title: n.is_multiple_of(3).then(|| "Engineer".into()),
            user_type: Some(if guest {
                UserType::Guest
            } else {
                UserType::Member
            }),
        }),
        ..user
    }
}

/// Users and groups written in the mapping's form read back as the same server records —
/// linked ones linked to the same tenant and object, local ones local — across pages; what a
/// SCIM group cannot hold (description, type, enabled) reads back empty.
#[test]
fn the_directory_reads_back_as_written_across_pages() {
    let scim = Scim::start();
    let http = reqwest::Client::new();
    let rt = rt();
    let mut users: Vec<ServerUser> = (1..=230)
        .map(|n| linked(n, &format!("user{n}@contoso.com"), n == 7))
        .collect();
    users.push(testkit::local_user("admin.local"));
    let mut ids = std::collections::HashMap::new();
    rt.block_on(async {
        for u in &users {
            let id = scim.post(&http, "Users", &user_resource(u)).await;
            ids.insert(u.login.clone(), id);
        }
    });
    let groups = vec![
        ServerGroup {
            name: "Sales Team".into(),
            description: Some("Everyone who sells".into()),
            group_type: "M365 Group".into(),
            entra_id: Some("00000000-0000-4000-8000-100000000001".parse().unwrap()),
            tenant_id: Some(testkit::tenant()),
            enabled: true,
            members: vec!["user1@contoso.com".into(), "user2@contoso.com".into()],
        },
        ServerGroup {
            name: "Local group".into(),
            description: None,
            group_type: "Security Group".into(),
            entra_id: None,
            tenant_id: None,
            enabled: true,
            members: vec!["admin.local".into()],
        },
    ];
    rt.block_on(async {
        for g in &groups {
            let members: Vec<String> = g.members.iter().map(|l| ids[l].clone()).collect();
            scim.post(&http, "Groups", &group_resource(g, &members))
                .await;
        }
    });

    let client = ScimClient::new(&scim.url, Secret::new(TOKEN));
    let dir = rt.block_on(client.load()).unwrap();
    assert_eq!(dir.users.len(), users.len(), "every page read");
    for u in &users {
        assert_eq!(dir.state.user(&u.login), Some(u), "{}", u.login);
    }
    for g in &groups {
        let read = dir.state.group(&g.name).unwrap();
        let held = ServerGroup {
            description: None,
            group_type: String::new().into(),
            ..g.clone()
        };
        assert_eq!(read, &held);
    }
    // Every record keeps its SCIM id and version, for the writes and their If-Match.
    assert!(dir
        .users
        .iter()
        .all(|u| u.version.is_some() && ids[&u.user.login] == u.id));

    // A wrong token is refused, saying what the service answered.
    let wrong = ScimClient::new(&scim.url, Secret::new("nope"));
    let e = rt.block_on(wrong.load()).unwrap_err().to_string();
    assert!(e.contains("answered 401"), "{e}");
    assert!(!e.contains(TOKEN) && !e.contains("nope"), "{e}");
}

/// What the service supports is read from its `ServiceProviderConfig`: a stock scim2-server
/// offers everything; one configured without PATCH, bulk, filter or ETags says so.
#[test]
fn the_service_provider_config_says_what_the_writes_may_use() {
    let rt = rt();
    let scim = Scim::start();
    let client = ScimClient::new(&scim.url, Secret::new(TOKEN));
    assert_eq!(
        rt.block_on(client.service_config()).unwrap(),
        ServiceConfig {
            patch: true,
            bulk: Some((1000, 1_048_576)),
            filter: Some(1000),
            etag: true,
        }
    );
    let bare = Scim::offering(Offers {
        patch: false,
        bulk: false,
        filter: false,
        max_results: 0,
        etag: false,
    });
    let client = ScimClient::new(&bare.url, Secret::new(TOKEN));
    assert_eq!(
        rt.block_on(client.service_config()).unwrap(),
        ServiceConfig {
            patch: false,
            bulk: None,
            filter: None,
            etag: false,
        }
    );
}

/// The token comes from a file only its owner may read (else it is refused, saying how to fix
/// it), or from `ROSTER_SCIM_TOKEN`.
#[test]
fn a_token_file_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "  s3cret-token\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = adapters::scim::token(Some(&file)).unwrap_err().to_string();
    assert!(
        e.contains("the SCIM token file is world-readable") && e.contains("chmod 600"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let t = adapters::scim::token(Some(&file)).unwrap();
    assert_eq!(t.expose(), "s3cret-token");
}

/// Without a token, nothing is sent: the SCIM service is not even asked what it supports.
#[test]
fn without_a_token_nothing_is_sent() {
    // SAFETY: this test process reads ROSTER_SCIM_TOKEN only here.
    unsafe { std::env::remove_var(adapters::scim::TOKEN_ENV) };
    let e = adapters::scim::token(None).unwrap_err().to_string();
    assert!(
        e.contains("--scim-token-file FILE") && e.contains("nothing was sent"),
        "{e}"
    );
}

/// The writes as a stock service answers them: a user created, a second with its userName a
/// conflict; disabled with `active: false` under its version, a stale version refused; a member
/// removed with `members[value eq "…"]` and added back; deleted, then gone.
#[test]
fn writes_are_answered_as_rfc_7644_says() {
    let rt = rt();
    let scim = Scim::start();
    let client = ScimClient::new(&scim.url, Secret::new(TOKEN));
    rt.block_on(async {
        let ann = linked(1, "ann@contoso.com", false);
        let made = client
            .create("Users", &user_resource(&ann), ("userName", &ann.login))
            .await
            .unwrap();
        assert!(made.version.is_some());
        let again = client
            .create("Users", &user_resource(&ann), ("userName", &ann.login))
            .await
            .unwrap_err();
        assert!(matches!(again, WriteError::Conflict(_)), "{again:?}");

        let v = client
            .patch(
                "Users",
                &made.id,
                made.version.as_deref(),
                vec![replace(serde_json::json!({"active": false}))],
            )
            .await
            .unwrap()
            .and_then(|answer| answer["meta"]["version"].as_str().map(str::to_owned));
        let stale = client
            .patch(
                "Users",
                &made.id,
                made.version.as_deref(),
                vec![replace(serde_json::json!({"active": true}))],
            )
            .await
            .unwrap_err();
        assert_eq!(stale, WriteError::Stale);
        let dir = client.load().await.unwrap();
        assert!(!dir.state.user("ann@contoso.com").unwrap().enabled);
        // The write moved the version on; the service said which when it answered with a body.
        assert_ne!(dir.users[0].version, made.version);
        if v.is_some() {
            assert_eq!(dir.users[0].version, v);
        }

        let group = ServerGroup {
            name: "Sales".into(),
            description: None,
            group_type: String::new().into(),
            entra_id: Some("00000000-0000-4000-8000-100000000002".parse().unwrap()),
            tenant_id: Some(testkit::tenant()),
            enabled: true,
            members: vec![],
        };
        let g = client
            .create(
                "Groups",
                &group_resource(&group, std::slice::from_ref(&made.id)),
                ("displayName", "Sales"),
            )
            .await
            .unwrap();
        client
            .patch("Groups", &g.id, None, vec![remove_member(&made.id)])
            .await
            .unwrap();
        let members =
            |d: &adapters::scim::ScimDirectory| d.state.group("Sales").unwrap().members.clone();
        assert!(members(&client.load().await.unwrap()).is_empty());
        client
            .patch(
                "Groups",
                &g.id,
                None,
                vec![add_members(std::slice::from_ref(&made.id))],
            )
            .await
            .unwrap();
        assert_eq!(members(&client.load().await.unwrap()), ["ann@contoso.com"]);

        // A rerun finds what an interrupted run created: by userName, and by externalId.
        let by_name = client
            .find("Users", "userName", "ann@contoso.com")
            .await
            .unwrap();
        let by_link = client
            .find(
                "Users",
                "externalId",
                &adapters::scim::user_link(&ann).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(by_name.len(), 1);
        assert_eq!(by_name, by_link);
        assert!(client
            .find("Users", "userName", "bob\" or 1 eq \"1")
            .await
            .unwrap()
            .is_empty());

        // A refusal keeps the service's status, scimType and detail, in one line.
        let refused = client
            .patch(
                "Users",
                &made.id,
                None,
                vec![serde_json::json!({"op": "replace", "path": "active", "value": "maybe"})],
            )
            .await
            .unwrap_err();
        let WriteError::Refused {
            status: 400,
            scim_type: Some(t),
            detail,
        } = &refused
        else {
            panic!("{refused:?}")
        };
        assert_eq!(t, "invalidValue");
        assert!(
            !detail.contains('\n') && detail.contains("active"),
            "{detail}"
        );
        assert!(refused
            .to_string()
            .starts_with("the SCIM service refused (400, invalidValue): "));

        client.delete("Users", &made.id, None).await.unwrap();
        assert_eq!(
            client.delete("Users", &made.id, None).await.unwrap_err(),
            WriteError::Gone
        );
        assert!(client
            .load()
            .await
            .unwrap()
            .state
            .user("ann@contoso.com")
            .is_none());
    });
}

/// The PATCH of a changed user names only what differs: a `replace` per changed or new
/// attribute (by path, the extension's by its URN), a `remove` per attribute gone.
#[test]
fn a_user_patch_replaces_what_changed_and_removes_what_is_gone() {
    let old = linked(3, "ann@contoso.com", false);
    assert!(user_patch(&old, &old, &[]).is_empty());
    let mut new = old.clone();
    new.login = "ann.smith@contoso.com".into();
    new.department = Some("Legal".into());
    new.entra.as_mut().unwrap().job_title = None;
    let ops = user_patch(&old, &new, &[]);
    let has = |op: &str, path: &str| ops.iter().any(|o| o["op"] == op && o["path"] == path);
    assert!(has("replace", "userName"), "{ops:?}");
    assert!(has(
        "replace",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
    ));
    assert!(has("remove", "title"), "{ops:?}");
    assert_eq!(ops.len(), 3, "{ops:?}");
}

/// An entry that puts `user` on the server, decided `outcome`.
fn put(user: &ServerUser, outcome: Outcome) -> EntryOutcome {
    EntryOutcome {
        kind: Kind::User,
        id: user.entra_id.clone().unwrap(),
        name: user.login.to_string(),
        outcome,
        detail: String::new(),
        reason: None,
        changes: Vec::new(),
        op: Some(ServerOp::PutUser {
            previous_login: None,
            user: std::sync::Arc::new(user.clone()),
        }),
    }
}

/// A resource changed on the service after the run read it (412 on `If-Match`) is read
/// again: changed where roster does not look, the write goes ahead under the new version;
/// changed where it looks, the entry fails and the service keeps the other change. A
/// userName another resource took meanwhile is a conflict (409); a refusal fails the entry
/// with the service's words.
/// Imports `entries` into `target` as a run would, recording into a store of its own.
fn run_import(
    target: &mut ScimTarget,
    state: &mut ServerState,
    entries: Vec<EntryOutcome>,
) -> adapters::target::Applied {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("db")).unwrap();
    let clock = FixedClock::new(chrono::Utc::now());
    let run = RunId(uuid::Uuid::now_v7());
    target
        .import(&store, run, &clock, state, entries, &Interrupt::default())
        .unwrap()
}

mod target {
    use super::*;

    /// A resource changed on the service after the run read it (412 on `If-Match`) is read
    /// again: changed where roster does not look, the write goes ahead under the new version;
    /// changed where it looks, the entry fails and the service keeps the other change. A
    /// userName another resource took meanwhile is a conflict (409), alone or in a bulk
    /// request.
    #[test]
    fn a_service_that_changed_since_the_read_is_read_again_or_the_entry_fails() {
        let rt = rt();
        let scim = Scim::start();
        let client = ScimClient::new(&scim.url, Secret::new(TOKEN));
        let (ann, bob) = (
            linked(1, "ann@contoso.com", false),
            linked(2, "bob@contoso.com", false),
        );
        let (ann_id, bob_id) = rt.block_on(async {
            (
                scim.post(&client_http(), "Users", &user_resource(&ann))
                    .await,
                scim.post(&client_http(), "Users", &user_resource(&bob))
                    .await,
            )
        });
        let mut target = ScimTarget::open(scim.url.as_str(), Secret::new(TOKEN)).unwrap();
        let mut state = target.load().unwrap();

        // Meanwhile: ann's nickName (not mapped) and bob's displayName (mapped) change, and a
        // user named cy appears.
        rt.block_on(async {
            let nick = adapters::scim::patch_body(vec![
                serde_json::json!({"op": "replace", "path": "nickName", "value": "A"}),
            ]);
            let name = adapters::scim::patch_body(vec![
                serde_json::json!({"op": "replace", "path": "displayName", "value": "Robert"}),
            ]);
            for (id, body) in [(&ann_id, nick), (&bob_id, name)] {
                let resp = client_http()
                    .patch(scim.url.join(&format!("Users/{id}")).unwrap())
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success());
            }
            scim.post(
                &client_http(),
                "Users",
                &user_resource(&ServerUser {
                    auth_type: AuthType::Local,
                    entra_id: None,
                    tenant_id: None,
                    entra: None,
                    ..linked(3, "cy@contoso.com", false)
                }),
            )
            .await;
        });

        let mut ann2 = ann.clone();
        ann2.department = Some("Legal".into());
        let mut bob2 = bob.clone();
        bob2.department = Some("Legal".into());
        let cy = linked(3, "cy@contoso.com", false);
        let applied = run_import(
            &mut target,
            &mut state,
            vec![
                put(&ann2, Outcome::Updated),
                put(&bob2, Outcome::Updated),
                put(&cy, Outcome::Added),
                put(&linked(4, "dee@contoso.com", false), Outcome::Added),
            ],
        );
        assert_eq!(applied.failure, None);
        let outcomes: Vec<(Outcome, Option<Reason>)> = applied
            .entries
            .iter()
            .map(|e| (e.outcome, e.reason))
            .collect();
        assert_eq!(
            outcomes[0],
            (Outcome::Updated, None),
            "{:?}",
            applied.entries[0]
        );
        assert_eq!(outcomes[1], (Outcome::Failed, Some(Reason::WriteFailed)));
        assert!(
            applied.entries[1]
                .detail
                .contains("changed on the SCIM service"),
            "{}",
            applied.entries[1].detail
        );
        // cy and dee went in one bulk request: cy's operation was refused (409), dee's made.
        assert_eq!(outcomes[2], (Outcome::Conflict, Some(Reason::NameTaken)));
        assert_eq!(outcomes[3], (Outcome::Added, None));

        let dir = rt.block_on(client.load()).unwrap();
        let held = |login: &str| {
            dir.users
                .iter()
                .find(|u| u.user.login == login)
                .map(|u| u.user.clone())
        };
        assert_eq!(
            held("ann@contoso.com").unwrap().department.as_deref(),
            Some("Legal")
        );
        assert_eq!(
            held("bob@contoso.com").unwrap().display_name.as_deref(),
            Some("Robert")
        );
        assert!(
            held("cy@contoso.com").unwrap().entra_id.is_none(),
            "the local cy is never overwritten"
        );
    }

    fn client_http() -> reqwest::Client {
        reqwest::Client::new()
    }

    /// Ctrl-C during an import into a service stops it before the next change: what was
    /// written is recorded, the rest is not sent.
    #[test]
    fn ctrl_c_stops_before_the_next_change_is_sent() {
        let scim = Scim::start();
        let mut target = ScimTarget::open(scim.url.as_str(), Secret::new(TOKEN)).unwrap();
        let mut state = target.load().unwrap();
        let users: Vec<ServerUser> = (1..=3)
            .map(|n| linked(n, &format!("u{n}@contoso.com"), false))
            .collect();
        let stop = Interrupt::default();
        stop.request();
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("db")).unwrap();
        let entries = users.iter().map(|u| put(u, Outcome::Added)).collect();
        let clock = FixedClock::new(chrono::Utc::now());
        let run = RunId(uuid::Uuid::now_v7());
        let applied = target
            .import(&store, run, &clock, &mut state, entries, &stop)
            .unwrap();
        assert!(applied.entries.is_empty());
        let why = applied.failure.unwrap();
        assert!(
            why.starts_with("interrupted (Ctrl-C) after 0 of 3 entries"),
            "{why}"
        );
        let held = rt()
            .block_on(ScimClient::new(&scim.url, Secret::new(TOKEN)).load())
            .unwrap();
        assert!(held.users.is_empty());
    }

    /// A service that stops answering stops the run: what was written is recorded, the rest
    /// is not applied and says so.
    #[test]
    fn a_service_that_stops_answering_stops_the_run_with_what_was_done() {
        let scim = Scim::start();
        let mut target = ScimTarget::open(scim.url.as_str(), Secret::new(TOKEN)).unwrap();
        let mut state = target.load().unwrap();
        drop(scim);
        let users: Vec<ServerUser> = (1..=3)
            .map(|n| linked(n, &format!("u{n}@contoso.com"), false))
            .collect();
        let applied = run_import(
            &mut target,
            &mut state,
            users.iter().map(|u| put(u, Outcome::Added)).collect(),
        );
        assert!(applied.entries.is_empty(), "{:?}", applied.entries);
        let why = applied.failure.unwrap();
        assert!(
            why.contains("stopped answering") && why.contains("after 0 of 3 entries"),
            "{why}"
        );
        assert!(!why.contains(TOKEN));
    }
}

/// A loopback proxy in front of the real service that answers some requests itself, as a
/// busy or failing service would: `faults` maps "METHOD kind" (`POST Users`, `GET Users`) to the
/// answers to give, in turn — `503` / `429` before the request reaches the service, `500` after
/// it did (the service made the change; the answer is lost).
mod faulty {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::body::{Body, Bytes};
    use axum::http::{HeaderMap, Method, StatusCode, Uri};

    pub struct Proxy {
        pub url: String,
        pub seen: Arc<Mutex<Vec<String>>>,
        /// Every request's method and path, as sent (still percent-encoded).
        pub paths: Arc<Mutex<Vec<String>>>,
        _rt: tokio::runtime::Runtime,
    }

    /// Not an answer: the request is passed on as it is.
    pub const PASS: u16 = 0;
    /// Not an answer: another client creates a user just before the request is passed on.
    pub const CHANGE: u16 = 1;
    /// The service's answer, cut mid-body (the connection drops).
    pub const CUT: u16 = 2;
    /// The listing's answer without `totalResults`.
    pub const NO_TOTAL: u16 = 3;
    /// The listing's answer with `totalResults` saying only what this page holds.
    pub const LOW_TOTAL: u16 = 4;
    /// The listing's answer with `totalResults` 5,000,001.
    pub const HUGE_TOTAL: u16 = 5;
    /// A `307` to the service itself, at another origin; nothing passed on.
    pub const REDIRECT: u16 = 6;
    /// The answer without its `id`.
    pub const NO_ID: u16 = 7;
    /// An empty listing, `totalResults` 0, as a service that cannot apply a filter may send.
    pub const NOTHING: u16 = 8;
    /// `/ResourceTypes` answered without any `schemaExtensions`: a service that drops the
    /// enterprise extension.
    pub const NO_EXTENSIONS: u16 = 9;
    /// A group's `POST` passed on without its members: a service that ignores them there.
    pub const NO_MEMBERS: u16 = 10;
    /// A `PATCH` removing a member by the RFC's filter (`members[…]`) answered 501; others
    /// passed on.
    pub const FILTER_501: u16 = 11;
    /// A `PATCH` with a `replace` answered 501; others passed on.
    pub const REPLACE_501: u16 = 12;
    /// A `PATCH` removing listed members passed on as a removal of every member: a strict
    /// service that reads the value-list form as "remove all".
    pub const REMOVES_ALL: u16 = 13;
    /// `/ResourceTypes` answered without the Group type.
    pub const NO_GROUPS: u16 = 14;
    /// A bulk request passed on with `active` left out of every operation's data: a service
    /// that does not keep it.
    pub const NO_ACTIVE: u16 = 15;
    /// Added to a code: given to every such request, not once.
    pub const ALWAYS: u16 = 1000;

    /// A body that sends its bytes, then fails a moment later: the connection drops
    /// mid-answer, after the status and the first bytes arrived.
    struct Cut(Option<Bytes>, std::pin::Pin<Box<tokio::time::Sleep>>);

    impl futures_core::Stream for Cut {
        type Item = std::io::Result<Bytes>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            use std::future::Future;
            if let Some(b) = self.0.take() {
                return std::task::Poll::Ready(Some(Ok(b)));
            }
            self.1
                .as_mut()
                .poll(cx)
                .map(|()| Some(Err(std::io::Error::other("cut"))))
        }
    }

    pub fn start(service: &str, faults: &[(&str, &[u16])]) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let faults: Arc<Mutex<HashMap<String, Vec<u16>>>> = Arc::new(Mutex::new(
            faults
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
        ));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let upstream = service.trim_end_matches("/v2/").to_owned();
        let http = reqwest::Client::new();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (log, plan, raw) = (seen.clone(), faults.clone(), paths.clone());
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (http, upstream, log, plan, paths) = (
                    http.clone(),
                    upstream.clone(),
                    log.clone(),
                    plan.clone(),
                    raw.clone(),
                );
                async move {
                    let kind = uri.path().split('/').nth(2).unwrap_or_default().to_owned();
                    let filtered = uri.query().is_some_and(|q| q.contains("filter="));
                    let key = format!("{method} {kind}{}", if filtered { "?filter" } else { "" });
                    paths.lock().unwrap().push(format!("{method} {}", uri.path()));
                    let fault = {
                        let mut plan = plan.lock().unwrap();
                        plan.get_mut(&key).and_then(|f| match f.first() {
                            Some(&always) if always >= ALWAYS => Some(always - ALWAYS),
                            Some(_) => Some(f.remove(0)),
                            None => None,
                        })
                    };
                    log.lock().unwrap().push(format!(
                        "{key}{}",
                        fault.map(|f| format!(" -> {f}")).unwrap_or_default()
                    ));
                    let refuse = |code: u16| {
                        let mut h = HeaderMap::new();
                        h.insert("retry-after", "0".parse().unwrap());
                        (StatusCode::from_u16(code).unwrap(), h, Body::empty())
                    };
                    if let Some(code @ (429 | 501 | 503)) = fault {
                        return refuse(code);
                    }
                    if fault == Some(REDIRECT) {
                        let mut h = HeaderMap::new();
                        let to = format!(
                            "{}{uri}",
                            upstream.replace("127.0.0.1", "someone:s3cret@localhost")
                        );
                        h.insert("location", to.parse().unwrap());
                        return (StatusCode::TEMPORARY_REDIRECT, h, Body::empty());
                    }
                    if fault == Some(NOTHING) {
                        let body = serde_json::json!({"schemas": [adapters::scim::LIST_RESPONSE], "totalResults": 0, "Resources": []});
                        return (StatusCode::OK, HeaderMap::new(), Body::from(body.to_string()));
                    }
                    if fault == Some(CHANGE) {
                        // Another client writes first: a user more.
                        let n = log.lock().unwrap().len();
                        let user = super::user_resource(&super::linked(
                            90_000 + n as u32,
                            &format!("other{n}@contoso.com"),
                            false,
                        ));
                        let made = http
                            .post(format!("{upstream}/v2/Users"))
                            .header("authorization", headers["authorization"].to_str().unwrap())
                            .header("content-type", "application/scim+json")
                            .body(user.to_string())
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(made.status().as_u16(), 201);
                    }
                    let mut req = http.request(
                        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
                        format!("{upstream}{uri}"),
                    );
                    for name in ["authorization", "content-type", "if-match", "accept"] {
                        if let Some(v) = headers.get(name) {
                            req = req.header(name, v.to_str().unwrap());
                        }
                    }
                    let text = String::from_utf8_lossy(&body).into_owned();
                    let patch_has = |what: &str| method == Method::PATCH && text.contains(what);
                    if (matches!(fault, Some(FILTER_501 | REMOVES_ALL)) && patch_has("members["))
                        || (fault == Some(REPLACE_501) && patch_has("\"replace\""))
                    {
                        return refuse(501);
                    }
                    let body = match fault {
                        Some(NO_MEMBERS | REMOVES_ALL | FILTER_501 | NO_ACTIVE) => {
                            let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                            if fault == Some(NO_ACTIVE) {
                                for op in v["Operations"].as_array_mut().unwrap() {
                                    op["data"].as_object_mut().unwrap().remove("active");
                                }
                            }
                            if fault == Some(NO_MEMBERS) {
                                v.as_object_mut().unwrap().remove("members");
                            }
                            // Entra's value list, as the service behind (strict RFC) takes it:
                            // one filter per member, or — read as "remove all" — none.
                            if let Some(ops) = v.get_mut("Operations").and_then(|o| o.as_array_mut()) {
                                let mut out = Vec::new();
                                for op in ops.drain(..) {
                                    if op["op"] != "remove" || op["path"] != "members" {
                                        out.push(op);
                                    } else if fault == Some(REMOVES_ALL) {
                                        out.push(serde_json::json!({"op": "remove", "path": "members"}));
                                    } else {
                                        for m in op["value"].as_array().unwrap() {
                                            let path = format!("members[value eq {}]", m["value"]);
                                            out.push(serde_json::json!({"op": "remove", "path": path}));
                                        }
                                    }
                                }
                                *ops = out;
                            }
                            Bytes::from(v.to_string())
                        }
                        _ => body,
                    };
                    let resp = req.body(body).send().await.unwrap();
                    let status = resp.status().as_u16();
                    let bytes = resp.bytes().await.unwrap();
                    let rewrite = |change: &dyn Fn(&mut serde_json::Value)| {
                        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                        change(&mut v);
                        Bytes::from(v.to_string())
                    };
                    let bytes = match fault {
                        Some(NO_TOTAL) => rewrite(&|v| {
                            v.as_object_mut().unwrap().remove("totalResults");
                        }),
                        Some(LOW_TOTAL) => rewrite(&|v| {
                            let n = v["Resources"].as_array().map_or(0, Vec::len);
                            v["totalResults"] = n.into();
                        }),
                        Some(HUGE_TOTAL) => rewrite(&|v| v["totalResults"] = 5_000_001.into()),
                        Some(NO_EXTENSIONS) => rewrite(&|v| {
                            for t in v["Resources"].as_array_mut().into_iter().flatten() {
                                t.as_object_mut().unwrap().remove("schemaExtensions");
                            }
                        }),
                        Some(NO_GROUPS) => rewrite(&|v| {
                            v["Resources"].as_array_mut().unwrap().retain(|t| t["name"] != "Group");
                        }),
                        Some(NO_ID) => rewrite(&|v| {
                            v.as_object_mut().unwrap().remove("id");
                        }),
                        _ => bytes,
                    };
                    if fault == Some(CUT) {
                        // Half the body, then the connection drops.
                        let half = bytes.slice(..bytes.len() / 2);
                        let later = Box::pin(tokio::time::sleep(std::time::Duration::from_millis(200)));
                        let body = Body::from_stream(Cut(Some(half), later));
                        return (StatusCode::from_u16(status).unwrap(), HeaderMap::new(), body);
                    }
                    match fault.filter(|f| (100..1000).contains(f)) {
                        Some(code) => refuse(code),
                        None => (
                            StatusCode::from_u16(status).unwrap(),
                            HeaderMap::new(),
                            Body::from(bytes),
                        ),
                    }
                }
            },
        );
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Proxy {
            url: format!("http://127.0.0.1:{port}/v2/"),
            seen,
            paths,
            _rt: rt,
        }
    }
}

/// Throttling (429, 503 with `Retry-After`) and server errors are waited out, reading and
/// writing. A create (alone, or in a bulk request) answered 500 after the service made it is
/// found, not made twice; a PATCH
/// answered 502 after the service made it is sent again, refused as stale (412), and the
/// resource read again already holds it: done, not failed.
#[test]
fn a_busy_or_failing_service_is_waited_out_and_nothing_is_created_twice() {
    let scim = Scim::start();
    // A user the listing shows, on which the service's filter is proven.
    seed_users(&scim, 1);
    let proxy = faulty::start(
        scim.url.as_str(),
        &[
            ("GET Users", &[503, 429]),
            ("POST Bulk", &[500]),
            ("POST Users", &[500]),
            ("PATCH Users", &[502]),
        ],
    );
    let mut target = ScimTarget::open(&proxy.url, Secret::new(TOKEN)).unwrap();
    let mut state = target.load().unwrap();
    let users: Vec<ServerUser> = (11..=13)
        .map(|n| linked(n, &format!("u{n}@contoso.com"), false))
        .collect();
    let mut entries: Vec<EntryOutcome> = users.iter().map(|u| put(u, Outcome::Added)).collect();
    let mut disabled = entries[0].clone();
    disabled.outcome = Outcome::Disabled;
    disabled.op = Some(ServerOp::SetUserEnabled {
        login: users[0].login.to_string(),
        enabled: false,
    });
    // u1 and u2 are made by one bulk request, u3 alone after the disable.
    entries.insert(2, disabled);
    let applied = run_import(&mut target, &mut state, entries);
    assert_eq!(applied.failure, None);
    let outcomes: Vec<Outcome> = applied.entries.iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Added,
            Outcome::Added,
            Outcome::Disabled,
            Outcome::Added
        ],
        "{:?}",
        applied.entries
    );

    let held = rt()
        .block_on(ScimClient::new(&scim.url, Secret::new(TOKEN)).load())
        .unwrap();
    let logins: Vec<(&str, bool)> = held
        .users
        .iter()
        .map(|u| (u.user.login.as_str(), u.user.enabled))
        .collect();
    assert_eq!(logins.len(), 4, "each user made once: {logins:?}");
    assert!(
        logins.contains(&("u11@contoso.com", false)) && logins.contains(&("u12@contoso.com", true))
    );
    let seen = proxy.seen.lock().unwrap().clone();
    for expected in [
        "GET Users -> 503",
        "GET Users -> 429",
        "POST Bulk -> 500",
        "POST Users -> 500",
        "PATCH Users -> 502",
    ] {
        assert!(seen.iter().any(|s| s == expected), "{expected}: {seen:?}");
    }
}

/// A service that cannot filter cannot be asked whether a create answered 500 was made: the
/// create is not sent again (the entry fails, saying so), so nothing is made twice, and the
/// next read finds what the service holds.
#[test]
fn without_a_filter_a_create_answered_500_is_not_sent_again() {
    let scim = Scim::offering(Offers {
        patch: true,
        bulk: false,
        filter: false,
        max_results: 1000,
        etag: true,
    });
    let proxy = faulty::start(scim.url.as_str(), &[("POST Users", &[500])]);
    let mut target = ScimTarget::open(&proxy.url, Secret::new(TOKEN)).unwrap();
    let mut state = target.load().unwrap();
    let ann = linked(1, "ann@contoso.com", false);
    let applied = run_import(&mut target, &mut state, vec![put(&ann, Outcome::Added)]);
    assert_eq!(applied.entries[0].outcome, Outcome::Failed);
    assert!(
        applied.entries[0].detail.contains("(500"),
        "{}",
        applied.entries[0].detail
    );
    let seen = proxy.seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|s| s.starts_with("POST Users")).count(),
        1,
        "{seen:?}"
    );
    let held = rt()
        .block_on(ScimClient::new(&scim.url, Secret::new(TOKEN)).load())
        .unwrap();
    assert_eq!(held.users.len(), 1, "made once, and read by the next run");
}

/// A service whose pages stop short of the total it announces (scim2-server configured with
/// `maxResults: 0` answers every page empty) is refused: a partial directory is never decided.
#[test]
fn pages_that_stop_short_of_the_total_are_refused() {
    let scim = Scim::offering(Offers {
        patch: true,
        bulk: false,
        filter: false,
        max_results: 0,
        etag: false,
    });
    let rt = rt();
    rt.block_on(scim.post(
        &reqwest::Client::new(),
        "Users",
        &user_resource(&linked(1, "ann@contoso.com", false)),
    ));
    let client = ScimClient::new(&scim.url, Secret::new(TOKEN));
    let e = rt.block_on(client.load()).unwrap_err().to_string();
    assert!(
        e.contains("says it holds 1 Users, but its pages stopped after 0"),
        "{e}"
    );
}

/// Index paging is not a snapshot: a directory that changes while it is read (here, another
/// client adds a user between two pages) is read again, and read whole, each user once.
#[test]
fn a_directory_that_changes_while_it_is_read_is_read_again() {
    let rt = rt();
    let scim = Scim::start();
    let http = reqwest::Client::new();
    rt.block_on(async {
        for n in 1..=150 {
            let u = linked(n, &format!("u{n}@contoso.com"), false);
            scim.post(&http, "Users", &user_resource(&u)).await;
        }
    });
    // The second page is asked after another client added a user.
    let proxy = faulty::start(
        scim.url.as_str(),
        &[("GET Users", &[faulty::PASS, faulty::CHANGE])],
    );
    let client = ScimClient::new(&proxy.url.parse().unwrap(), Secret::new(TOKEN));
    let dir = rt.block_on(client.load()).unwrap();
    assert_eq!(dir.users.len(), 151);
    let seen = proxy.seen.lock().unwrap().clone();
    let listings = seen
        .iter()
        .filter(|s| s.starts_with("GET Users") && !s.contains("?filter"))
        .count();
    assert_eq!(
        listings, 5,
        "two pages, then two again and the empty one after: {seen:?}"
    );
}

/// Seeds the service behind `scim` with `n` linked users.
fn seed_users(scim: &Scim, n: u32) {
    rt().block_on(async {
        let http = reqwest::Client::new();
        for n in 1..=n {
            let u = linked(n, &format!("u{n}@contoso.com"), false);
            scim.post(&http, "Users", &user_resource(&u)).await;
        }
    });
}

/// A listing is whole or it is an error, never a smaller directory: a body cut mid-stream, a
/// `totalResults` missing (read until an empty page), lying low (read again, then refused), or
/// beyond what roster reads (refused before a second page).
#[test]
fn a_listing_is_whole_or_refused() {
    let scim = Scim::start();
    seed_users(&scim, 150);
    let load = |faults: &[(&str, &[u16])]| {
        let proxy = faulty::start(scim.url.as_str(), faults);
        let client = ScimClient::new(&proxy.url.parse().unwrap(), Secret::new(TOKEN));
        rt().block_on(client.load()).map(|d| d.users.len())
    };
    let cut = load(&[("GET Users", &[faulty::PASS, faulty::CUT])]).unwrap_err();
    assert!(cut.to_string().contains("cut its answer short"), "{cut}");
    assert_eq!(
        load(&[("GET Users", &[faulty::ALWAYS + faulty::NO_TOTAL])]).unwrap(),
        150,
        "without a total, read until a page is empty"
    );
    let low = load(&[("GET Users", &[faulty::ALWAYS + faulty::LOW_TOTAL])]).unwrap_err();
    assert!(low.to_string().contains("hold more than it says"), "{low}");
    let huge = load(&[("GET Users", &[faulty::HUGE_TOTAL])]).unwrap_err();
    assert!(
        huge.to_string()
            .contains("says it holds 5000001 Users; roster reads at most 5000000"),
        "{huge}"
    );
}

/// A redirect is never followed, reading or writing: the read fails naming where it pointed,
/// and a create's body (personal data) goes nowhere else.
#[test]
fn a_redirect_is_never_followed() {
    let scim = Scim::start();
    let proxy = faulty::start(scim.url.as_str(), &[("GET Users", &[faulty::REDIRECT])]);
    let client = ScimClient::new(&proxy.url.parse().unwrap(), Secret::new(TOKEN));
    let e = rt().block_on(client.load()).unwrap_err().to_string();
    assert!(
        e.contains("with a redirect (307) to http://localhost:")
            && e.contains("follows no redirect"),
        "{e}"
    );
    assert!(
        !e.contains("s3cret"),
        "the credentials in its Location are never said: {e}"
    );

    let proxy = faulty::start(scim.url.as_str(), &[("POST Users", &[faulty::REDIRECT])]);
    let mut target = ScimTarget::open(&proxy.url, Secret::new(TOKEN)).unwrap();
    let mut state = target.load().unwrap();
    let ann = linked(1, "ann@contoso.com", false);
    let applied = run_import(&mut target, &mut state, vec![put(&ann, Outcome::Added)]);
    let failure = applied.failure.expect("the run stops");
    assert!(failure.contains("redirect (307)"), "{failure}");
    let held = rt()
        .block_on(ScimClient::new(&scim.url, Secret::new(TOKEN)).load())
        .unwrap();
    assert!(held.users.is_empty(), "nothing made anywhere");
}

/// Ids go into paths percent-encoded: an id holding `/`, `?`, `#`, `%` or dots is one path
/// segment under the base; `.` and `..` are refused when read.
#[test]
fn ids_are_percent_encoded_in_every_path() {
    let scim = Scim::start();
    let proxy = faulty::start(scim.url.as_str(), &[]);
    let client = ScimClient::new(&proxy.url.parse().unwrap(), Secret::new(TOKEN));
    let odd = "../Groups/x32?a=1#b%2e.";
    let found = rt().block_on(client.get_resource("Users", odd)).unwrap();
    assert_eq!(found, None, "no such user: a 404, not another resource");
    let paths = proxy.paths.lock().unwrap().clone();
    assert_eq!(
        paths,
        ["GET /v2/Users/%2E%2E%2FGroups%2Fx32%3Fa%3D1%23b%252e%2E"],
        "one segment under Users"
    );
    for bad in ["..", "."] {
        let e =
            adapters::scim::user_from_resource(&serde_json::json!({"id": bad, "userName": "a"}))
                .unwrap_err();
        assert!(e.contains("which no URL can name"), "{e}");
    }
}

/// A create answered without an id is looked up by the service's filter once that filter is
/// proven on a resource the listing showed; where it is not proven, the entry is not recorded
/// as made (it fails, saying why) and the next read finds what the service holds.
#[test]
fn a_create_answered_without_an_id_is_looked_up_before_it_is_recorded() {
    let scim = Scim::start();
    seed_users(&scim, 1);
    let proxy = faulty::start(scim.url.as_str(), &[("POST Users", &[faulty::NO_ID])]);
    let mut target = ScimTarget::open(&proxy.url, Secret::new(TOKEN)).unwrap();
    let mut state = target.load().unwrap();
    let ann = linked(7, "ann@contoso.com", false);
    let mut off = put(&ann, Outcome::Disabled);
    off.op = Some(ServerOp::SetUserEnabled {
        login: ann.login.to_string(),
        enabled: false,
    });
    let applied = run_import(
        &mut target,
        &mut state,
        vec![put(&ann, Outcome::Added), off],
    );
    let outcomes: Vec<Outcome> = applied.entries.iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Added, Outcome::Disabled],
        "{:?}",
        applied.entries
    );

    // A filter that answers nothing for a user the listing showed is not proven.
    let proxy = faulty::start(
        scim.url.as_str(),
        &[
            ("GET Users?filter", &[faulty::ALWAYS + faulty::NOTHING]),
            ("POST Users", &[faulty::NO_ID]),
        ],
    );
    let mut target = ScimTarget::open(&proxy.url, Secret::new(TOKEN)).unwrap();
    let mut state = target.load().unwrap();
    let bob = linked(8, "bob@contoso.com", false);
    let applied = run_import(&mut target, &mut state, vec![put(&bob, Outcome::Added)]);
    let bob_entry = &applied.entries[0];
    assert_eq!(bob_entry.outcome, Outcome::Failed);
    assert!(
        bob_entry.detail.contains("without the id"),
        "{}",
        bob_entry.detail
    );
    let held = rt()
        .block_on(ScimClient::new(&scim.url, Secret::new(TOKEN)).load())
        .unwrap();
    assert!(
        held.users.iter().any(|u| u.user.login == bob.login),
        "read by the next run"
    );
}

/// A filter the service cannot apply and answers with nothing never lets a create answered
/// 500 be sent again: the entry fails, and the user is made once.
#[test]
fn a_filter_that_finds_nothing_is_not_trusted_to_resend_a_create() {
    let scim = Scim::start();
    seed_users(&scim, 1);
    let proxy = faulty::start(
        scim.url.as_str(),
        &[
            ("GET Users?filter", &[faulty::ALWAYS + faulty::NOTHING]),
            ("POST Users", &[500]),
        ],
    );
    let mut target = ScimTarget::open(&proxy.url, Secret::new(TOKEN)).unwrap();
    let mut state = target.load().unwrap();
    let ann = linked(7, "ann@contoso.com", false);
    let applied = run_import(&mut target, &mut state, vec![put(&ann, Outcome::Added)]);
    assert_eq!(applied.entries[0].outcome, Outcome::Failed);
    let seen = proxy.seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|s| s.starts_with("POST Users")).count(),
        1,
        "{seen:?}"
    );
    let held = rt()
        .block_on(ScimClient::new(&scim.url, Secret::new(TOKEN)).load())
        .unwrap();
    assert_eq!(held.users.len(), 2, "made once");
}

/// A `PATCH` answered 501 is made by a `PUT` of the whole resource; where that is answered
/// 501 too, the entry fails saying the operation is not implemented.
#[test]
fn patch_answered_501_is_a_put_and_not_implemented_is_said() {
    let scim = Scim::start();
    seed_users(&scim, 1);
    let u1 = linked(1, "u1@contoso.com", false);
    let set = |enabled: bool| {
        let mut e = put(&u1, Outcome::Disabled);
        e.op = Some(ServerOp::SetUserEnabled {
            login: u1.login.to_string(),
            enabled,
        });
        e
    };
    let proxy = faulty::start(
        scim.url.as_str(),
        &[("PATCH Users", &[faulty::ALWAYS + 501])],
    );
    let mut target = ScimTarget::open(&proxy.url, Secret::new(TOKEN)).unwrap();
    let mut state = target.load().unwrap();
    let applied = run_import(&mut target, &mut state, vec![set(false)]);
    assert_eq!(
        applied.entries[0].outcome,
        Outcome::Disabled,
        "{:?}",
        applied.entries
    );
    let seen = proxy.seen.lock().unwrap().clone();
    assert!(seen.contains(&"PUT Users".to_owned()), "{seen:?}");
    let held = rt()
        .block_on(ScimClient::new(&scim.url, Secret::new(TOKEN)).load())
        .unwrap();
    assert!(!held.users[0].user.enabled);

    let proxy = faulty::start(
        scim.url.as_str(),
        &[
            ("PATCH Users", &[faulty::ALWAYS + 501]),
            ("PUT Users", &[faulty::ALWAYS + 501]),
        ],
    );
    let mut target = ScimTarget::open(&proxy.url, Secret::new(TOKEN)).unwrap();
    let mut state = target.load().unwrap();
    let applied = run_import(&mut target, &mut state, vec![set(true)]);
    let entry = &applied.entries[0];
    assert_eq!(entry.outcome, Outcome::Failed);
    assert!(
        entry.detail.contains("not implemented: PUT Users"),
        "{}",
        entry.detail
    );
}

/// Bulk announced but answered 501: nothing was made, so each record is sent alone, and bulk
/// is not tried again in the run.
#[test]
fn bulk_answered_501_falls_back_to_single_requests() {
    let scim = Scim::start();
    let proxy = faulty::start(scim.url.as_str(), &[("POST Bulk", &[faulty::ALWAYS + 501])]);
    let mut target = ScimTarget::open(&proxy.url, Secret::new(TOKEN)).unwrap();
    let mut state = target.load().unwrap();
    let entries: Vec<EntryOutcome> = (1..=5)
        .map(|n| {
            put(
                &linked(n, &format!("u{n}@contoso.com"), false),
                Outcome::Added,
            )
        })
        .collect();
    let mut first = entries[..3].to_vec();
    let rest = entries[3..].to_vec();
    first.push(EntryOutcome {
        op: None,
        ..put(&linked(9, "same@contoso.com", false), Outcome::Skipped)
    });
    first.extend(rest);
    let applied = run_import(&mut target, &mut state, first);
    assert_eq!(applied.failure, None);
    let added = applied
        .entries
        .iter()
        .filter(|e| e.outcome == Outcome::Added)
        .count();
    assert_eq!(added, 5, "{:?}", applied.entries);
    let seen = proxy.seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|s| s.starts_with("POST Bulk")).count(),
        1,
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|s| s.starts_with("POST Users")).count(),
        5,
        "{seen:?}"
    );
}

/// A linked group of the test tenant.
fn linked_group(n: u32, name: &str, members: &[&ServerUser]) -> ServerGroup {
    ServerGroup {
        name: name.into(),
        description: None,
        group_type: String::new().into(),
        entra_id: Some(format!("00000000-0000-4000-8000-1{n:011}").parse().unwrap()),
        tenant_id: Some(testkit::tenant()),
        enabled: true,
        members: members.iter().map(|u| u.login.clone()).collect(),
    }
}

/// An entry that puts `group` on the server (renamed from `previous`, if given).
fn put_group(group: &ServerGroup, previous: Option<&str>, outcome: Outcome) -> EntryOutcome {
    EntryOutcome {
        kind: Kind::Group,
        id: group.entra_id.clone().unwrap(),
        name: group.name.to_string(),
        outcome,
        detail: String::new(),
        reason: None,
        changes: Vec::new(),
        op: Some(ServerOp::PutGroup {
            previous_name: previous.map(str::to_owned),
            group: std::sync::Arc::new(group.clone()),
        }),
    }
}

/// Entra's dialect, against the quirks of services built for it (simulated by the proxy in
/// front of a real one): the enterprise extension not listed is not sent, and users stay
/// linked by `externalId` alone; members sent with a group's `POST` ignored — roster adds them
/// by `PATCH`; the RFC's member-removal filter answered 501 — Entra's value list is used; a
/// strict service reading that list as "remove all" — the others are put back and the entry
/// fails, saying so; a group's `PATCH replace` answered 501 — a `PUT` renames it, members kept.
#[test]
fn the_entra_dialect_against_services_that_take_less() {
    let scim = Scim::start();
    let users: Vec<ServerUser> = (1..=3)
        .map(|n| linked(n, &format!("u{n}@contoso.com"), false))
        .collect();
    let everyone: Vec<&ServerUser> = users.iter().collect();
    let sales = linked_group(1, "Sales", &everyone);
    let held = || {
        rt().block_on(ScimClient::new(&scim.url, Secret::new(TOKEN)).load())
            .unwrap()
    };
    let members = |name: &str| held().state.group(name).unwrap().members.clone();
    let import = |faults: &[(&str, &[u16])], entries: Vec<EntryOutcome>| {
        let proxy = faulty::start(scim.url.as_str(), faults);
        let mut target = ScimTarget::open(&proxy.url, Secret::new(TOKEN)).unwrap();
        let mut state = target.load().unwrap();
        let applied = run_import(&mut target, &mut state, entries);
        assert_eq!(applied.failure, None);
        let seen = proxy.seen.lock().unwrap().clone();
        (applied.entries, seen)
    };

    let mut entries: Vec<EntryOutcome> = users.iter().map(|u| put(u, Outcome::Added)).collect();
    entries.push(put_group(&sales, None, Outcome::Added));
    let (done, _) = import(
        &[
            (
                "GET ResourceTypes",
                &[faulty::ALWAYS + faulty::NO_EXTENSIONS],
            ),
            ("POST Groups", &[faulty::ALWAYS + faulty::NO_MEMBERS]),
        ],
        entries,
    );
    assert!(done.iter().all(|e| e.outcome == Outcome::Added), "{done:?}");
    let dir = held();
    assert_eq!(dir.users.len(), 3);
    for u in &dir.users {
        assert!(
            u.user.tenant_id.is_some() && u.user.entra_id.is_some(),
            "linked: {u:?}"
        );
        assert_eq!(u.user.department, None, "the extension is not sent");
    }
    assert_eq!(members("Sales").len(), 3, "added by PATCH");

    // Member removal: the RFC's filter answered 501, Entra's list taken.
    let two = linked_group(1, "Sales", &everyone[..2]);
    let (done, seen) = import(
        &[("PATCH Groups", &[faulty::ALWAYS + faulty::FILTER_501])],
        vec![put_group(&two, None, Outcome::Updated)],
    );
    assert_eq!(done[0].outcome, Outcome::Updated, "{done:?}");
    assert_eq!(members("Sales"), ["u1@contoso.com", "u2@contoso.com"]);
    assert!(seen.contains(&"PATCH Groups -> 11".to_owned()), "{seen:?}");

    // A service that reads the list as "remove all": the other member is put back.
    let one = linked_group(1, "Sales", &everyone[..1]);
    let (done, _) = import(
        &[("PATCH Groups", &[faulty::ALWAYS + faulty::REMOVES_ALL])],
        vec![put_group(&one, None, Outcome::Updated)],
    );
    assert_eq!(done[0].outcome, Outcome::Failed, "{done:?}");
    assert!(
        done[0].detail.contains("did not keep 1 of its 1 members"),
        "{}",
        done[0].detail
    );
    assert_eq!(members("Sales"), ["u1@contoso.com"], "put back");

    // A rename answered 501 as a PATCH: a PUT, members kept.
    let renamed = linked_group(1, "Sales EU", &everyone[..1]);
    let (done, seen) = import(
        &[("PATCH Groups", &[faulty::ALWAYS + faulty::REPLACE_501])],
        vec![put_group(&renamed, Some("Sales"), Outcome::Updated)],
    );
    assert_eq!(done[0].outcome, Outcome::Updated, "{done:?}");
    assert!(seen.contains(&"PUT Groups".to_owned()), "{seen:?}");
    assert_eq!(members("Sales EU"), ["u1@contoso.com"]);
}

/// Users linked in the earlier form (the object id in `externalId`, the tenant in the
/// enterprise extension's `organization`) are still read as linked.
#[test]
fn links_of_the_earlier_form_are_still_recognised() {
    let old = serde_json::json!({
        "id": "x1",
        "userName": "ann@contoso.com",
        "externalId": "00000000-0000-4000-8000-000000000001",
        "active": true,
        adapters::scim::ENTERPRISE_USER: {"organization": testkit::tenant().to_string()},
    });
    let read = adapters::scim::user_from_resource(&old).unwrap();
    assert_eq!(read.user.tenant_id, Some(testkit::tenant()));
    assert_eq!(
        read.user.entra_id.unwrap().to_string(),
        "00000000-0000-4000-8000-000000000001"
    );
    let new = adapters::scim::user_resource(&linked(1, "ann@contoso.com", false));
    assert_eq!(
        new["externalId"],
        format!("{}/00000000-0000-4000-8000-000000000001", testkit::tenant())
    );
}

/// A service that cannot hold what roster writes is refused before anything is sent, in one
/// line naming what is missing: here, no Group resource type.
#[test]
fn a_service_without_groups_is_refused_before_anything_is_written() {
    let scim = Scim::start();
    let proxy = faulty::start(
        scim.url.as_str(),
        &[("GET ResourceTypes", &[faulty::NO_GROUPS])],
    );
    let e = ScimTarget::open(&proxy.url, Secret::new(TOKEN))
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("cannot hold what roster writes: no Group resource type") && !e.contains('\n'),
        "{e}"
    );
    let seen = proxy.seen.lock().unwrap().clone();
    assert!(seen.iter().all(|s| s.starts_with("GET")), "{seen:?}");
}

/// A bulk answer says a user was made, not what the service holds: the first user of a bulk
/// request is read back; a service that did not keep its `active` has every other one read
/// back too, and each such entry fails, saying what was not kept.
#[test]
fn users_made_in_bulk_are_checked_against_what_the_service_holds() {
    let scim = Scim::start();
    let proxy = faulty::start(scim.url.as_str(), &[("POST Bulk", &[faulty::NO_ACTIVE])]);
    let mut target = ScimTarget::open(&proxy.url, Secret::new(TOKEN)).unwrap();
    let mut state = target.load().unwrap();
    // A service that drops `active` does not say whether any of them is enabled.
    let entries: Vec<EntryOutcome> = (4..=6)
        .map(|n| {
            put(
                &linked(n, &format!("u{n}@contoso.com"), false),
                Outcome::Added,
            )
        })
        .collect();
    let applied = run_import(&mut target, &mut state, entries);
    let failed: Vec<&str> = applied
        .entries
        .iter()
        .filter(|e| e.outcome == Outcome::Failed)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        failed,
        ["u4@contoso.com", "u5@contoso.com", "u6@contoso.com"],
        "{:?}",
        applied.entries
    );
    let u5 = &applied.entries[1];
    assert!(
        u5.detail
            .contains("did not keep its account state (active)"),
        "{}",
        u5.detail
    );
    let seen = proxy.seen.lock().unwrap().clone();
    let reads = seen.iter().filter(|s| *s == "GET Users").count();
    assert!(reads >= 3, "the first read back, then the others: {seen:?}");
}
