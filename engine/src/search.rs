//! The wizard's search page: rows computed from the enumerated snapshot (never from Graph's
//! own `$search`, which only matches words of displayName/description), and the admin's
//! selection resolved against them.

use serde::Serialize;
use smol_str::SmolStr;

use crate::event::{Action, ActionChosen, Event, GroupSeen, SelectionSpec, UserSeen};
use crate::ids::ObjectId;
use crate::model::{EntraGroup, EntraUser, Kind, TenantSnapshot};

/// One row of the search page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchRow {
    #[serde(skip)]
    pub kind: Kind,
    pub id: ObjectId,
    pub name: SmolStr,
    /// `Member`/`Guest` for users; the group type for groups.
    #[serde(rename = "type")]
    pub row_type: SmolStr,
    pub department: Option<SmolStr>,
    pub description: Option<SmolStr>,
    pub upn: Option<SmolStr>,
    #[serde(skip)]
    pub mail: Option<SmolStr>,
}

impl SearchRow {
    pub fn for_user(u: &EntraUser) -> Self {
        SearchRow {
            kind: Kind::User,
            id: u.id.clone(),
            name: u.name().into(),
            row_type: u.user_type.label().into(),
            department: u.department.clone(),
            description: None,
            upn: Some(u.user_principal_name.clone()),
            mail: u.mail.clone(),
        }
    }

    pub fn for_group(g: &EntraGroup) -> Self {
        SearchRow {
            kind: Kind::Group,
            id: g.id.clone(),
            name: g.name().into(),
            row_type: g.group_type().label().into(),
            department: None,
            description: g.description.clone(),
            upn: None,
            mail: g.mail.clone(),
        }
    }

    /// Case-insensitive substring match over name, UPN, mail, department and description;
    /// an empty term matches everything.
    pub fn matches(&self, term: &str) -> bool {
        let term = term.trim().to_lowercase();
        term.is_empty() || self.matches_lowercase(&term, &mut String::new())
    }

    /// [`SearchRow::matches`] for a term already trimmed, lowercased and not empty; `scratch`
    /// holds each field lowercased (reused: no allocation per row).
    fn matches_lowercase(&self, term: &str, scratch: &mut String) -> bool {
        [
            Some(&self.name),
            self.upn.as_ref(),
            self.mail.as_ref(),
            self.department.as_ref(),
            self.description.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|field| {
            if field.is_ascii() {
                scratch.clear();
                scratch.extend(field.chars().map(|c| c.to_ascii_lowercase()));
                scratch.contains(term)
            } else {
                field.to_lowercase().contains(term)
            }
        })
    }
}

/// The indexes of the rows that match `term` (every row for an empty one), in order: the
/// wizard's search field, answered as it is typed.
pub fn narrow(rows: &[SearchRow], term: &str) -> Vec<usize> {
    let term = term.trim().to_lowercase();
    if term.is_empty() {
        return (0..rows.len()).collect();
    }
    let mut scratch = String::new();
    rows.iter()
        .enumerate()
        .filter(|(_, r)| r.matches_lowercase(&term, &mut scratch))
        .map(|(i, _)| i)
        .collect()
}

/// Which rows a search shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TypeFilter {
    Users,
    Groups,
    #[default]
    All,
}

impl TypeFilter {
    fn keeps(self, kind: Kind) -> bool {
        match self {
            TypeFilter::Users => kind == Kind::User,
            TypeFilter::Groups => kind == Kind::Group,
            TypeFilter::All => true,
        }
    }
}

/// The search view: a fold over the Entra objects a run saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchView {
    rows: Vec<SearchRow>,
    sorted: bool,
}

/// The view folded from a run's events: its Entra `UserSeen`/`GroupSeen`.
impl crate::projection::Projection for SearchView {
    fn uses(kind: crate::event::EventKind) -> bool {
        matches!(
            kind,
            crate::event::EventKind::UserSeen | crate::event::EventKind::GroupSeen
        )
    }

    fn take(&mut self, _run: crate::ids::RunId, event: Event) {
        match &event {
            Event::UserSeen(UserSeen::Entra { user }) => self.rows.push(SearchRow::for_user(user)),
            Event::GroupSeen(GroupSeen::Entra { group }) => {
                self.rows.push(SearchRow::for_group(group))
            }
            _ => return,
        }
        self.sorted = false;
    }
}

