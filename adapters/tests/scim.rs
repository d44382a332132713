//! The SCIM mapping and directory reading against a real SCIM service: `scim2-server` (PyPI),
//! started on loopback, one per test. `.ci/run` installs it into `.ci/venv`; elsewhere, set
//! `ROSTER_SCIM2_SERVER` to its executable or put it on PATH.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adapters::auth::Secret;
use adapters::scim::{group_resource, user_resource, ScimClient, ServiceConfig};
use engine::model::{AuthType, EntraAttributes, ServerGroup, ServerUser, UserType};
use serde_json::Value;
use url::Url;

const TOKEN: &str = "scim-test-token";

/// A `scim2-server` on a free loopback port, stopped when dropped.
struct Scim {
    child: Child,
    url: Url,
}

impl Drop for Scim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scim2_server() -> PathBuf {
    if let Some(p) = std::env::var_os("ROSTER_SCIM2_SERVER").filter(|p| !p.is_empty()) {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/venv/bin/scim2-server");
    if venv.exists() {
        return venv;
    }
    let on_path = PathBuf::from("scim2-server");
    assert!(
        Command::new(&on_path).arg("--help").output().is_ok_and(|o| o.status.success()),
        "scim2-server is not installed: python3 -m venv .ci/venv && .ci/venv/bin/pip install scim2-server (.ci/run does), or set ROSTER_SCIM2_SERVER"
    );
    on_path
}

impl Scim {
    fn start() -> Scim {
        Scim::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Scim {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(scim2_server())
            .args([
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--bearer-token",
                TOKEN,
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url: Url = format!("http://127.0.0.1:{port}/v2/").parse().unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(Instant::now() < until, "scim2-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Scim { child, url }
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
        display_name: Some(format!("User {n}")),
        email: Some(login.into()),
        department: n.is_multiple_of(2).then(|| "Sales".to_owned()),
        auth_type: AuthType::Entra,
        entra_id: Some(id.clone()),
        tenant_id: Some(testkit::tenant()),
        enabled: !n.is_multiple_of(5),
        entra: None,
    };
    ServerUser {
        entra: Some(EntraAttributes {
            id: Some(id),
            user_principal_name: Some(login.into()),
            display_name: user.display_name.clone(),
            given_name: Some("User".into()),
            surname: Some(format!("{n}")),
            mail: user.email.clone(),
            department: user.department.clone(),
            job_title: n.is_multiple_of(3).then(|| "Engineer".to_owned()),
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

    let client = ScimClient::new(&scim.url, Some(Secret::new(TOKEN)));
    let dir = rt.block_on(client.load()).unwrap();
    assert_eq!(dir.users.len(), users.len(), "every page read");
    for u in &users {
        assert_eq!(dir.state.user(&u.login), Some(u), "{}", u.login);
    }
    for g in &groups {
        let read = dir.state.group(&g.name).unwrap();
        let held = ServerGroup {
            description: None,
            group_type: String::new(),
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
    let wrong = ScimClient::new(&scim.url, Some(Secret::new("nope")));
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
    let client = ScimClient::new(&scim.url, Some(Secret::new(TOKEN)));
    assert_eq!(
        rt.block_on(client.service_config()).unwrap(),
        ServiceConfig {
            patch: true,
            bulk: Some((1000, 1_048_576)),
            filter: Some(1000),
            etag: true,
        }
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spc.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": false},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": false, "maxResults": 0},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": []
        })
        .to_string(),
    )
    .unwrap();
    let bare = Scim::start_with(&["--service-provider-config", file.to_str().unwrap()]);
    let client = ScimClient::new(&bare.url, Some(Secret::new(TOKEN)));
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
    let t = adapters::scim::token(Some(&file)).unwrap().unwrap();
    assert_eq!(t.expose(), "s3cret-token");
}

/// The writes as a stock service answers them: a user created, a second with its userName a
/// conflict; disabled with `active: false` under its version, a stale version refused; a member
/// removed with `members[value eq "…"]` and added back; deleted, then gone.
#[test]
fn writes_are_answered_as_rfc_7644_says() {
    use adapters::scim::{add_members, remove_member, replace, WriteError};
    let rt = rt();
    let scim = Scim::start();
    let client = ScimClient::new(&scim.url, Some(Secret::new(TOKEN)));
    rt.block_on(async {
        let ann = linked(1, "ann@contoso.com", false);
        let made = client.create("Users", &user_resource(&ann)).await.unwrap();
        assert!(made.version.is_some());
        let again = client
            .create("Users", &user_resource(&ann))
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
            .unwrap();
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
            group_type: String::new(),
            entra_id: Some("00000000-0000-4000-8000-100000000002".parse().unwrap()),
            tenant_id: Some(testkit::tenant()),
            enabled: true,
            members: vec![],
        };
        let g = client
            .create(
                "Groups",
                &group_resource(&group, std::slice::from_ref(&made.id)),
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
                "00000000-0000-4000-8000-000000000001",
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
