//! The wizard's state machine driven key by key, on the demo tenant.

use super::*;
use crossterm::event::{KeyEvent, KeyModifiers};
use engine::search::{SearchView, TypeFilter};

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn keys(w: &mut Wizard, text: &str) -> Vec<Effect> {
    text.chars()
        .filter_map(|c| w.key(key(KeyCode::Char(c))))
        .collect()
}

/// What the review page is handed: the plan of `selection` on the demo tenant and server,
/// decided as the runner decides it.
fn review_plan(selection: &SelectionSpec, options: &RunOptions) -> PreviewView {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let loaded = adapters::fixture::read_tenant(&dir.join("fixtures/demo/tenant.json")).unwrap();
    let server =
        adapters::target::read_server_file(&dir.join("fixtures/demo/server.json")).unwrap();
    let inputs = engine::decide::Inputs {
        tenant: &loaded.snapshot.tenant_id,
        snapshot: &loaded.snapshot,
        server: &server,
        options,
        baseline: None,
        group_details: true,
        unkept: &[],
        rules: engine::event::DECISION_RULES,
    };
    let chosen = engine::decide::choose(&inputs, selection);
    let plan =
        engine::decide::decide(&inputs, &chosen.deleted, &chosen.choices.unwrap(), None).plan;
    PreviewView {
        entries: plan.entries,
        refusal: plan.refusal.map(|r| r.to_string()),
    }
}

/// The wizard on the demo tenant's search page, deleted objects checked.
pub(crate) fn on_search() -> Wizard {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo/tenant.json");
    let loaded = adapters::fixture::read_tenant(std::path::Path::new(fixture)).unwrap();
    let rows = SearchView::from_snapshot(&loaded.snapshot)
        .search("", TypeFilter::All)
        .into_iter()
        .cloned()
        .collect();
    let server = adapters::target::read_server_file(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/demo/server.json"
    )))
    .unwrap();
    let deleted = engine::plan::find_deleted(&loaded.snapshot.tenant_id, &loaded.snapshot, &server);
    let mut w = Wizard::new(
        vec![OrgRow {
            name: "contoso".into(),
            source: "fixture demo/tenant.json".into(),
        }],
        None,
    );
    assert_eq!(
        w.key(key(KeyCode::Enter)),
        Some(Effect::Read {
            org: "contoso".into()
        })
    );
    assert_eq!(w.screen, Screen::Reading);
    w.done(Done::Read(Ok(Read {
        rows,
        deleted,
        problems: vec![],
    })));
    assert_eq!(w.screen, Screen::Search);
    w
}

#[test]
fn ticks_select_all_and_invert_act_on_the_rows_shown() {
    let mut w = on_search();
    let all = w.rows.len();
    assert_eq!(w.shown.len(), all);
    // Space ticks the row under the cursor and moves down.
    w.key(key(KeyCode::Char(' ')));
    assert_eq!(w.ticked.len(), 1);
    assert_eq!(w.cursor, 1);
    w.key(key(KeyCode::Up));
    w.key(key(KeyCode::Char(' ')));
    assert!(w.ticked.is_empty(), "a second Space unticks");
    // Search narrows; Select all ticks only what is shown.
    keys(&mut w, "/sales");
    assert!(w.editing);
    w.key(key(KeyCode::Enter));
    assert!(!w.editing);
    let sales = w.shown.len();
    assert!(sales > 1 && sales < all, "{sales}");
    keys(&mut w, "a");
    assert_eq!(w.ticked.len(), sales);
    // Invert on everything: the rest is ticked, the sales rows are not.
    w.key(key(KeyCode::Char('/')));
    w.key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    assert_eq!(w.query, "");
    w.key(key(KeyCode::Esc));
    assert_eq!(w.shown.len(), all);
    keys(&mut w, "i");
    assert_eq!(w.ticked.len(), all - sales);
    // The selection is the ticked ids, in the order listed.
    let sel = w.selection();
    assert_eq!(sel.select.len(), all - sales);
    assert!(!sel.select_all && sel.search.is_none());
    // Navigation stays within the rows.
    w.key(key(KeyCode::End));
    assert_eq!(w.cursor, all - 1);
    w.key(key(KeyCode::PageDown));
    assert_eq!(w.cursor, all - 1);
    w.key(key(KeyCode::Home));
    assert_eq!(w.cursor, 0);
}

