//! `roster report RUN --format html` as an auditor opens it: one HTML5 page that tokenizes
//! without a parse error and closes every element it opens, holds the run's header, summary,
//! every entry, the deleted objects and its place in the log, asks nothing from the network,
//! escapes what came from the tenant — and renders in a real browser (headless Chromium),
//! where its script adds the outcome filter.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// An element of the page: its name, attributes, text and children.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn all<'a>(&'a self, name: &str, out: &mut Vec<&'a Node>) {
        for c in &self.children {
            if c.name == name {
                out.push(c);
            }
            c.all(name, out);
        }
    }

    fn find(&self, name: &str) -> Vec<&Node> {
        let mut out = Vec::new();
        self.all(name, &mut out);
        out
    }

    fn by_id(&self, id: &str) -> &Node {
        fn walk<'a>(n: &'a Node, id: &str) -> Option<&'a Node> {
            if n.attrs.get("id").map(String::as_str) == Some(id) {
                return Some(n);
            }
            n.children.iter().find_map(|c| walk(c, id))
        }
        walk(self, id).unwrap_or_else(|| panic!("no element #{id}"))
    }

    fn text_content(&self) -> String {
        let mut s = self.text.clone();
        for c in &self.children {
            s.push_str(&c.text_content());
        }
        s
    }
}

const VOID: [&str; 6] = ["meta", "br", "img", "input", "link", "hr"];

/// Tokenizes the page as HTML5 (WHATWG tokenizer): no parse error, every element closed in
/// order; the tree of its elements.
fn parse(html: &str) -> Node {
    use html5gum::{Token, Tokenizer};
    let s = |b: &html5gum::HtmlString| String::from_utf8(b.to_vec()).unwrap();
    let mut stack = vec![Node::default()];
    let mut doctype = false;
    for token in Tokenizer::new(html).flatten() {
        match token {
            Token::Doctype(d) => {
                assert_eq!(s(&d.name), "html");
                doctype = true;
            }
            Token::StartTag(t) => {
                let node = Node {
                    name: s(&t.name),
                    attrs: t.attributes.iter().map(|(k, v)| (s(k), s(v))).collect(),
                    ..Node::default()
                };
                if VOID.contains(&node.name.as_str()) {
                    stack.last_mut().unwrap().children.push(node);
                } else {
                    stack.push(node);
                }
            }
            Token::EndTag(t) => {
                let node = stack.pop().unwrap();
                assert_eq!(node.name, s(&t.name), "elements close in order");
                stack.last_mut().unwrap().children.push(node);
            }
            Token::String(text) => stack.last_mut().unwrap().text.push_str(&s(&text)),
            Token::Comment(_) => {}
            Token::Error(e) => panic!("HTML5 parse error: {e:?}"),
        }
    }
    assert!(doctype, "<!DOCTYPE html> first");
    assert_eq!(stack.len(), 1, "every element is closed");
    stack.pop().unwrap()
}

fn json(r: &Roster, args: &[&str]) -> Value {
    let (_, out, err) = r.run(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}\n{err}"))
}

/// Checks the parts every page has; returns the tree.
fn check_page(r: &Roster, run: &str) -> (String, Node) {
    let html = r.expect(0, &["report", run, "--format", "html"]);
    let page = parse(&html);
    // The page lists every entry, an incremental run's too.
    let report = json(r, &["report", run, "--all", "--json"]);
    for id in ["run", "summary", "entries", "deleted", "log"] {
        page.by_id(id);
    }
    // Nothing is fetched from anywhere: no external resource, no link out.
    for tag in ["link", "img", "iframe", "object", "embed"] {
        assert!(page.find(tag).is_empty(), "no <{tag}>");
    }
    for s in page.find("script") {
        assert!(!s.attrs.contains_key("src"), "inline scripts only");
    }
    assert!(!html.contains("http://") && !html.contains("https://") || html.contains("graph"));
    // Every recorded entry is a row, with the seed's wording.
    let entries = report["entries"].as_array().unwrap();
    let rows: Vec<&Node> = page
        .by_id("entries")
        .find("tbody")
        .iter()
        .flat_map(|b| b.find("tr"))
        .collect();
    assert_eq!(rows.len(), entries.len());
    for (row, e) in rows.iter().zip(entries) {
        let cells = row.find("td");
        assert_eq!(cells[0].text_content(), e["name"].as_str().unwrap());
        assert_eq!(row.attrs["data-outcome"], e["outcome"].as_str().unwrap());
    }
    // Its place in the log: the hash of its last event, which verify accepts.
    let events = r.expect(0, &["events", run]);
    let last: Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    let log = page.by_id("log").text_content();
    assert!(
        log.contains(last["hash"].as_str().unwrap()),
        "{log}\n{last}"
    );
    assert!(log.contains("the log verifies"), "{log}");
    (html, page)
}

