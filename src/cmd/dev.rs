//! Developer tools: `fake-graph` and `fixture generate`.

use std::time::Duration;

use anyhow::{Context, Result};

use devtools::fake::{DeviceOutcome, FakeConfig, FakeGraph};

use super::usage;
use crate::cli::{DeviceArg, FakeGraphArgs, GenerateArgs};
use crate::render::{self, out, say};
use crate::Exit;

pub fn fake_graph(a: &FakeGraphArgs) -> Result<Exit> {
    let bytes = adapters::fixture::read_input(&a.tenant, "tenant fixture")?;
    let trusted = |f: &std::path::PathBuf| {
        devtools::fake::TrustedCertificate::read(f)
            .map_err(|e| usage(format!("{e}; give a PEM certificate")))
    };
    let trust_certificates = a
        .trust_certificate
        .iter()
        .map(trusted)
        .collect::<Result<Vec<_>>>()?;
    let trust_federated = match (&a.trust_federated, &a.federated_certificate) {
        (Some(issuer), Some(key)) => Some(devtools::fake::FederatedTrust {
            issuer: issuer.clone(),
            subject: a.federated_subject.clone(),
            key: trusted(key)?,
        }),
        _ => None,
    };
    let config = FakeConfig {
        page_size: a.page_size.max(1),
        throttle_every: a.throttle_every,
        fail_every: a.fail_every,
        fail_status: a.fail_status,
        fail_after: a.fail_after,
        drop_every: a.drop_every,
        truncate_every: a.truncate_every,
        missing_value_every: a.missing_value_every,
        slow_every: a.slow_every,
        slow: Duration::from_millis(a.slow_ms),
        loop_next_link: a.loop_next_link,
        latency: Duration::from_millis(a.latency_ms),
        ru_per_10s: a.ru_per_10s,
        retry_after: (!a.no_retry_after).then_some(a.retry_after),
        approve_after: a.approve_after,
        device_outcome: match a.device {
            DeviceArg::Approve => DeviceOutcome::Approve,
            DeviceArg::Decline => DeviceOutcome::Decline,
            DeviceArg::Expire => DeviceOutcome::Expire,
        },
        poll_interval: a.poll_interval,
        slow_down_once: false,
        token_ttl: Duration::from_secs(a.token_ttl_s.max(1)),
        expire_tokens_after: a.expire_tokens_after,
        client_secret: a.client_secret.clone(),
        trust_certificates,
        trust_federated,
        public_client_disabled: a.public_client_disabled,
        deny_consent: a.deny_consent,
        forbid: a.forbid.clone(),
        not_found: a.not_found.clone(),
        oversize_every: a.oversize_every,
        signed_in: a.signed_in.clone(),
        deny: a.deny_permission.clone(),
        expires_in: a
            .expires_in
            .as_deref()
            .map(|v| serde_json::from_str(v).unwrap_or_else(|_| v.into())),
    };
    let origin = a.tenant.display().to_string();
    let fake = FakeGraph::start(&bytes, &origin, config, a.addr)?;
    // SIGHUP reloads the tenant file: a new version of the tenant, which delta tokens see.
    // Listened for before the base URL is printed: whoever reads it may send one at once.
    let reloading = fake.reloader();
    let tenant = a.tenant.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut hangup = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    })?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            while hangup.recv().await.is_some() {
                let reloaded = adapters::fixture::read_input(&tenant, "tenant fixture")
                    .and_then(|bytes| reloading.reload(&bytes, &origin));
                say(&render::fake_reloaded(&tenant, reloaded));
            }
        })
    });
    out(&format!("{}\n", fake.base_url))?;
    say(&render::fake_serving(&a.tenant, &fake.base_url));
    fake.wait();
    Ok(Exit::Ok)
}

pub fn generate(a: &GenerateArgs) -> Result<Exit> {
    if !(0.0..=1.0).contains(&a.linked) {
        return Err(usage(format!(
            "--linked {}: expected a fraction between 0 and 1",
            a.linked
        )));
    }
    let options = devtools::generate::GenerateOptions {
        users: a.users,
        groups: a.groups,
        members_per_group: a.members_per_group,
        seed: a.seed,
        linked: a.linked,
    };
    devtools::generate::write_tenant(&a.out, options)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    if let Some(server) = &a.server_out {
        devtools::generate::write_server(server, options)
            .with_context(|| format!("cannot write {}", server.display()))?;
    }
    say(&render::generated(
        a.users,
        a.groups,
        a.seed,
        &a.out,
        a.server_out.as_deref(),
    ));
    Ok(Exit::Ok)
}

/// `roster completions SHELL`: the completion script, generated from the command line's
/// definition, on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<Exit> {
    use clap::CommandFactory;
    let mut cmd = crate::cli::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "roster", &mut script);
    out(&String::from_utf8_lossy(&script))?;
    Ok(Exit::Ok)
}

/// `roster manpage`: roster(1) in roff, generated from the command line's definition; with
/// `--dir`, every page — roster(1) and one per command, which roster(1) refers to — written
/// into that directory.
pub fn manpage(dir: Option<&std::path::Path>) -> Result<Exit> {
    use clap::CommandFactory;
    let Some(dir) = dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(crate::cli::Cli::command()).render(&mut page)?;
        out(&String::from_utf8_lossy(&page))?;
        return Ok(Exit::Ok);
    };
    let shown = render::cell(&dir.display().to_string());
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {shown}"))?;
    clap_mangen::generate_to(crate::cli::Cli::command(), dir)
        .with_context(|| format!("cannot write the man pages into {shown}"))?;
    let pages = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("roster"))
        .count();
    say(&format!(
        "{pages} man pages in {shown}; `man roster` to read them\n"
    ));
    Ok(Exit::Ok)
}
