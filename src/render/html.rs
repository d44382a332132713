//! `roster report RUN --format html`: one self-contained HTML5 page for auditors — the run's
//! header, the summary as a bar, every entry with its changes, the deleted objects with their
//! evidence, and where the run sits in the log. Inline CSS, no request to anywhere; the inline
//! script only sorts and filters, and the page reads and prints whole without it. Every text
//! from the log is escaped (control characters made visible, then HTML-escaped).

use std::fmt::Write as _;

use app::runs::ReportPage;
use engine::event::Outcome;
use engine::event::{Mode, RunStatus, SourceKind, TargetInfo};

use super::{outcome_label, summary_text};

/// Text from the log, safe in HTML text and in a double-quoted attribute.
fn esc(s: &str) -> String {
    let shown = engine::text::printable(s);
    let mut out = String::with_capacity(shown.len());
    for c in shown.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "(none)".into(),
        serde_json::Value::String(s) => esc(s),
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(value).collect();
            format!("[{}]", items.join(", "))
        }
        other => esc(&other.to_string()),
    }
}

/// The colour of an outcome in the bar and the badges.
fn colour(o: Outcome) -> &'static str {
    match o {
        Outcome::Added => "#2e7d32",
        Outcome::Updated => "#1565c0",
        Outcome::Unchanged => "#9e9e9e",
        Outcome::Skipped => "#f9a825",
        Outcome::Disabled => "#ef6c00",
        Outcome::Deleted => "#c62828",
        Outcome::Ignored => "#6d4c41",
        Outcome::Conflict => "#8e24aa",
        Outcome::Failed => "#b71c1c",
    }
}