#[test]
fn the_report_page_holds_the_run_and_escapes_the_tenant() {
    let r = Roster::new();
    let (_dir, tenant) = demo_tenant_copy();
    // A display name that is markup: it must stay text.
    let mut t: Value = serde_json::from_str(&std::fs::read_to_string(&tenant).unwrap()).unwrap();
    t["users"][0]["displayName"] = "<img src=x onerror=alert(1)> & \"Adele\"".into();
    std::fs::write(&tenant, serde_json::to_vec(&t).unwrap()).unwrap();
    r.add_demo("contoso", &tenant);

    // A dry run.
    r.run(&[
        "plan",
        "contoso",
        "--select-all",
        "--check-deleted",
        "--json",
    ]);
    let (html, page) = check_page(&r, "last");
    assert!(
        html.contains("<title>Dry run (nothing was changed)"),
        "{html}"
    );
    assert!(page
        .by_id("entries")
        .text_content()
        .contains("<img src=x onerror=alert(1)> & \"Adele\""));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;Adele&quot;"));

    // An import that disables the deleted objects: every deleted object with its evidence.
    r.run(&IMPORT);
    let (html, page) = check_page(&r, "last");
    assert!(html.contains("<title>Import results"));
    let deleted = json(&r, &["deleted", "last", "--json"]);
    let rows = page.by_id("deleted").find("tr");
    assert_eq!(
        rows.len(),
        deleted.as_array().unwrap().len() + 1,
        "a header row and one per object"
    );
    let summary = page.by_id("summary");
    assert!(!summary.find("span").is_empty(), "the bar");
    assert!(summary.text_content().contains("added"));
    let header = page.by_id("run").text_content();
    for part in [
        "contoso",
        TENANT,
        // The mode as JSON and `runs` name it.
        "apply",
        "completed",
        "every user and group",
        "disable",
    ] {
        assert!(header.contains(part), "{part}: {header}");
    }
    // Where it stands in the log, what it was decided from and by, when the page was made,
    // and the command that checks the log still holds it — which does.
    let log = page.by_id("log").text_content();
    for part in [
        "Inputs digest",
        "Decided by",
        "roster engine",
        "Page made",
        "by roster ",
    ] {
        assert!(log.contains(part), "{part}: {log}");
    }
    let head = log
        .split("roster verify --head ")
        .nth(1)
        .and_then(|rest| rest.get(..64))
        .unwrap();
    assert!(head.chars().all(|c| c.is_ascii_hexdigit()), "{head}: {log}");
    r.expect(0, &["verify", "--head", head]);

    // A refused run: too many deletions.
    let (code, ..) = r.run(&[
        "import",
        "contoso",
        "--select-all",
        "--check-deleted",
        "--on-deleted",
        "delete",
        "--max-deletions",
        "0",
        "--full",
    ]);
    assert_ne!(code, 0);
    let (html, page) = check_page(&r, "last");
    assert!(html.contains("<title>Refused run"), "{html}");
    assert!(page.by_id("run").text_content().contains("refused"));

    // An incremental run's page lists every entry too (check_page counts them).
    r.run(&["import", "contoso", "--select-all", "--json"]);
    r.run(&["import", "contoso", "--select-all", "--json"]);
    let (html, _) = check_page(&r, "last");
    assert!(!html.contains("entries as before are not listed"), "{html}");
}

/// An added or changed group shows who it grants access to: its members, folded under their
/// count; an unchanged one does not.
#[test]
fn the_report_page_lists_the_members_of_added_and_changed_groups() {
    let r = Roster::new();
    r.add_demo("contoso", &fixtures().join("demo/tenant.json"));
    r.run(&IMPORT);
    let (_, page) = check_page(&r, "last");
    let rows: Vec<&Node> = page.by_id("entries").find("tr");
    let row = |name: &str| -> &Node {
        rows.iter()
            .find(|r| {
                r.find("td")
                    .first()
                    .is_some_and(|c| c.text_content() == name)
            })
            .unwrap_or_else(|| panic!("no row {name}"))
    };
    let sales = row("Sales Team");
    let details = sales.find("details");
    assert_eq!(details.len(), 1, "folded away");
    let summary = details[0].find("summary")[0].text_content();
    assert_eq!(summary, "6 members");
    let listed: Vec<String> = details[0]
        .find("li")
        .iter()
        .map(|l| l.text_content())
        .collect();
    assert_eq!(listed.len(), 6);
    assert!(
        listed.contains(&"AdeleV@contoso.com".to_owned()),
        "{listed:?}"
    );
    // The same import again: nothing changes, no group lists members.
    r.run(&[&IMPORT[..], &["--full"]].concat());
    let (_, page) = check_page(&r, "last");
    assert!(page.by_id("entries").find("details").is_empty());
}

/// The page in a real browser: headless Chromium renders it to a screenshot, and its script
/// runs (the outcome filter appears in the DOM it dumps).
#[test]
fn the_report_page_renders_in_chromium() {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("Chromium is installed (`apt-get install chromium`; .ci/run installs it)");
    let r = Roster::new();
    r.add_demo("contoso", &fixtures().join("demo/tenant.json"));
    r.run(&[
        "import",
        "contoso",
        "--select-all",
        "--check-deleted",
        "--json",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, r.expect(0, &["report", "last", "--format", "html"])).unwrap();
    let shot = dir.path().join("report.png");
    let browser = |extra: &[String]| {
        std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-dev-shm-usage",
                &format!("--user-data-dir={}", dir.path().join("profile").display()),
            ])
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap()
    };
    let out = browser(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1280,1600".into(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 20_000, "a page was drawn: {} bytes", png.len());
    let dom = browser(&["--dump-dom".into()]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("<select id=\"filter\""),
        "the script ran: {dom}"
    );
}
