//! The live path over loopback: the Graph source reads every fixture tenant through
//! `fake-graph` — small pages, throttling, 503s, a token that expires mid-run — into exactly
//! the snapshot the fixture source gives; and signing in works, fails and explains itself the
//! way an admin meets it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adapters::auth::{
    AuthMode, AuthSettings, Authenticator, DevicePrompt, Prompt, Secret, SecretSource, TokenSource,
};
use adapters::fixture::read_tenant;
use adapters::graph::{GraphClient, GraphSource, GraphStats, Query, RetryPolicy};
use devtools::fake::{DeviceOutcome, FakeConfig, FakeGraph};
use engine::search::{SearchView, TypeFilter};
use engine::TenantId;
use url::Url;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

const SECRET: &str = "fake-client-secret-value-1234";

fn start(tenant: &Path, config: FakeConfig) -> FakeGraph {
    let bytes = std::fs::read(tenant).unwrap();
    FakeGraph::start(
        &bytes,
        &tenant.display().to_string(),
        config,
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap()
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

fn settings(fake: &FakeGraph, tenant: &TenantId, mode: AuthMode, cache: &Path) -> AuthSettings {
    let root = Url::parse(&fake.base_url).unwrap();
    AuthSettings {
        tenant: tenant.clone(),
        client_id: "11111111-2222-3333-4444-555555555555".into(),
        mode,
        login_root: root.clone(),
        graph_root: root,
        cache_file: cache.to_owned(),
        secret: None,
        certificate: None,
        assertion_file: None,
    }
}

fn counting_prompt() -> (Arc<AtomicUsize>, Prompt) {
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    (
        n,
        Arc::new(move |p: &DevicePrompt| {
            assert!(p.verification_uri.starts_with("http://127.0.0.1:"));
            assert!(p.user_code.starts_with("FAKE-"));
            m.fetch_add(1, Ordering::SeqCst);
        }),
    )
}

/// A client signing in with the client secret from `ROSTER_CLIENT_SECRET`, retrying fast,
/// its token cache in `dir`; and the statistics it keeps.
fn secret_client(
    fake: &FakeGraph,
    tenant: &TenantId,
    dir: &Path,
) -> (GraphClient, Arc<GraphStats>) {
    let mut s = settings(fake, tenant, AuthMode::ClientSecret, &dir.join("t.json"));
    s.secret = Some(SecretSource::Env);
    let (_, prompt) = counting_prompt();
    let stats = Arc::new(GraphStats::default());
    let client = GraphClient::new(
        &Url::parse(&fake.base_url).unwrap(),
        Arc::new(Authenticator::new(s, prompt)),
        fast_policy(),
        stats.clone(),
    );
    (client, stats)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_fixture_tenant_reads_the_same_through_graph_with_faults() {
    std::env::set_var("ROSTER_CLIENT_SECRET", SECRET);
    for tenant in [
        fixtures().join("demo/tenant.json"),
        fixtures().join("tenants/graph-docs.json"),
        fixtures().join("scenarios/audit/tenant-later.json"),
    ] {
        let expected = read_tenant(&tenant).unwrap().snapshot;
        let fake = start(
            &tenant,
            FakeConfig {
                page_size: 2,
                throttle_every: Some(3),
                fail_every: Some(4),
                retry_after: Some(0.01),
                expire_tokens_after: Some(9),
                client_secret: Some(SECRET.into()),
                ..FakeConfig::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let (client, stats) = secret_client(&fake, &expected.tenant_id, dir.path());
        let started = std::time::Instant::now();
        let loaded = runtime()
            .block_on(GraphSource::new(client, expected.tenant_id.clone()).enumerate())
            .unwrap();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        assert_eq!(loaded.snapshot, expected, "{}", tenant.display());
        assert_eq!(loaded.snapshot.fingerprint(), expected.fingerprint());
        let (mut a, mut b) = (
            SearchView::from_snapshot(&loaded.snapshot),
            SearchView::from_snapshot(&expected),
        );
        assert_eq!(a.search("", TypeFilter::All), b.search("", TypeFilter::All));
        let f = fake.stats();
        assert!(
            f.throttled > 0 && f.failed > 0,
            "faults were injected: {f:?}"
        );
        assert!(
            f.tokens_issued >= 2,
            "the token expired mid-run and was renewed: {f:?}"
        );
        assert_eq!(f.unexpected, 0);
        let mine = stats.snapshot();
        assert_eq!(
            mine.retries,
            f.throttled + f.failed,
            "every fault was retried once: {mine:?} vs {f:?}"
        );
        assert_eq!(mine.throttled, f.throttled);
        // Each 429 held the whole client back for its Retry-After (10 ms); overlapping holds
        // count once, so the total is wall-clock time.
        assert!(
            mine.held_ms >= 10 && mine.held_ms <= elapsed_ms,
            "held back {} ms in {elapsed_ms} ms",
            mine.held_ms
        );
    }
}

/// An injected fault never hits the same request twice in a row (against real Graph, a retry
/// after `Retry-After` gets through): even with every request due a fault by its count, a
/// retrying client reads the whole tenant, whatever order its concurrent requests arrive in.
#[test]
fn a_retried_request_gets_through_the_fakes_injected_faults() {
    std::env::set_var("ROSTER_CLIENT_SECRET", SECRET);
    let tenant = fixtures().join("demo/tenant.json");
    let expected = read_tenant(&tenant).unwrap().snapshot;
    for (throttle_every, fail_every) in [(Some(1), None), (None, Some(1)), (Some(2), Some(3))] {
        let fake = start(
            &tenant,
            FakeConfig {
                page_size: 2,
                throttle_every,
                fail_every,
                retry_after: Some(0.01),
                client_secret: Some(SECRET.into()),
                ..FakeConfig::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let (client, stats) = secret_client(&fake, &expected.tenant_id, dir.path());
        let loaded = runtime()
            .block_on(GraphSource::new(client, expected.tenant_id.clone()).enumerate())
            .unwrap_or_else(|e| panic!("{throttle_every:?}/{fail_every:?}: {e}"));
        assert_eq!(loaded.snapshot, expected);
        let f = fake.stats();
        assert!(f.throttled + f.failed > 0, "faults were injected: {f:?}");
        assert_eq!(stats.snapshot().retries, f.throttled + f.failed, "{f:?}");
    }
}

#[test]
fn device_code_sign_in_polls_until_approved_and_caches_the_refresh_token() {
    let tenant = fixtures().join("tenants/graph-docs.json");
    let id = read_tenant(&tenant).unwrap().snapshot.tenant_id;
    let fake = start(
        &tenant,
        FakeConfig {
            approve_after: 2,
            slow_down_once: true,
            ..FakeConfig::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("tokens/org.json");
    let (prompts, prompt) = counting_prompt();
    let auth = Authenticator::new(
        settings(&fake, &id, AuthMode::DeviceCode, &cache),
        prompt.clone(),
    );
    let rt = runtime();
    let started = std::time::Instant::now();
    rt.block_on(auth.sign_in()).unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "two pending polls at 1 s, then slow_down added 5 s"
    );
    assert_eq!(prompts.load(Ordering::SeqCst), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(cache.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
    let cached = std::fs::read_to_string(&cache).unwrap();
    assert!(cached.contains("fake-rt-"), "the refresh token is kept");

    // A later command signs in from the cache, without prompting.
    let later = Authenticator::new(settings(&fake, &id, AuthMode::DeviceCode, &cache), prompt);
    let token = rt.block_on(later.token()).unwrap();
    assert!(token.starts_with("fake-at-"));
    let refreshed = rt.block_on(later.refresh(&token)).unwrap();
    assert_ne!(
        refreshed, token,
        "a rejected token is refreshed with the refresh token"
    );
    assert_eq!(prompts.load(Ordering::SeqCst), 1);
    assert!(Authenticator::sign_out(&cache).unwrap());
    assert!(!cache.exists());
}

#[test]
fn sign_in_failures_are_explained_with_the_fix() {
    let tenant = fixtures().join("tenants/graph-docs.json");
    let id = read_tenant(&tenant).unwrap().snapshot.tenant_id;
    let other = TenantId::parse("99999999-9999-4999-8999-999999999999").unwrap();
    let cases: Vec<(FakeConfig, AuthMode, &TenantId, &str)> = vec![
        (
            FakeConfig {
                public_client_disabled: true,
                approve_after: 0,
                ..FakeConfig::default()
            },
            AuthMode::DeviceCode,
            &id,
            "Allow public client flows",
        ),
        (
            FakeConfig {
                deny_consent: true,
                approve_after: 0,
                ..FakeConfig::default()
            },
            AuthMode::DeviceCode,
            &id,
            "grant admin consent",
        ),
        (
            FakeConfig {
                device_outcome: DeviceOutcome::Decline,
                approve_after: 0,
                ..FakeConfig::default()
            },
            AuthMode::DeviceCode,
            &id,
            "declined",
        ),
        (
            FakeConfig {
                device_outcome: DeviceOutcome::Expire,
                approve_after: 0,
                ..FakeConfig::default()
            },
            AuthMode::DeviceCode,
            &id,
            "expired",
        ),
        (
            FakeConfig::default(),
            AuthMode::DeviceCode,
            &other,
            "check --tenant",
        ),
        (
            FakeConfig {
                client_secret: Some("right".into()),
                ..FakeConfig::default()
            },
            AuthMode::ClientSecret,
            &id,
            "client secret for app",
        ),
    ];
    std::env::set_var("ROSTER_CLIENT_SECRET", "wrong");
    for (config, mode, tenant_id, expect) in cases {
        let fake = start(&tenant, config);
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(&fake, tenant_id, mode, &dir.path().join("t.json"));
        s.secret = Some(SecretSource::Env);
        let (_, prompt) = counting_prompt();
        let err = runtime()
            .block_on(Authenticator::new(s, prompt).sign_in())
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(expect), "expected {expect:?} in {msg:?}");
        assert!(
            !msg.contains('\n') && !msg.contains("Trace ID"),
            "one line, no trace ids: {msg:?}"
        );
        assert!(
            !dir.path().join("t.json").exists(),
            "nothing is cached after a failed sign-in"
        );
    }
}

#[test]
fn a_missing_permission_names_the_permission() {
    let tenant = fixtures().join("tenants/graph-docs.json");
    let id = read_tenant(&tenant).unwrap().snapshot.tenant_id;
    for (forbid, permission) in [
        ("users", "User.Read.All"),
        ("groups/", "GroupMember.Read.All"),
        ("groups", "Group.Read.All"),
    ] {
        let fake = start(
            &tenant,
            FakeConfig {
                forbid: vec![forbid.into()],
                ..FakeConfig::default()
            },
        );
        let rt = runtime();
        let token = rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut s = settings(
                &fake,
                &id,
                AuthMode::ClientSecret,
                &dir.path().join("t.json"),
            );
            s.secret = Some(SecretSource::File {
                path: secret_file(dir.path()),
            });
            let (_, prompt) = counting_prompt();
            let a = Authenticator::new(s, prompt);
            a.token().await.unwrap()
        });
        let client = GraphClient::new(
            &Url::parse(&fake.base_url).unwrap(),
            Arc::new(adapters::auth::StaticToken(Secret::new(token))),
            fast_policy(),
            Arc::default(),
        );
        let err = rt
            .block_on(GraphSource::new(client, id.clone()).enumerate())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(permission) && err.contains("Authorization_RequestDenied"),
            "{forbid}: {err}"
        );
    }
}

fn secret_file(dir: &Path) -> PathBuf {
    let path = dir.join("secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

#[cfg(unix)]
#[test]
fn a_world_readable_secret_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = secret_file(dir.path());
    assert_eq!(
        adapters::auth::read_secret_file(&path).unwrap().expose(),
        SECRET
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = adapters::auth::read_secret_file(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("world-readable") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(!err.contains(SECRET));
}

#[test]
fn secrets_and_tokens_never_show_in_debug_output() {
    let secret = Secret::new(SECRET);
    assert!(!format!("{secret:?}").contains(SECRET));
    let s = AuthSettings {
        tenant: TenantId::parse("11111111-1111-4111-8111-111111111111").unwrap(),
        client_id: "c".into(),
        mode: AuthMode::ClientSecret,
        login_root: Url::parse("http://127.0.0.1:1").unwrap(),
        graph_root: Url::parse("http://127.0.0.1:1").unwrap(),
        cache_file: "/nonexistent/t.json".into(),
        secret: Some(SecretSource::Env),
        certificate: None,
        assertion_file: None,
    };
    let (_, prompt) = counting_prompt();
    let a = Authenticator::new(s, prompt);
    let shown = format!("{a:?}");
    assert!(!shown.contains(SECRET) && shown.contains("Authenticator"));
}

#[test]
fn a_listing_that_never_completes_fails_cleanly() {
    let tenant = fixtures().join("demo/tenant.json");
    let id = read_tenant(&tenant).unwrap().snapshot.tenant_id;
    for (config, expect) in [
        (
            FakeConfig {
                fail_after: Some(5),
                page_size: 3,
                ..FakeConfig::default()
            },
            "gave up after 3 attempts",
        ),
        (
            FakeConfig {
                loop_next_link: true,
                page_size: 5,
                ..FakeConfig::default()
            },
            "repeats (a paging loop)",
        ),
    ] {
        let fake = start(
            &tenant,
            FakeConfig {
                client_secret: Some(SECRET.into()),
                ..config
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(
            &fake,
            &id,
            AuthMode::ClientSecret,
            &dir.path().join("t.json"),
        );
        s.secret = Some(SecretSource::File {
            path: secret_file(dir.path()),
        });
        let (_, prompt) = counting_prompt();
        let policy = RetryPolicy {
            max_attempts: 3,
            ..fast_policy()
        };
        let client = GraphClient::new(
            &Url::parse(&fake.base_url).unwrap(),
            Arc::new(Authenticator::new(s, prompt)),
            policy,
            Arc::default(),
        );
        let err = runtime()
            .block_on(GraphSource::new(client, id.clone()).enumerate())
            .unwrap_err()
            .to_string();
        assert!(err.contains(expect), "expected {expect:?} in {err:?}");
    }
}

/// The fake answers advanced queries only with `ConsistencyLevel: eventual`, on every page,
/// as Graph does; and it says loudly when it is asked something it does not serve.
#[test]
fn the_fake_behaves_like_graph_for_advanced_queries_and_refuses_the_unknown() {
    let tenant = fixtures().join("demo/tenant.json");
    let id = read_tenant(&tenant).unwrap().snapshot.tenant_id;
    let fake = start(
        &tenant,
        FakeConfig {
            page_size: 2,
            client_secret: Some(SECRET.into()),
            ..FakeConfig::default()
        },
    );
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(
        &fake,
        &id,
        AuthMode::ClientSecret,
        &dir.path().join("t.json"),
    );
    s.secret = Some(SecretSource::File {
        path: secret_file(dir.path()),
    });
    let (_, prompt) = counting_prompt();
    let client = GraphClient::new(
        &Url::parse(&fake.base_url).unwrap(),
        Arc::new(Authenticator::new(s, prompt)),
        fast_policy(),
        Arc::default(),
    );
    rt.block_on(async {
        // $count and $search need the header on every page of the listing.
        let all: Vec<serde_json::Value> = client
            .list(
                client.url("users?$count=true&$select=id,displayName"),
                Query::Advanced,
                "counting users",
            )
            .await
            .unwrap();
        assert_eq!(all.len(), 46);
        let err = client
            .list::<serde_json::Value>(
                client.url("users?$count=true"),
                Query::Plain,
                "counting users",
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ConsistencyLevel"), "{err}");
        let found: Vec<serde_json::Value> = client
            .list(
                client.url("users?$search=%22displayName:lee%22&$select=displayName"),
                Query::Advanced,
                "searching",
            )
            .await
            .unwrap();
        assert_eq!(found, vec![serde_json::json!({"displayName": "Lee Gu"})]);
        let err = client
            .list::<serde_json::Value>(
                client.url("users?$search=%22displayName:lee%22"),
                Query::Plain,
                "searching",
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("Request_UnsupportedQuery"),
            "{err}"
        );
        let started: Vec<serde_json::Value> = client
            .list(
                client.url("groups?$filter=startswith(displayName,'golf')&$select=displayName"),
                Query::Plain,
                "filtering",
            )
            .await
            .unwrap();
        assert_eq!(started.len(), 2);
        let page: serde_json::Value = client
            .get_json(&client.url("users?$top=3"), Query::Plain, "one page")
            .await
            .unwrap();
        let next = page["@odata.nextLink"].as_str().unwrap();
        assert!(
            next.starts_with(&fake.base_url) && next.contains("%24top=3"),
            "absolute nextLinks keep the query: {next}"
        );
        let err = client
            .get_json::<serde_json::Value>(&client.url("me/memberOf"), Query::Plain, "reading me")
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("fake-graph does not serve it"),
            "{err}"
        );
    });
    assert_eq!(fake.stats().unexpected, 1);
}

#[test]
fn each_cloud_has_its_own_hosts() {
    use adapters::auth::Cloud;
    assert_eq!(
        (Cloud::Global.graph_root(), Cloud::Global.login_root()),
        (
            "https://graph.microsoft.com",
            "https://login.microsoftonline.com"
        )
    );
    assert_eq!(
        (Cloud::Usgov.graph_root(), Cloud::Usgov.login_root()),
        (
            "https://graph.microsoft.us",
            "https://login.microsoftonline.us"
        )
    );
    assert_eq!(
        (Cloud::China.graph_root(), Cloud::China.login_root()),
        (
            "https://microsoftgraph.chinacloudapi.cn",
            "https://login.chinacloudapi.cn"
        )
    );
}

/// Follows a delta read from `url` to its end: every change, and the deltaLink.
async fn delta_read(c: &GraphClient, url: Url) -> (Vec<serde_json::Value>, Url) {
    let mut changes = Vec::new();
    let mut next = url;
    loop {
        let page: serde_json::Value = c.get_json(&next, Query::Plain, "delta").await.unwrap();
        changes.extend(page["value"].as_array().unwrap().iter().cloned());
        if let Some(n) = page["@odata.nextLink"].as_str() {
            next = Url::parse(n).unwrap();
        } else {
            let link = page["@odata.deltaLink"]
                .as_str()
                .expect("a deltaLink ends it");
            return (changes, Url::parse(link).unwrap());
        }
    }
}

/// The fake serves Graph's change tracking: a first delta read lists everything in pages and
/// ends in a deltaLink; after the tenant is reloaded, the deltaLink answers exactly what
/// changed (`@removed` `changed` for a user now in the recycle bin, `deleted` for one gone for
/// good, `members@delta` for a group); `latest` skips to now; an expired token answers 410.
#[test]
fn the_fake_serves_delta_and_reloads_its_tenant() {
    std::env::set_var("ROSTER_CLIENT_SECRET", SECRET);
    let tenant_file = fixtures().join("demo/tenant.json");
    let fake = start(
        &tenant_file,
        FakeConfig {
            page_size: 2,
            ..FakeConfig::default()
        },
    );
    let tenant = read_tenant(&tenant_file).unwrap().snapshot.tenant_id;
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = secret_client(&fake, &tenant, dir.path());
    let rt = runtime();
    let mut t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&tenant_file).unwrap()).unwrap();
    let users = t["users"].as_array().unwrap().len();

    let (all, users_link) = rt.block_on(delta_read(
        &c,
        c.url("users/delta?$select=id,displayName,department"),
    ));
    assert_eq!(all.len(), users);
    assert!(all.iter().all(|u| u.get("userPrincipalName").is_none()));
    let (groups, groups_link) = rt.block_on(delta_read(&c, c.url("groups/delta")));
    assert!(groups.iter().all(|g| g["members@delta"].is_array()));

    // Nothing changed yet: an empty delta.
    let (none, _) = rt.block_on(delta_read(&c, users_link.clone()));
    assert_eq!(none, Vec::<serde_json::Value>::new());

    // One user moves department, one is soft-deleted, one is gone for good; a group gains a member.
    let list = t["users"].as_array_mut().unwrap();
    list[0]["department"] = "Moved".into();
    let moved = list[0]["id"].clone();
    let soft = list.remove(1);
    let hard = list.remove(1);
    let mut bin = soft.clone();
    bin["deletedDateTime"] = "2026-11-28T10:00:00Z".into();
    t["deletedUsers"].as_array_mut().unwrap().push(bin);
    let group = t["groups"][0]["id"].clone();
    t["groups"][0]["members"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"@odata.type": "#microsoft.graph.user", "id": moved}));
    let reloader = fake.reloader();
    assert_eq!(
        reloader
            .reload(&serde_json::to_vec(&t).unwrap(), "changed")
            .unwrap(),
        2
    );

    let (changed, _) = rt.block_on(delta_read(&c, users_link.clone()));
    let removed = |id: &serde_json::Value| {
        changed
            .iter()
            .find(|u| u["id"] == *id)
            .map(|u| u["@removed"]["reason"].clone())
    };
    assert_eq!(changed.len(), 3, "{changed:?}");
    assert_eq!(
        changed.iter().find(|u| u["id"] == moved).unwrap()["department"],
        "Moved"
    );
    assert_eq!(removed(&soft["id"]), Some("changed".into()));
    assert_eq!(removed(&hard["id"]), Some("deleted".into()));
    let (group_changes, _) = rt.block_on(delta_read(&c, groups_link));
    let g = group_changes.iter().find(|g| g["id"] == group).unwrap();
    let members = g["members@delta"].as_array().unwrap();
    assert!(members
        .iter()
        .any(|m| m["id"] == moved && m.get("@removed").is_none()));

    // Told over HTTP (as `roster fake-graph` is on SIGHUP): the original tenant again, a third
    // version; the changes since the second are the reverse.
    let answer: serde_json::Value = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/_fake/reload", fake.base_url))
            .body(std::fs::read(&tenant_file).unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(answer["version"], 3);
    let (back, _) = rt.block_on(delta_read(&c, users_link.clone()));
    assert_eq!(
        back,
        Vec::<serde_json::Value>::new(),
        "version 1 and 3 are the same tenant"
    );

    // `latest` answers no change and a link to now.
    let (latest, _) = rt.block_on(delta_read(&c, c.url("users/delta?$deltatoken=latest")));
    assert!(latest.is_empty());

    // An expired token is answered as Graph answers it.
    reloader.expire_delta();
    let err = rt
        .block_on(c.get_json::<serde_json::Value>(&users_link, Query::Plain, "delta"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("410") && err.contains("syncStateNotFound"),
        "{err}"
    );
}

/// Reading only the changes: over a chain of tenant versions (users added, renamed, disabled,
/// moved, soft-deleted, restored, hard-deleted; groups nested, un-nested, edited and
/// soft-deleted; then nothing), each version read through Graph delta — pages of two,
/// throttling, 503s — applied to the read before gives exactly the snapshot of that version's
/// fixture, in a handful of requests when nothing changed. An expired token makes the live
/// source read the whole tenant instead, and say so.
#[test]
fn changes_read_through_delta_equal_each_versions_fixture() {
    use adapters::graph::LiveSource;
    use adapters::source::{Mirror, TenantSource};
    std::env::set_var("ROSTER_CLIENT_SECRET", SECRET);
    let (tenant_file, first, versions) = demo_versions();
    let fake = start(
        &tenant_file,
        FakeConfig {
            page_size: 2,
            throttle_every: Some(3),
            fail_every: Some(4),
            retry_after: Some(0.01),
            client_secret: Some(SECRET.into()),
            ..FakeConfig::default()
        },
    );
    let expected = snapshot_of;
    let tenant = expected(&first).tenant_id;
    let dir = tempfile::tempdir().unwrap();
    let (client, stats) = secret_client(&fake, &tenant, dir.path());
    let source = GraphSource::new(client, tenant);
    let rt = runtime();
    let mut loaded = rt.block_on(source.enumerate_tracked()).unwrap();
    assert_eq!(loaded.snapshot, expected(&first));
    assert_eq!(loaded.tracking.since, None);
    let reloader = fake.reloader();
    let mirror = |loaded: &adapters::fixture::Loaded, n: u128| Mirror {
        run: engine::RunId(uuid::Uuid::from_u128(n)),
        users: loaded.snapshot.users.clone(),
        groups: loaded.snapshot.groups.clone(),
        links: loaded
            .tracking
            .links
            .clone()
            .expect("a read that tracks changes"),
    };
    for (i, v) in versions.iter().enumerate().skip(1) {
        reloader
            .reload(&serde_json::to_vec(v).unwrap(), "version")
            .unwrap();
        let before = stats.snapshot();
        loaded = rt
            .block_on(source.changes(mirror(&loaded, i as u128), &Default::default()))
            .unwrap();
        let after = stats.snapshot();
        assert_eq!(loaded.snapshot, expected(v), "version {}", i + 1);
        assert_eq!(
            loaded.tracking.since,
            Some(engine::RunId(uuid::Uuid::from_u128(i as u128)))
        );
        if i == versions.len() - 1 {
            // Nothing changed: one empty page of users, one of groups, and the recycle bins
            // (in pages of two).
            let bins = loaded.snapshot.deleted_users.len() + loaded.snapshot.deleted_groups.len();
            let bin_pages = loaded.snapshot.deleted_users.len().div_ceil(2)
                + loaded.snapshot.deleted_groups.len().div_ceil(2);
            assert_eq!(
                (
                    after.requests - after.retries - (before.requests - before.retries),
                    after.objects - before.objects
                ),
                (2 + bin_pages as u64, bins as u64),
                "{before:?} {after:?}"
            );
        }
    }
    assert!(fake.stats().throttled > 0 && fake.stats().failed > 0);

    // The fake forgets every token: the live source reads the whole tenant, and says why.
    reloader.expire_delta();
    let last = versions.last().unwrap();
    let base = mirror(&loaded, 99);
    drop(rt);
    let live = LiveSource {
        source,
        stop: Default::default(),
    };
    let whole = live.read_changes(base).unwrap();
    assert_eq!(whole.snapshot, expected(last));
    assert_eq!(whole.tracking.since, None);
    assert!(whole.tracking.links.is_some());
    assert!(
        whole.problems[0].starts_with(&format!(
            "could not read only the changes since run {}",
            uuid::Uuid::from_u128(99)
        )) && whole.problems[0].contains("syncStateNotFound")
            && whole.problems[0].ends_with("read the whole tenant instead"),
        "{:?}",
        whole.problems
    );
}

/// A change listing that does not complete (here Graph answers 404 on every groups delta
/// page) is never applied in part: the live source reads the whole tenant instead — exactly the
/// tenant as it is, nothing missing — and says why; with no links to resume from, the next run
/// reads the whole tenant too.
#[test]
fn a_change_listing_that_fails_is_never_applied_in_part() {
    use adapters::graph::LiveSource;
    use adapters::source::{Mirror, TenantSource};
    std::env::set_var("ROSTER_CLIENT_SECRET", SECRET);
    let (tenant_file, first, versions) = demo_versions();
    let fake = start(
        &tenant_file,
        FakeConfig {
            page_size: 2,
            not_found: vec!["groups/delta".into()],
            client_secret: Some(SECRET.into()),
            ..FakeConfig::default()
        },
    );
    let snapshot = snapshot_of;
    let base = snapshot(&first);
    let dir = tempfile::tempdir().unwrap();
    let (client, _) = secret_client(&fake, &base.tenant_id, dir.path());
    let users_link = runtime()
        .block_on(client.get_json::<serde_json::Value>(
            &client.url("users/delta?$deltatoken=latest"),
            Query::Plain,
            "latest",
        ))
        .unwrap()["@odata.deltaLink"]
        .as_str()
        .unwrap()
        .to_owned();
    fake.reloader()
        .reload(&serde_json::to_vec(&versions[1]).unwrap(), "version 2")
        .unwrap();
    let live = LiveSource {
        source: GraphSource::new(client, base.tenant_id.clone()),
        stop: Default::default(),
    };
    let read = live
        .read_changes(Mirror {
            run: engine::RunId(uuid::Uuid::from_u128(7)),
            users: base.users.clone(),
            groups: base.groups.clone(),
            links: engine::event::DeltaLinks {
                users: users_link,
                groups: format!("{}/v1.0/groups/delta?$deltatoken=v1", fake.base_url),
            },
        })
        .unwrap();
    assert_eq!(read.snapshot, snapshot(&versions[1]));
    assert_eq!(read.tracking, Default::default());
    assert!(
        read.problems[0].contains("could not read only the changes since run")
            && read.problems[0].contains("not found")
            && read.problems[1].starts_with("cannot track changes"),
        "{:?}",
        read.problems
    );
}

/// The demo tenant's file, its JSON, and the versions `testkit::tenant_versions` changes it into.
fn demo_versions() -> (PathBuf, serde_json::Value, Vec<serde_json::Value>) {
    let file = fixtures().join("demo/tenant.json");
    let first: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let versions = testkit::tenant_versions(&first);
    (file, first, versions)
}

/// The snapshot a tenant version's fixture reads as.
fn snapshot_of(v: &serde_json::Value) -> engine::model::TenantSnapshot {
    adapters::fixture::parse_tenant(&serde_json::to_vec(v).unwrap(), "version")
        .unwrap()
        .snapshot
}
