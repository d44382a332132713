//! The wizard as a state machine: keys and mouse clicks in, the next state and the work to do
//! out ([`Effect`]). Pure — no terminal, no store, no thread: the runner (`super::run`) does
//! the work and hands back what it found ([`Done`]); the tests drive it key by key.

use std::collections::HashSet;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use engine::event::{
    ActionOverride, DeletedAction, EntryOutcome, Mode, ObjectDeleted, Outcome, RunOptions,
    SelectionSpec,
};
use engine::search::SearchRow;
use engine::ObjectId;

/// An org as the first page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRow {
    pub name: String,
    /// `fixture PATH` or `live, tenant ID`.
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    #[default]
    Orgs,
    /// The tenant and the server are being read.
    Reading,
    Search,
    Deleted,
    /// The last page before anything is written: what the import would do, counted and
    /// listed; the import starts only from here.
    Review,
    /// The import runs; it finishes whatever is pressed.
    Importing,
    Results,
}

/// The work the runner does for the wizard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Read the org's tenant and the server.
    Read {
        org: String,
    },
    /// Decide in memory what importing the selection would do (nothing is written).
    Preview {
        selection: SelectionSpec,
        options: RunOptions,
    },
    /// Run the import: an ordinary run, recorded as `roster import` records it.
    Import {
        org: String,
        selection: SelectionSpec,
        options: RunOptions,
    },
    /// Add an org from a tenant fixture.
    AddFixture {
        name: String,
        path: String,
    },
    /// Add a live org: sign in (device code, shown on screen), check the tenant, save it.
    AddLive {
        name: String,
        tenant: String,
        /// The app's client id; blank: Microsoft's public client.
        client_id: Option<String>,
        /// Graph and sign-in root (a test endpoint such as `roster fake-graph`); blank:
        /// Microsoft's global cloud.
        url: Option<String>,
    },
    Quit,
}

/// What the runner found.
#[derive(Debug, Clone)]
pub enum Done {
    Read(Result<Read, String>),
    Preview(Result<PreviewView, String>),
    Imported(Result<ResultsView, String>),
    /// The orgs now, and the name of the one added.
    OrgAdded(Result<(Vec<OrgRow>, String), String>),
    /// A device-code sign-in waits for the admin: where to go, the code to enter.
    SignIn(String),
}

/// A tenant read: every row of the search page, and the deleted objects.
#[derive(Debug, Clone)]
pub struct Read {
    pub rows: Vec<SearchRow>,
    pub deleted: Vec<ObjectDeleted>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewView {
    pub entries: Vec<EntryOutcome>,
    /// Why an import of this selection would be refused.
    pub refusal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultsView {
    pub run: String,
    pub mode: Mode,
    pub entries: Vec<EntryOutcome>,
    /// `completed`, or why the run was refused or stopped.
    pub status: String,
    pub problems: Vec<String>,
}

/// A deleted object and what will happen to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedRow {
    pub object: ObjectDeleted,
    pub action: DeletedAction,
    pub marked: bool,
}

/// The *New…* form: a name, then a tenant fixture file or a tenant id (a live tenant: then
/// an optional client id and an optional Graph URL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewOrg {
    pub fields: [String; 4],
    /// The field being edited.
    pub at: usize,
}

pub const NEW_ORG_FIELDS: [&str; 4] = [
    "Name",
    "Tenant fixture file, or tenant id",
    "Client id (live; blank: Microsoft's public client)",
    "Graph URL (live; blank: Microsoft's cloud)",
];

impl NewOrg {
    /// Whether the second field names a live tenant (a GUID) rather than a file.
    pub fn is_live(&self) -> bool {
        engine::TenantId::parse(self.fields[1].trim()).is_ok()
    }