impl SearchView {
    pub fn from_snapshot(snapshot: &TenantSnapshot) -> Self {
        let mut view = SearchView::default();
        view.rows
            .extend(snapshot.users.iter().map(SearchRow::for_user));
        view.rows
            .extend(snapshot.groups.iter().map(SearchRow::for_group));
        view.sort();
        view
    }

    fn sort(&mut self) {
        self.rows
            .sort_by_cached_key(|r| (r.name.to_lowercase(), r.kind, r.id.clone()));
        self.sorted = true;
    }

    /// Rows matching `term` of the given kinds, sorted by name.
    pub fn search(&mut self, term: &str, filter: TypeFilter) -> Vec<&SearchRow> {
        if !self.sorted {
            self.sort();
        }
        self.rows
            .iter()
            .filter(|r| filter.keeps(r.kind) && r.matches(term))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Why a selection cannot be resolved. All are the admin's to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("--select {term:?} matches no user or group{scope}; run `roster search` to see the names, UPNs and ids")]
    Unknown { term: String, scope: String },
    #[error("--select {term:?} matches {} entries ({}); select by id or UPN instead", .matches.len(), .matches.join(", "))]
    Ambiguous { term: String, matches: Vec<String> },
    #[error("nothing is selected: use --select ID|UPN|NAME, --select-all, or --invert")]
    NothingSelected,
    #[error("the selection is empty{scope}; nothing to import")]
    Empty { scope: String },
    #[error("everything selected ({selected}) is left out of the org for good; `roster org leave-out ORG` lists them, `roster org take-back ORG OBJECT` brings one back")]
    AllLeftOut { selected: usize },
}

/// Whether a selection that selects nothing may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptySelection {
    /// Nothing to import: refused (a run that does nothing else).
    Refused,
    /// Allowed: the run still looks for deleted objects.
    Allowed,
}

/// Resolves the admin's selection to the chosen entries, sorted like the search page.
///
/// Like the wizard: the search term narrows the rows, the admin ticks rows (by id, UPN or
/// name) or uses *Select all*, and *Invert selection* flips the ticks among the shown rows.
/// `empty` says whether a run with nothing selected may proceed (it may still process deleted
/// objects).
pub fn resolve_selection(
    view: &mut SearchView,
    spec: &SelectionSpec,
    empty: EmptySelection,
) -> Result<Vec<ActionChosen>, SelectionError> {
    let allow_empty = empty == EmptySelection::Allowed;
    let term = spec.search.as_deref().unwrap_or("");
    let scope = if term.trim().is_empty() {
        String::new()
    } else {
        format!(" among the results for {term:?}")
    };
    let rows = view.search(term, TypeFilter::All);
    if spec.select.is_empty() && !spec.select_all && !spec.invert {
        // A run that only processes deleted objects selects nothing, on purpose.
        return if allow_empty {
            Ok(Vec::new())
        } else {
            Err(SelectionError::NothingSelected)
        };
    }
    let mut ticked = vec![spec.select_all; rows.len()];
    for wanted in &spec.select {
        let w = wanted.trim();
        let by_key: Vec<usize> = (0..rows.len())
            .filter(|&i| {
                rows[i].id.as_str().eq_ignore_ascii_case(w)
                    || rows[i]
                        .upn
                        .as_deref()
                        .is_some_and(|u| u.to_lowercase() == w.to_lowercase())
            })
            .collect();
        let hits = if by_key.is_empty() {
            (0..rows.len())
                .filter(|&i| rows[i].name.to_lowercase() == w.to_lowercase())
                .collect()
        } else {
            by_key
        };
        match hits.len() {
            0 => {
                return Err(SelectionError::Unknown {
                    term: wanted.clone(),
                    scope,
                })
            }
            1 => ticked[hits[0]] = true,
            _ => {
                return Err(SelectionError::Ambiguous {
                    term: wanted.clone(),
                    matches: hits
                        .iter()
                        .map(|&i| format!("{} {}", rows[i].kind.as_str(), rows[i].id))
                        .collect(),
                })
            }
        }
    }
    if spec.invert {
        ticked.iter_mut().for_each(|t| *t = !*t);
    }
    let chosen: Vec<ActionChosen> = rows
        .iter()
        .zip(ticked)
        .filter(|(_, t)| *t)
        .map(|(r, _)| ActionChosen {
            kind: r.kind,
            id: r.id.clone(),
            name: r.name.to_string(),
            action: Action::Import,
        })
        .collect();
    if chosen.is_empty() && !allow_empty {
        return Err(SelectionError::Empty { scope });
    }
    Ok(chosen)
}