#[test]
fn the_right_click_menu_and_a_click_tick() {
    let mut w = on_search();
    w.table_top = 4;
    let click = |kind, row| MouseEvent {
        kind,
        column: 10,
        row,
        modifiers: KeyModifiers::NONE,
    };
    w.mouse(click(MouseEventKind::Down(MouseButton::Left), 6));
    assert_eq!(w.cursor, 2);
    assert!(w.ticked.contains(&w.rows[w.shown[2]].id));
    w.mouse(click(MouseEventKind::Down(MouseButton::Right), 10));
    assert!(w.menu.is_some());
    // Down, Enter: Invert selection.
    w.key(key(KeyCode::Down));
    w.key(key(KeyCode::Enter));
    assert!(w.menu.is_none());
    assert_eq!(w.ticked.len(), w.rows.len() - 1);
    // The menu by mouse: its first item, Select all.
    w.mouse(click(MouseEventKind::Down(MouseButton::Right), 10));
    w.mouse(click(MouseEventKind::Down(MouseButton::Left), 11));
    assert_eq!(w.ticked.len(), w.rows.len());
}

#[test]
fn deleted_objects_get_their_actions_and_delete_asks() {
    let mut w = on_search();
    keys(&mut w, "/adele");
    w.key(key(KeyCode::Enter));
    keys(&mut w, " ");
    // Deleted objects were found: Enter goes to them, not to the import.
    assert_eq!(w.key(key(KeyCode::Enter)), None);
    assert_eq!(w.screen, Screen::Deleted);
    let n = w.deleted.len();
    assert!(n >= 3, "{n}");
    // Mark two, disable them; the cursor row alone is deleted after a yes.
    keys(&mut w, "  d");
    assert_eq!(w.deleted[0].action, DeletedAction::Disable);
    assert_eq!(w.deleted[1].action, DeletedAction::Disable);
    assert!(w.deleted.iter().all(|d| !d.marked));
    keys(&mut w, "x");
    assert_eq!(w.ask, Some(Ask::Delete));
    keys(&mut w, "n");
    assert_eq!(w.deleted[2].action, DeletedAction::Ignore, "no: nothing");
    keys(&mut w, "xy");
    assert_eq!(w.deleted[2].action, DeletedAction::Delete);
    keys(&mut w, "g");
    assert_eq!(w.deleted[2].action, DeletedAction::Ignore);
    keys(&mut w, "x");
    keys(&mut w, "y");
    // Esc goes back with the choices kept; Enter opens the review, deciding in memory.
    w.key(key(KeyCode::Esc));
    assert_eq!(w.screen, Screen::Search);
    w.key(key(KeyCode::Enter));
    let Some(Effect::Preview { selection, options }) = w.key(key(KeyCode::Enter)) else {
        panic!("Enter reviews");
    };
    assert_eq!(w.screen, Screen::Review);
    // Nothing is imported before the plan is there; then Enter asks for `delete` typed.
    assert_eq!(w.key(key(KeyCode::Enter)), None);
    let plan = review_plan(&selection, &options);
    assert!(plan.entries.iter().any(|e| e.outcome == Outcome::Deleted));
    w.done(Done::Preview(Ok(plan)));
    assert_eq!(w.key(key(KeyCode::Enter)), None);
    assert_eq!(w.confirm.as_deref(), Some(""));
    // q and ? are letters here, not commands; a wrong word does not import.
    assert_eq!(keys(&mut w, "q?"), vec![]);
    assert_eq!(w.key(key(KeyCode::Enter)), None);
    assert!(w.status.contains("Type delete"), "{}", w.status);
    w.key(key(KeyCode::Esc));
    assert_eq!(w.confirm, None);
    assert_eq!(w.screen, Screen::Review);
    w.key(key(KeyCode::Enter));
    keys(&mut w, "delete");
    let Some(Effect::Import {
        org,
        selection: imported,
        options: imported_options,
    }) = w.key(key(KeyCode::Enter))
    else {
        panic!("Enter after typing delete imports");
    };
    assert_eq!(w.screen, Screen::Importing);
    assert_eq!((&imported, &imported_options), (&selection, &options));
    assert_eq!(org, "contoso");
    assert_eq!(selection.select.len(), 1);
    assert!(options.check_deleted);
    let actions: Vec<(String, DeletedAction)> = options
        .actions
        .iter()
        .map(|a| (a.target.clone(), a.action))
        .collect();
    assert_eq!(
        actions,
        vec![
            (w.deleted[0].object.id.to_string(), DeletedAction::Disable),
            (w.deleted[1].object.id.to_string(), DeletedAction::Disable),
            (w.deleted[2].object.id.to_string(), DeletedAction::Delete),
        ]
    );
    assert_eq!(w.screen, Screen::Importing);
    // Keys do nothing while the import runs; q does not quit it.
    assert_eq!(w.key(key(KeyCode::Char('q'))), None);
    assert_eq!(w.key(key(KeyCode::Esc)), None);
}