    /// The fields that apply: a fixture needs two, a live tenant four.
    pub fn used(&self) -> usize {
        if self.is_live() {
            4
        } else {
            2
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// `q` with ticks that would be lost.
    Quit,
    /// `x` on the deleted objects: delete for good?
    Delete,
}

/// The right-click menu of the search page, where it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Menu {
    pub x: u16,
    pub y: u16,
    /// 0: Select all, 1: Invert selection.
    pub item: usize,
}

pub const MENU: [&str; 2] = ["Select all", "Invert selection"];

#[derive(Debug, Clone, Default)]
pub struct Wizard {
    pub screen: Screen,
    /// The server imported into, when it is not the embedded one (`--server-file`, `--scim`),
    /// as the title line names it.
    pub target: Option<String>,
    pub orgs: Vec<OrgRow>,
    pub org: usize,
    pub check_deleted: bool,
    pub new_org: Option<NewOrg>,
    /// What is being read or imported, for the progress line.
    pub busy: String,
    /// How far a live read has come (Graph's counters), under the progress line.
    pub progress: String,
    pub sign_in: Option<String>,

    pub rows: Vec<SearchRow>,
    /// Indexes into `rows` of the rows the search shows.
    pub shown: Vec<usize>,
    pub query: String,
    pub editing: bool,
    pub cursor: usize,
    pub ticked: HashSet<ObjectId>,
    pub menu: Option<Menu>,
    /// The review page's plan: decided in memory (nothing written), or why it cannot be.
    pub preview: Option<Result<PreviewView, String>>,
    /// The page the review page was opened from (Esc goes back to it).
    pub review_from: Screen,
    pub review_cursor: usize,
    pub review_filter: Option<Outcome>,
    /// Deletions are confirmed by typing `delete`: what has been typed so far.
    pub confirm: Option<String>,
    /// What the last key did, when the screen alone would not say (Space ticks and moves on).
    pub note: String,
    /// Where the table's first row is drawn, and the first row shown (set by the view), to
    /// turn a click into a row.
    pub table_top: u16,
    pub table_offset: usize,

    pub deleted: Vec<DeletedRow>,
    pub deleted_cursor: usize,

    pub results: Option<ResultsView>,
    pub filter: Option<Outcome>,
    pub results_cursor: usize,

    pub problems: Vec<String>,
    pub help: bool,
    pub ask: Option<Ask>,
    /// One line saying what went wrong, or what to do.
    pub status: String,
}

const PAGE: usize = 10;

/// `f`: cycles through the outcomes present, then back to every entry.
fn next_filter(filter: Option<Outcome>, present: &[Outcome]) -> Option<Outcome> {
    match filter {
        None => present.first().copied(),
        Some(f) => present
            .iter()
            .position(|o| *o == f)
            .and_then(|i| present.get(i + 1).copied()),
    }
}

fn moved(cursor: usize, len: usize, code: KeyCode) -> Option<usize> {
    let last = len.saturating_sub(1);
    Some(match code {
        KeyCode::Up | KeyCode::Char('k') => cursor.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => (cursor + 1).min(last),
        KeyCode::PageUp => cursor.saturating_sub(PAGE),
        KeyCode::PageDown => (cursor + PAGE).min(last),
        KeyCode::Home => 0,
        KeyCode::End => last,
        _ => return None,
    })
}

impl Wizard {
    pub fn new(orgs: Vec<OrgRow>, start: Option<&str>) -> Wizard {
        let org = start
            .and_then(|s| orgs.iter().position(|o| o.name == s))
            .unwrap_or(0);
        Wizard {
            orgs,
            org,
            check_deleted: true,
            ..Wizard::default()
        }
    }

    /// The org being worked on.
    pub fn org_name(&self) -> Option<&str> {
        self.orgs.get(self.org).map(|o| o.name.as_str())
    }

    /// Whether quitting now would lose ticks or marked actions.
    fn would_lose_work(&self) -> bool {
        matches!(
            self.screen,
            Screen::Search | Screen::Deleted | Screen::Review
        ) && (!self.ticked.is_empty()
            || self
                .deleted
                .iter()
                .any(|d| d.action != DeletedAction::Ignore))
    }