const STYLE: &str = r#"
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
body { margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
.run-id { font-family: ui-monospace, monospace; color: #555; margin-top: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1.5rem; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
.bar { display: flex; height: 1.6rem; border-radius: 4px; overflow: hidden; border: 1px solid #bbb; }
.bar span { display: block; min-width: 2px; }
.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; }
.swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px; margin-right: .35rem; vertical-align: middle; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem; border-bottom: 1px solid #e0e0e0; }
th { background: #f4f4f4; position: sticky; top: 0; }
th[data-sort] { cursor: pointer; }
td.changes { font-family: ui-monospace, monospace; font-size: .85rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.badge { font-weight: 600; white-space: nowrap; }
.note { color: #555; font-style: italic; }
.ok { color: #2e7d32; font-weight: 600; }
.bad { color: #b71c1c; font-weight: 600; }
code { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
#filter { margin: .5rem 0; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  th { position: static; }
  #filter { display: none; }
  tr { break-inside: avoid; }
  .bar, .swatch { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
"#;

const SCRIPT: &str = r#"
(function () {
  var table = document.getElementById('entries-table');
  if (!table) return;
  var body = table.tBodies[0];
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    if (!th.hasAttribute('data-sort')) return;
    var up = true;
    th.title = 'Sort';
    th.addEventListener('click', function () {
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent, y = b.cells[col].textContent;
        return up ? x.localeCompare(y) : y.localeCompare(x);
      });
      up = !up;
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  var outcomes = {};
  Array.prototype.forEach.call(body.rows, function (r) { outcomes[r.getAttribute('data-outcome')] = true; });
  var select = document.createElement('select');
  select.id = 'filter';
  select.setAttribute('aria-label', 'Show entries');
  [''].concat(Object.keys(outcomes).sort()).forEach(function (o) {
    var opt = document.createElement('option');
    opt.value = o;
    opt.textContent = o ? 'Only ' + o : 'All entries';
    select.appendChild(opt);
  });
  select.addEventListener('change', function () {
    Array.prototype.forEach.call(body.rows, function (r) {
      r.hidden = select.value !== '' && r.getAttribute('data-outcome') !== select.value;
    });
  });
  table.parentNode.insertBefore(select, table);
})();
"#;

/// The whole page.
/// The most members listed for one group; the rest are counted.
const MAX_MEMBERS_LISTED: usize = 2_000;

/// A group's members, folded away under their count: who the group grants access to.
fn members_list(members: &[engine::SmolStr]) -> String {
    let items: String = members
        .iter()
        .take(MAX_MEMBERS_LISTED)
        .map(|m| format!("<li>{}</li>", esc(m)))
        .collect();
    let more = members.len().saturating_sub(MAX_MEMBERS_LISTED);
    let more = if more > 0 {
        format!("<li>… and {more} more (<code>roster server show LOGIN</code>)</li>")
    } else {
        String::new()
    };
    format!(
        "<details class=\"members\"><summary>{} {}</summary><ul>{items}{more}</ul></details>",
        members.len(),
        if members.len() == 1 {
            "member"
        } else {
            "members"
        }
    )
}

pub fn report_html(page: &ReportPage) -> String {
    let s = &page.started;
    let r = &page.report;
    let mode = s.mode;
    let title = match (mode, r.status) {
        (_, Some(RunStatus::Refused)) => "Refused run (nothing was changed)",
        (Mode::DryRun, _) => "Dry run (nothing was changed)",
        (Mode::Apply, _) => "Import results",
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"roster {version}\">\n\
         <title>{title} — org {org}, run {run}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header>\n<h1>{title} for org {org}</h1>\n<p class=\"run-id\">run {run}</p>\n</header>\n",
        version = esc(&s.engine_version),
        org = esc(&s.org),
        run = page.info.run,
    );
    run_section(&mut h, page);
    summary_section(&mut h, page);
    entries_section(&mut h, page);
    deleted_section(&mut h, page);
    log_section(&mut h, page);
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    h
}

/// The run's header: who, what, from where, into what, with which options.
fn run_section(h: &mut String, page: &ReportPage) {
    let s = &page.started;
    let r = &page.report;
    let mode = s.mode;
    h.push_str("<section id=\"run\">\n<h2>Run</h2>\n<dl>\n");
    let mut row = |name: &str, val: String| {
        let _ = writeln!(h, "<dt>{name}</dt><dd>{val}</dd>");
    };
    row("Organization", esc(&s.org));
    row("Tenant", format!("<code>{}</code>", s.tenant_id));
    row(
        "Mode",
        match mode {
            Mode::DryRun => "dry run (nothing changed)".into(),
            Mode::Apply => "apply (an import: the server changed)".into(),
        },
    );
    row("Started by", esc(&s.started_by));
    if let Some(who) = &s.source.signed_in_as {
        row("Signed in to Entra ID as", esc(who));
    }
    row(
        "Started",
        page.info
            .started_at
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
    );
    if let Some(f) = page.info.finished_at {
        row("Finished", f.format("%Y-%m-%d %H:%M:%S UTC").to_string());
    }
    let status = match (r.status, &r.reason) {
        (Some(RunStatus::Completed), _) => "<span class=\"ok\">completed</span>".to_owned(),
        (Some(st), Some(why)) => {
            format!("<span class=\"bad\">{}</span>: {}", st.as_str(), esc(why))
        }
        (Some(st), None) => format!("<span class=\"bad\">{}</span>", st.as_str()),
        (None, _) => "<span class=\"bad\">unfinished (interrupted)</span>".into(),
    };
    row("Status", status);
    let source = match s.source.kind {
        SourceKind::Fixture => format!("fixture <code>{}</code>", esc(&s.source.location)),
        SourceKind::Graph => format!("Microsoft Graph <code>{}</code>", esc(&s.source.location)),
    };
    let read = match s.source.changes_since {
        Some(since) => format!("; read the changes since run <code>{since}</code>"),
        None => String::new(),
    };
    row("Source", format!("{source}{read}"));
    let c = s.source.completeness;
    if !(c.users && c.groups && c.deleted_items) {
        let mut missing = Vec::new();
        for (ok, what) in [
            (c.users, "users"),
            (c.groups, "groups"),
            (c.deleted_items, "recycle bins"),
        ] {
            if !ok {
                missing.push(what);
            }
        }
        row(
            "Read",
            format!(
                "<span class=\"bad\">incomplete</span>: {}",
                missing.join(", ")
            ),
        );
    }
    row(
        "Target",
        match &s.target {
            TargetInfo::Embedded => "the embedded server".into(),
            TargetInfo::File { path } => format!("server file <code>{}</code>", esc(path)),
            TargetInfo::Scim { url, unkept } if unkept.is_empty() => {
                format!("the SCIM service <code>{}</code>", esc(url))
            }
            TargetInfo::Scim { url, unkept } => format!(
                "the SCIM service <code>{}</code> (which does not keep {})",
                esc(url),
                esc(&unkept.join(", "))
            ),
        },
    );
    let sel = &s.selection;
    let mut selection = Vec::new();
    if sel.select_all {
        selection.push("every user and group".to_owned());
    }
    if !sel.select.is_empty() {
        selection.push(format!(
            "{} named: {}",
            sel.select.len(),
            sel.select
                .iter()
                .map(|x| esc(x))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(q) = &sel.search {
        selection.push(format!("search “{}”", esc(q)));
    }
    if sel.invert {
        selection.push("inverted".into());
    }
    row("Selection", selection.join("; "));
    let o = &s.options;
    row(
        "Deleted objects",
        if o.check_deleted {
            format!(
                "checked; default action {}, at most {} disabled or deleted",
                o.on_deleted.as_str(),
                o.max_deletions
            )
        } else {
            "not checked".into()
        },
    );
    if let Some(base) = s.base {
        row(
            "Incremental",
            format!("recorded what differs from run <code>{base}</code>"),
        );
    }
    match (&s.approved, s.applied_from) {
        (Some(a), _) => row(
            "Approved",
            format!(
                "by {}: the plan of run <code>{}</code>, which a safety limit refused ({})",
                esc(&a.by),
                a.run,
                esc(&a.refusal)
            ),
        ),
        (None, Some(from)) => row("Applied from", format!("dry run <code>{from}</code>")),
        (None, None) => {}
    }
    if !s.source.problems.is_empty() {
        let items: String = s
            .source
            .problems
            .iter()
            .take(100)
            .map(|p| format!("<li>{}</li>", esc(p)))
            .collect();
        let more = s.source.problems.len().saturating_sub(100);
        let more = if more > 0 {
            format!("<li>… and {more} more</li>")
        } else {
            String::new()
        };
        row("Problems", format!("<ul>{items}{more}</ul>"));
    }
    h.push_str("</dl>\n</section>\n");
}

/// The counts, and a bar of them.
fn summary_section(h: &mut String, page: &ReportPage) {
    let r = &page.report;
    let summary = r.summary();
    let total: u64 = Outcome::ALL
        .iter()
        .map(|o| u64::from(summary.get(*o)))
        .sum();
    let _ = write!(
        h,
        "<section id=\"summary\">\n<h2>Summary</h2>\n<p>{} — {total} entries</p>\n<div class=\"bar\" role=\"img\" aria-label=\"{}\">",
        esc(&summary_text(&summary)),
        esc(&summary_text(&summary)),
    );
    for o in Outcome::ALL {
        let n = summary.get(o);
        if n > 0 && total > 0 {
            let _ = write!(
                h,
                "<span style=\"width:{:.3}%;background:{}\" title=\"{} {}\"></span>",
                f64::from(n) * 100.0 / total as f64,
                colour(o),
                n,
                o.as_str()
            );
        }
    }
    h.push_str("</div>\n<ul class=\"legend\">");
    for o in Outcome::ALL {
        let n = summary.get(o);
        if n > 0 {
            let _ = write!(
                h,
                "<li><span class=\"swatch\" style=\"background:{}\"></span>{} {}</li>",
                colour(o),
                n,
                o.as_str()
            );
        }
    }
    h.push_str("</ul>\n</section>\n");
}

/// Every entry, with its changes and, for a group, its members.
fn entries_section(h: &mut String, page: &ReportPage) {
    let s = &page.started;
    let r = &page.report;
    let mode = s.mode;
    let total = u64::from(r.summary().total());
    let _ = write!(
        h,
        "<section id=\"entries\">\n<h2>Entries ({})</h2>\n",
        r.entries.len()
    );
    let listed = r.entries.len() as u64;
    if let (Some(base), false, true) = (s.base, page.all, total > listed) {
        let _ = writeln!(
            h,
            "<p class=\"note\">Incremental run (base <code>{base}</code>): {} entries as before are not listed; <code>roster report {} --all --format html</code> lists every entry.</p>",
            total - listed,
            page.info.run
        );
    }
    if r.entries.is_empty() {
        h.push_str("<p class=\"note\">No entries.</p>\n");
    } else {
        h.push_str(
            "<table id=\"entries-table\">\n<thead><tr><th data-sort>Name</th><th data-sort>Kind</th><th data-sort>Result</th><th>Details</th><th>Changes (from → to)</th></tr></thead>\n<tbody>\n",
        );
        for e in &r.entries {
            let changes: Vec<String> = e
                .changes
                .iter()
                .map(|c| format!("{}: {} → {}", esc(&c.field), value(&c.from), value(&c.to)))
                .collect();
            let _ = writeln!(
                h,
                "<tr data-outcome=\"{o}\"><td>{name}</td><td>{kind}</td><td class=\"badge\" style=\"color:{col}\">{label}</td><td>{detail}{members}</td><td class=\"changes\">{changes}</td></tr>",
                o = e.outcome.as_str(),
                name = esc(&e.name),
                kind = e.kind.as_str(),
                col = colour(e.outcome),
                label = outcome_label(e.outcome, mode),
                detail = esc(&e.detail),
                members = page
                    .members
                    .get(&e.id)
                    .map(|m| members_list(m))
                    .unwrap_or_default(),
                changes = changes.join("\n"),
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
    h.push_str("</section>\n");
}

/// The deleted objects the run found, with the action chosen for each.
fn deleted_section(h: &mut String, page: &ReportPage) {
    let s = &page.started;
    let rows = &page.deleted.rows;
    let _ = write!(
        h,
        "<section id=\"deleted\">\n<h2>Deleted objects ({})</h2>\n",
        rows.len()
    );
    if rows.is_empty() {
        h.push_str(if s.options.check_deleted {
            "<p class=\"note\">No deleted objects were found on the server.</p>\n"
        } else {
            "<p class=\"note\">This run did not check for deleted objects.</p>\n"
        });
    } else {
        h.push_str("<table>\n<thead><tr><th>Name</th><th>Kind</th><th>Evidence</th><th>Deleted at</th><th>Action</th><th>Id</th></tr></thead>\n<tbody>\n");
        for d in rows {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                esc(&d.name),
                d.kind.as_str(),
                d.evidence.as_str(),
                d.deleted_at
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_default(),
                d.action.map(|a| a.as_str()).unwrap_or("ignore"),
                d.id
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
    h.push_str("</section>\n");
}

/// Where the run sits in the log, what it was decided from and by, and how to check it.
fn log_section(h: &mut String, page: &ReportPage) {
    let s = &page.started;
    let p = &page.position;
    let verified = match &p.verified {
        Ok(n) => format!(
            "<span class=\"ok\">the log verifies</span> from its first event to this run's last ({n} events: every hash recomputed, the chain unbroken)"
        ),
        Err(why) => format!(
            "<span class=\"bad\">the log does not verify</span> up to this run: {}",
            esc(why)
        ),
    };
    let _ = write!(
        h,
        "<section id=\"log\">\n<h2>Place in the log</h2>\n<dl>\n\
         <dt>Events</dt><dd>{} to {} ({} events)</dd>\n\
         <dt>Hash of its last event</dt><dd><code>{}</code></dd>\n\
         <dt>Verification</dt><dd>{verified}</dd>\n\
         <dt>Inputs digest</dt><dd><code>{}</code></dd>\n\
         <dt>Decided by</dt><dd>roster engine {} under decision rules {}</dd>\n\
         <dt>Page made</dt><dd>{} by {}, from the log</dd>\n</dl>\n\
         <p class=\"note\">Check it again with <code>roster verify --head {}</code> (the log still holds this run as it was) and <code>roster replay {}</code>.</p>\n</section>\n",
        p.first.0,
        p.last.0,
        p.last.0 - p.first.0 + 1,
        p.last_hash,
        esc(s.inputs_digest.as_deref().unwrap_or("(not recorded)")),
        esc(&s.engine_version),
        s.rules,
        page.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        page.generated_by,
        p.last_hash,
        page.info.run,
    );
}