#[test]
fn results_filter_by_outcome_and_close() {
    let mut w = on_search();
    let entry = |name: &str, outcome| EntryOutcome {
        kind: engine::model::Kind::User,
        id: ObjectId::parse("0b0b0b0b-1111-4222-8333-444455556666").unwrap(),
        name: name.into(),
        outcome,
        reason: None,
        detail: String::new(),
        changes: vec![],
        op: None,
    };
    w.done(Done::Imported(Ok(ResultsView {
        run: "r".into(),
        mode: Mode::Apply,
        entries: vec![
            entry("a", Outcome::Added),
            entry("b", Outcome::Updated),
            entry("c", Outcome::Added),
        ],
        status: "completed".into(),
        problems: vec![],
    })));
    assert_eq!(w.screen, Screen::Results);
    assert_eq!(w.results_shown().len(), 3);
    keys(&mut w, "f");
    assert_eq!(w.filter, Some(Outcome::Added));
    assert_eq!(w.results_shown().len(), 2);
    keys(&mut w, "f");
    assert_eq!(w.filter, Some(Outcome::Updated));
    keys(&mut w, "f");
    assert_eq!(w.filter, None);
    assert_eq!(w.key(key(KeyCode::Enter)), Some(Effect::Quit));
}

#[test]
fn quitting_asks_when_ticks_would_be_lost_and_esc_steps_back() {
    let mut w = on_search();
    assert_eq!(keys(&mut w, "?"), vec![]);
    assert!(w.help);
    keys(&mut w, "z");
    assert!(!w.help, "any key closes the help");
    keys(&mut w, " ");
    assert_eq!(keys(&mut w, "q"), vec![]);
    assert_eq!(w.ask, Some(Ask::Quit));
    assert_eq!(keys(&mut w, "n"), vec![]);
    assert_eq!(keys(&mut w, "qy"), vec![Effect::Quit]);
    // Ctrl-C quits at once.
    assert_eq!(
        w.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Effect::Quit)
    );
    // Esc: back to the organizations; q there quits without asking.
    w.key(key(KeyCode::Esc));
    assert_eq!(w.screen, Screen::Orgs);
    keys(&mut w, "c");
    assert!(!w.check_deleted);
    assert_eq!(keys(&mut w, "q"), vec![Effect::Quit]);
}