    pub fn key(&mut self, k: KeyEvent) -> Option<Effect> {
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            return Some(Effect::Quit);
        }
        self.status.clear();
        if let Some(ask) = self.ask {
            self.ask = None;
            let yes = matches!(k.code, KeyCode::Char('y') | KeyCode::Char('Y'));
            return match (ask, yes) {
                (Ask::Quit, true) => Some(Effect::Quit),
                (Ask::Delete, true) => {
                    self.set_action(DeletedAction::Delete);
                    None
                }
                _ => None,
            };
        }
        if self.help {
            self.help = false;
            return None;
        }
        if let Some(menu) = self.menu.as_mut() {
            match k.code {
                KeyCode::Up | KeyCode::Down => menu.item = 1 - menu.item,
                KeyCode::Enter => {
                    let item = menu.item;
                    self.menu = None;
                    self.menu_pick(item);
                }
                _ => self.menu = None,
            }
            return None;
        }
        if self.new_org.is_some() {
            return self.new_org_key(k);
        }
        if self.editing {
            self.search_key(k);
            return None;
        }
        if self.confirm.is_some() {
            // Typing the confirmation: every key is the field's.
            return self.review_key(k);
        }
        match k.code {
            KeyCode::Char('?') => {
                self.help = true;
                return None;
            }
            KeyCode::Char('q') if !matches!(self.screen, Screen::Reading | Screen::Importing) => {
                if self.would_lose_work() {
                    self.ask = Some(Ask::Quit);
                    return None;
                }
                return Some(Effect::Quit);
            }
            _ => {}
        }
        match self.screen {
            Screen::Orgs => self.orgs_key(k),
            Screen::Reading | Screen::Importing => None,
            Screen::Search => self.search_page_key(k),
            Screen::Deleted => self.deleted_key(k),
            Screen::Review => self.review_key(k),
            Screen::Results => self.results_key(k),
        }
    }

    fn orgs_key(&mut self, k: KeyEvent) -> Option<Effect> {
        if let Some(c) = moved(self.org, self.orgs.len(), k.code) {
            self.org = c;
            return None;
        }
        match k.code {
            KeyCode::Char('c') => self.check_deleted = !self.check_deleted,
            KeyCode::Char('n') => self.new_org = Some(NewOrg::default()),
            KeyCode::Enter => match self.org_name() {
                Some(org) => {
                    let org = org.to_owned();
                    self.screen = Screen::Reading;
                    self.busy = format!("Reading the tenant of org {org} and the server…");
                    self.sign_in = None;
                    return Some(Effect::Read { org });
                }
                None => self.status = "No organization yet: press n to add one.".into(),
            },
            KeyCode::Esc => return Some(Effect::Quit),
            _ => {}
        }
        None
    }

    fn new_org_key(&mut self, k: KeyEvent) -> Option<Effect> {
        let form = self.new_org.as_mut().expect("the form is open");
        let used = form.used();
        match k.code {
            KeyCode::Esc => self.new_org = None,
            KeyCode::Tab | KeyCode::Down => form.at = (form.at + 1) % used,
            KeyCode::BackTab | KeyCode::Up => form.at = (form.at + used - 1) % used,
            KeyCode::Backspace => {
                form.fields[form.at].pop();
            }
            KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                form.fields[form.at].clear()
            }
            KeyCode::Char(c) => form.fields[form.at].push(c),
            KeyCode::Enter if form.at + 1 < used => form.at += 1,
            KeyCode::Enter => {
                let f: Vec<String> = form.fields.iter().map(|f| f.trim().to_owned()).collect();
                if f[0].is_empty() || f[1].is_empty() {
                    self.status =
                        "Give the organization a name and a tenant fixture file or tenant id."
                            .into();
                    return None;
                }
                let live = form.is_live();
                self.new_org = None;
                if !live {
                    return Some(Effect::AddFixture {
                        name: f[0].clone(),
                        path: f[1].clone(),
                    });
                }
                let optional = |s: &String| (!s.is_empty()).then(|| s.clone());
                self.screen = Screen::Reading;
                self.busy = format!("Signing in to tenant {} for org {}…", f[1], f[0]);
                self.sign_in = None;
                return Some(Effect::AddLive {
                    name: f[0].clone(),
                    tenant: f[1].clone(),
                    client_id: optional(&f[2]),
                    url: optional(&f[3]),
                });
            }
            _ => {}
        }
        None
    }

    /// Narrows the rows shown to those matching the query.
    pub fn apply_search(&mut self) {
        self.shown = engine::search::narrow(&self.rows, &self.query);
        self.cursor = self.cursor.min(self.shown.len().saturating_sub(1));
    }

    fn search_key(&mut self, k: KeyEvent) {
        match k.code {
            KeyCode::Esc => self.editing = false,
            KeyCode::Enter => {
                self.editing = false;
                self.apply_search();
            }
            KeyCode::Backspace => {
                self.query.pop();
                self.apply_search();
            }
            KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                self.query.clear();
                self.apply_search();
            }
            KeyCode::Char(c) => {
                self.query.push(c);
                self.apply_search();
            }
            _ => {}
        }
    }

    fn current_row(&self) -> Option<&SearchRow> {
        self.shown.get(self.cursor).map(|&i| &self.rows[i])
    }

    fn toggle(&mut self, id: ObjectId) {
        if !self.ticked.remove(&id) {
            self.ticked.insert(id);
        }
    }

    /// *Select all* and *Invert selection* act on the rows shown.
    fn menu_pick(&mut self, item: usize) {
        let shown: Vec<ObjectId> = self
            .shown
            .iter()
            .map(|&i| self.rows[i].id.clone())
            .collect();
        if item == 0 {
            self.ticked.extend(shown);
        } else {
            for id in shown {
                self.toggle(id);
            }
        }
    }

    /// The selection the ticks make: the ticked entries by id, in the order they are listed.
    pub fn selection(&self) -> SelectionSpec {
        SelectionSpec {
            select: self
                .rows
                .iter()
                .filter(|r| self.ticked.contains(&r.id))
                .map(|r| r.id.to_string())
                .collect(),
            ..SelectionSpec::default()
        }
    }

    /// The options: deleted objects checked or not, each one's action.
    pub fn options(&self) -> RunOptions {
        RunOptions {
            check_deleted: self.check_deleted,
            actions: self
                .deleted
                .iter()
                .filter(|d| d.action != DeletedAction::Ignore)
                .map(|d| ActionOverride {
                    target: d.object.id.to_string(),
                    action: d.action,
                })
                .collect(),
            ..RunOptions::default()
        }
    }

    /// Opens the review page: the plan is decided in memory, nothing is written.
    fn review(&mut self) -> Option<Effect> {
        let deleted_to_process = self.check_deleted && !self.deleted.is_empty();
        if self.ticked.is_empty() && !deleted_to_process {
            self.status =
                "Nothing ticked: Space ticks the entry under the cursor, a selects all.".into();
            return None;
        }
        self.review_from = self.screen;
        self.screen = Screen::Review;
        self.preview = Some(Err("Deciding what the import would do…".into()));
        self.review_cursor = 0;
        self.review_filter = None;
        self.confirm = None;
        Some(Effect::Preview {
            selection: self.selection(),
            options: self.options(),
        })
    }

    /// The review's entries the filter lets through.
    pub fn review_shown(&self) -> Vec<&EntryOutcome> {
        match &self.preview {
            Some(Ok(p)) => p
                .entries
                .iter()
                .filter(|e| self.review_filter.is_none_or(|f| e.outcome == f))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// How many objects the reviewed plan deletes from the server.
    pub fn review_deletions(&self) -> usize {
        match &self.preview {
            Some(Ok(p)) => p
                .entries
                .iter()
                .filter(|e| e.outcome == Outcome::Deleted && e.op.is_some())
                .count(),
            _ => 0,
        }
    }

    fn review_key(&mut self, k: KeyEvent) -> Option<Effect> {
        if let Some(typed) = self.confirm.as_mut() {
            match k.code {
                KeyCode::Esc => self.confirm = None,
                KeyCode::Backspace => {
                    typed.pop();
                }
                KeyCode::Char(c) if typed.chars().count() < 16 => typed.push(c),
                KeyCode::Enter if typed.trim() == "delete" => {
                    self.confirm = None;
                    return self.import();
                }
                KeyCode::Enter => {
                    self.status =
                        "Type delete, then Enter, to import with the deletions; Esc goes back."
                            .into();
                }
                _ => {}
            }
            return None;
        }
        let len = self.review_shown().len();
        if let Some(c) = moved(self.review_cursor, len, k.code) {
            self.review_cursor = c;
            return None;
        }
        match k.code {
            KeyCode::Char('f') => {
                let present: Vec<Outcome> = match &self.preview {
                    Some(Ok(p)) => Outcome::ALL
                        .into_iter()
                        .filter(|o| p.entries.iter().any(|e| e.outcome == *o))
                        .collect(),
                    _ => Vec::new(),
                };
                self.review_filter = next_filter(self.review_filter, &present);
                self.review_cursor = 0;
            }
            KeyCode::Esc => {
                self.preview = None;
                self.screen = self.review_from;
            }
            KeyCode::Enter => match &self.preview {
                Some(Ok(p)) => {
                    if let Some(why) = &p.refusal {
                        self.status = format!(
                            "This import would be refused, nothing would change: {why}. Esc goes back."
                        );
                    } else if self.review_deletions() > 0 {
                        self.confirm = Some(String::new());
                    } else {
                        return self.import();
                    }
                }
                Some(Err(_)) | None => {
                    self.status = "Not decided yet; Esc goes back.".into();
                }
            },
            _ => {}
        }
        None
    }

    fn import(&mut self) -> Option<Effect> {
        let org = self.org_name()?.to_owned();
        self.preview = None;
        self.screen = Screen::Importing;
        self.busy = format!("Importing into the server from org {org}…");
        Some(Effect::Import {
            org,
            selection: self.selection(),
            options: self.options(),
        })
    }

    fn search_page_key(&mut self, k: KeyEvent) -> Option<Effect> {
        self.note.clear();
        if let Some(c) = moved(self.cursor, self.shown.len(), k.code) {
            self.cursor = c;
            return None;
        }
        match k.code {
            KeyCode::Char('/') => self.editing = true,
            KeyCode::Char(' ') => {
                if let Some((id, name)) = self.current_row().map(|r| (r.id.clone(), r.name.clone()))
                {
                    self.toggle(id.clone());
                    let did = if self.ticked.contains(&id) {
                        "ticked"
                    } else {
                        "unticked"
                    };
                    self.note = format!("{did} {name}; the cursor moved to the next row");
                    self.cursor = (self.cursor + 1).min(self.shown.len().saturating_sub(1));
                }
            }
            KeyCode::Char('a') => self.menu_pick(0),
            KeyCode::Char('i') => self.menu_pick(1),
            KeyCode::Char('p') => return self.review(),
            KeyCode::Esc => {
                self.screen = Screen::Orgs;
            }
            KeyCode::Enter if self.check_deleted && !self.deleted.is_empty() => {
                self.screen = Screen::Deleted;
            }
            KeyCode::Enter => return self.review(),
            _ => {}
        }
        None
    }

    /// The marked rows, or the row under the cursor when none is marked.
    fn set_action(&mut self, action: DeletedAction) {
        let any_marked = self.deleted.iter().any(|d| d.marked);
        let cursor = self.deleted_cursor;
        for (i, d) in self.deleted.iter_mut().enumerate() {
            if d.marked || (!any_marked && i == cursor) {
                d.action = action;
                d.marked = false;
            }
        }
    }

    fn deleted_key(&mut self, k: KeyEvent) -> Option<Effect> {
        self.note.clear();
        if let Some(c) = moved(self.deleted_cursor, self.deleted.len(), k.code) {
            self.deleted_cursor = c;
            return None;
        }
        match k.code {
            KeyCode::Char(' ') => {
                if let Some(d) = self.deleted.get_mut(self.deleted_cursor) {
                    d.marked = !d.marked;
                    let did = if d.marked { "marked" } else { "unmarked" };
                    self.note =
                        format!("{did} {}; the cursor moved to the next row", d.object.name);
                    self.deleted_cursor =
                        (self.deleted_cursor + 1).min(self.deleted.len().saturating_sub(1));
                }
            }
            KeyCode::Char('g') => self.set_action(DeletedAction::Ignore),
            KeyCode::Char('d') => self.set_action(DeletedAction::Disable),
            KeyCode::Char('x') => self.ask = Some(Ask::Delete),
            KeyCode::Esc => self.screen = Screen::Search,
            KeyCode::Enter => return self.review(),
            _ => {}
        }
        None
    }

    /// The result rows the filter lets through.
    pub fn results_shown(&self) -> Vec<&EntryOutcome> {
        self.results
            .iter()
            .flat_map(|r| &r.entries)
            .filter(|e| self.filter.is_none_or(|f| e.outcome == f))
            .collect()
    }

    fn results_key(&mut self, k: KeyEvent) -> Option<Effect> {
        let len = self.results_shown().len();
        if let Some(c) = moved(self.results_cursor, len, k.code) {
            self.results_cursor = c;
            return None;
        }
        match k.code {
            KeyCode::Char('f') => {
                let present: Vec<Outcome> = Outcome::ALL
                    .into_iter()
                    .filter(|o| {
                        self.results
                            .iter()
                            .flat_map(|r| &r.entries)
                            .any(|e| e.outcome == *o)
                    })
                    .collect();
                self.filter = next_filter(self.filter, &present);
                self.results_cursor = 0;
            }
            KeyCode::Enter | KeyCode::Esc => return Some(Effect::Quit),
            _ => {}
        }
        None
    }

    pub fn mouse(&mut self, m: MouseEvent) -> Option<Effect> {
        if self.screen != Screen::Search || self.editing || self.ask.is_some() {
            return None;
        }
        match m.kind {
            MouseEventKind::Down(MouseButton::Right) => {
                self.menu = Some(Menu {
                    x: m.column,
                    y: m.row,
                    item: 0,
                });
            }
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some(menu) = self.menu.take() {
                    // A click on an item of the menu picks it; anywhere else closes it.
                    let item = m.row.checked_sub(menu.y + 1).map(usize::from);
                    if let Some(item) = item.filter(|i| *i < MENU.len()) {
                        if m.column >= menu.x && m.column < menu.x + 20 {
                            self.menu_pick(item);
                        }
                    }
                    return None;
                }
                if let Some(line) = m.row.checked_sub(self.table_top) {
                    let index = self.table_offset + usize::from(line);
                    if index < self.shown.len() {
                        self.cursor = index;
                        let id = self.rows[self.shown[index]].id.clone();
                        self.toggle(id);
                    }
                }
            }
            MouseEventKind::ScrollDown => {
                self.cursor = (self.cursor + 3).min(self.shown.len().saturating_sub(1))
            }
            MouseEventKind::ScrollUp => self.cursor = self.cursor.saturating_sub(3),
            _ => {}
        }
        None
    }

    pub fn done(&mut self, d: Done) {
        match d {
            Done::SignIn(text) => self.sign_in = Some(text),
            Done::OrgAdded(Ok((orgs, added))) => {
                self.orgs = orgs;
                self.org = self.orgs.iter().position(|o| o.name == added).unwrap_or(0);
                self.screen = Screen::Orgs;
                self.sign_in = None;
            }
            Done::OrgAdded(Err(e)) => {
                self.screen = Screen::Orgs;
                self.sign_in = None;
                self.status = e;
            }
            Done::Read(Ok(read)) => {
                self.rows = read.rows;
                self.deleted = read
                    .deleted
                    .into_iter()
                    .map(|object| DeletedRow {
                        object,
                        action: DeletedAction::Ignore,
                        marked: false,
                    })
                    .collect();
                self.problems = read.problems;
                self.ticked.clear();
                self.query.clear();
                self.cursor = 0;
                self.deleted_cursor = 0;
                self.apply_search();
                self.screen = Screen::Search;
                self.sign_in = None;
            }
            Done::Read(Err(e)) => {
                self.screen = Screen::Orgs;
                self.sign_in = None;
                self.status = e;
            }
            Done::Preview(p) => {
                if self.screen == Screen::Review {
                    self.preview = Some(p);
                }
            }
            Done::Imported(Ok(results)) => {
                self.results = Some(results);
                self.filter = None;
                self.results_cursor = 0;
                self.screen = Screen::Results;
            }
            Done::Imported(Err(e)) => {
                self.screen = self.review_from;
                self.status = e;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