#[test]
fn nothing_ticked_and_nothing_deleted_is_not_imported() {
    let mut w = on_search();
    w.check_deleted = false;
    assert_eq!(w.key(key(KeyCode::Enter)), None);
    assert_eq!(w.screen, Screen::Search);
    assert!(w.status.starts_with("Nothing ticked"), "{}", w.status);
    // p opens the review at once: the decisions of the ticks; Esc goes back.
    keys(&mut w, " ");
    assert!(
        w.note.starts_with("ticked "),
        "Space says what it did: {}",
        w.note
    );
    let effects = keys(&mut w, "p");
    assert!(matches!(effects[..], [Effect::Preview { .. }]));
    assert_eq!(w.screen, Screen::Review);
    w.key(key(KeyCode::Esc));
    assert!(w.preview.is_none());
    assert_eq!(w.screen, Screen::Search);
}

/// The review of a plan scrolls and filters its entries; a plan that would be refused is
/// not imported.
#[test]
fn the_review_scrolls_filters_and_refuses_what_would_be_refused() {
    let mut w = on_search();
    w.check_deleted = false;
    keys(&mut w, "a");
    let Some(Effect::Preview { selection, options }) = w.key(key(KeyCode::Enter)) else {
        panic!("Enter reviews");
    };
    let plan = review_plan(&selection, &options);
    let n = plan.entries.len();
    w.done(Done::Preview(Ok(plan.clone())));
    assert_eq!(w.review_shown().len(), n);
    w.key(key(KeyCode::End));
    assert_eq!(w.review_cursor, n - 1);
    keys(&mut w, "f");
    let first = w.review_shown()[0].outcome;
    assert!(w.review_shown().iter().all(|e| e.outcome == first));
    assert_eq!(w.review_cursor, 0);
    w.done(Done::Preview(Ok(PreviewView {
        refusal: Some("it would disable 60 objects, more than --max-deletions 50".into()),
        ..plan
    })));
    assert_eq!(w.key(key(KeyCode::Enter)), None);
    assert!(w.status.contains("would be refused"), "{}", w.status);
    assert_eq!(w.screen, Screen::Review);
}

#[test]
fn a_new_org_is_a_fixture_or_a_live_tenant() {
    let mut w = Wizard::new(vec![], None);
    assert_eq!(w.key(key(KeyCode::Enter)), None);
    assert!(w.status.contains("press n"));
    keys(&mut w, "n");
    keys(&mut w, "acme");
    w.key(key(KeyCode::Tab));
    keys(&mut w, "t.json");
    assert_eq!(
        w.key(key(KeyCode::Enter)),
        Some(Effect::AddFixture {
            name: "acme".into(),
            path: "t.json".into()
        })
    );
    assert!(w.new_org.is_none());
    // A tenant id makes it live: a client id (blank) and a Graph URL follow.
    keys(&mut w, "nlive");
    w.key(key(KeyCode::Enter));
    keys(&mut w, "3c1f6a52-7b0e-4d8e-9a5a-2f4c8b1e0a11");
    assert!(w.new_org.as_ref().unwrap().is_live());
    assert_eq!(w.key(key(KeyCode::Enter)), None);
    assert_eq!(w.key(key(KeyCode::Enter)), None);
    keys(&mut w, "http://127.0.0.1:9");
    assert_eq!(
        w.key(key(KeyCode::Enter)),
        Some(Effect::AddLive {
            name: "live".into(),
            tenant: "3c1f6a52-7b0e-4d8e-9a5a-2f4c8b1e0a11".into(),
            client_id: None,
            url: Some("http://127.0.0.1:9".into()),
        })
    );
    assert_eq!(w.screen, Screen::Reading, "signing in shows progress");
    w.done(Done::SignIn(
        "To sign in, open … and enter the code X".into(),
    ));
    assert!(w.sign_in.is_some());
    w.done(Done::OrgAdded(Err("sign-in was declined".into())));
    assert_eq!(
        (w.screen, w.status.as_str()),
        (Screen::Orgs, "sign-in was declined")
    );
}
