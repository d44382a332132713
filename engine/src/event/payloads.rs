//! What each event says: the payloads of [`super::Event`], and the values they hold.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    DryRun,
    Apply,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::DryRun => "dry-run",
            Mode::Apply => "apply",
        }
    }
}

/// Where the tenant snapshot came from, and a fingerprint of what was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceInfo {
    pub kind: SourceKind,
    /// The fixture path or the Graph base URL.
    pub location: String,
    /// SHA-256 of the snapshot's canonical form: equal snapshots, equal fingerprints.
    pub fingerprint: String,
    pub completeness: Completeness,
    /// Non-fatal oddities met while reading (an unknown member type, say).
    #[serde(default)]
    pub problems: Vec<String>,
    /// How many users and groups the tenant listed (recorded since the listing-shrink guard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed: Option<Listed>,
    /// Graph's change-tracking links as of this read: the next run of the org reads only what
    /// changed since (live orgs, after a complete read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_links: Option<DeltaLinks>,
    /// The run whose delta links this read followed: it asked Graph only for the changes since
    /// that run's read, and applied them to that run's inputs. `None`: the whole tenant was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes_since: Option<RunId>,
    /// Whom Graph was read as: the administrator who signed in (their user principal name,
    /// from the sign-in's ID token) or `application CLIENT_ID`. `None` for a fixture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_in_as: Option<String>,
    /// SHA-256 of what the read was made of: a fixture file's bytes (`sha256sum` says the
    /// same). `None` for Graph, and in runs recorded before roster kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// Where Graph's change tracking (`/users/delta`, `/groups/delta` with members) resumes: the
/// `@odata.deltaLink` of each. Cursors, not credentials: they read nothing without a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaLinks {
    pub users: String,
    pub groups: String,
}

/// How many users and groups a read listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub users: u32,
    pub groups: u32,
}

/// The org's last completed run whose listings were complete, and what it listed: a listing
/// that suddenly holds under half of it is suspect (see `plan::Refusal::ShrunkListing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub run: RunId,
    pub listed: Listed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Fixture,
    Graph,
}

/// Which server the run changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum TargetInfo {
    /// The server directory kept in the store, beside the log.
    Embedded,
    /// A server state file (`--server-file`).
    File { path: String },
    /// A SCIM 2.0 service (`--scim`): its base URL, and the optional user attributes it does
    /// not keep (`title`, `userType`, `department`…, as the SCIM target names them: not in its
    /// schema, or seen dropped by an earlier run), which the run neither writes nor compares.
    Scim {
        url: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unkept: Vec<String>,
    },
}

impl TargetInfo {
    /// Whether `other` names the same server (a SCIM service by its URL, whatever it was
    /// seen to keep): what a run's base must have run against.
    pub fn same_server(&self, other: &TargetInfo) -> bool {
        match (self, other) {
            (TargetInfo::Scim { url: a, .. }, TargetInfo::Scim { url: b, .. }) => a == b,
            _ => self == other,
        }
    }

    /// The optional user attributes the server does not keep (see [`TargetInfo::Scim`]).
    pub fn unkept(&self) -> &[String] {
        match self {
            TargetInfo::Scim { unkept, .. } => unkept,
            _ => &[],
        }
    }

    /// Whether the server keeps a group's description and type. A SCIM group has no place for
    /// them, so a plan against a SCIM service neither writes nor compares them: else every
    /// run would "update" every group.
    pub fn keeps_group_details(&self) -> bool {
        !matches!(self, TargetInfo::Scim { .. })
    }
}

/// The admin's selection, as typed: the search term, the picks, and the right-click actions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectionSpec {
    pub select: Vec<String>,
    pub select_all: bool,
    pub search: Option<String>,
    pub invert: bool,
}

/// What happens to an object deleted in Entra ID that still exists on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeletedAction {
    #[default]
    Ignore,
    Disable,
    Delete,
}

impl DeletedAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletedAction::Ignore => "ignore",
            DeletedAction::Disable => "disable",
            DeletedAction::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ignore" => Some(DeletedAction::Ignore),
            "disable" => Some(DeletedAction::Disable),
            "delete" => Some(DeletedAction::Delete),
            _ => None,
        }
    }
}

/// `--action TARGET=ACTION` as typed; TARGET is an id, a login or a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionOverride {
    pub target: String,
    pub action: DeletedAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOptions {
    pub check_deleted: bool,
    pub on_deleted: DeletedAction,
    pub actions: Vec<ActionOverride>,
    pub max_deletions: u32,
    pub allow_empty_source: bool,
    /// Objects left out of the org's selection for good (`roster org leave-out`): never
    /// chosen, never imported as a member of a selected group, never handled as deleted.
    /// Copied from the org's settings when the run starts (version 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leave_out: Vec<ObjectId>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            check_deleted: false,
            on_deleted: DeletedAction::Ignore,
            actions: Vec::new(),
            max_deletions: 50,
            allow_empty_source: false,
            leave_out: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStarted {
    pub org: String,
    pub tenant_id: TenantId,
    pub mode: Mode,
    /// The operating-system account that started the run: `name (uid N)` from the process's
    /// real uid (runs recorded before that hold `$USER`).
    pub started_by: String,
    pub engine_version: String,
    pub source: SourceInfo,
    pub target: TargetInfo,
    pub selection: SelectionSpec,
    pub options: RunOptions,
    /// Set when an import applies a reviewed dry run (`roster apply RUN`).
    pub applied_from: Option<RunId>,
    /// What the org's last complete read listed, when there was one (recorded since the
    /// listing-shrink guard; older runs decide without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// The org's last completed run, when this run records only what differs from its inputs
    /// and outcomes (an incremental run, version 3); `None` for a full run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<RunId>,
    /// SHA-256 of the run's complete inputs in canonical form (see
    /// [`crate::chain::inputs_digest`]): what replay checks the inputs it rebuilds against.
    /// Recorded since version 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_digest: Option<String>,
    /// The decision rules the run was decided under ([`DECISION_RULES`]); runs recorded before
    /// they were numbered were decided under rules 1.
    #[serde(default = "first_rules")]
    pub rules: u32,
    /// A run a safety limit refused, imported as reviewed (`roster apply RUN --approve`):
    /// the refused run, who approved it, and the refusal approved (version 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<Box<Approval>>,
}

/// See [`RunStarted::approved`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub run: RunId,
    pub by: String,
    pub refusal: String,
}

fn first_rules() -> u32 {
    1
}

/// One user as read at the start of a run, from Entra ID, its recycle bin, or the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "camelCase")]
pub enum UserSeen {
    Entra { user: EntraUser },
    DeletedItems { user: DeletedItem },
    Server { user: ServerUser },
}

/// One group as read at the start of a run, from Entra ID, its recycle bin, or the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "camelCase")]
pub enum GroupSeen {
    Entra { group: EntraGroup },
    DeletedItems { group: DeletedItem },
    Server { group: ServerGroup },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// In Entra's recycle bin, with `deletedDateTime`.
    SoftDeleted,
    /// Absent from a complete enumeration.
    Missing,
}

impl Evidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::SoftDeleted => "soft-deleted",
            Evidence::Missing => "missing",
        }
    }
}

/// Which of a run's inputs an object was listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Listing {
    /// Entra ID's users or groups.
    Entra,
    /// Entra ID's recycle bin.
    DeletedItems,
    /// The server's directory.
    Server,
}

/// An object of the base run's inputs that this run's read no longer lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectUnlisted {
    pub source: Listing,
    pub kind: Kind,
    /// The Entra object id, or for a server object its login (users) or name (groups).
    pub key: String,
}

/// A choice or a deleted object of the base run that this run no longer has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Withdrawn {
    pub kind: Kind,
    pub id: ObjectId,
}

/// A server object linked to the run's org whose Entra object is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectDeleted {
    pub kind: Kind,
    pub id: ObjectId,
    /// The server object's name: display name for users, group name for groups.
    pub name: String,
    /// The server object's key: login for users, group name for groups.
    pub server_key: String,
    pub evidence: Evidence,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Import,
    Ignore,
    Disable,
    Delete,
}

impl From<DeletedAction> for Action {
    fn from(a: DeletedAction) -> Self {
        match a {
            DeletedAction::Ignore => Action::Ignore,
            DeletedAction::Disable => Action::Disable,
            DeletedAction::Delete => Action::Delete,
        }
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Import => "import",
            Action::Ignore => "ignore",
            Action::Disable => "disable",
            Action::Delete => "delete",
        }
    }
}

/// The admin's choice for one entry: import a selected object, or what to do with a deleted one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionChosen {
    pub kind: Kind,
    pub id: ObjectId,
    pub name: String,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Added,
    Updated,
    Unchanged,
    Skipped,
    Disabled,
    Deleted,
    Ignored,
    Conflict,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Added,
        Outcome::Updated,
        Outcome::Unchanged,
        Outcome::Skipped,
        Outcome::Disabled,
        Outcome::Deleted,
        Outcome::Ignored,
        Outcome::Conflict,
        Outcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Added => "added",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Disabled => "disabled",
            Outcome::Deleted => "deleted",
            Outcome::Ignored => "ignored",
            Outcome::Conflict => "conflict",
            Outcome::Failed => "failed",
        }
    }

    /// A conflict or a failure: what needs the admin's attention (a new one makes the run
    /// exit 3, see `app::attention`).
    pub fn is_problem(self) -> bool {
        matches!(self, Outcome::Conflict | Outcome::Failed)
    }
}

/// Why an entry was skipped, conflicted, failed or left unchanged, for scripts and audits;
/// `detail` says the same in words. (Added in event version 2.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// The Entra account is disabled: disabled accounts are not imported.
    AccountDisabled,
    /// The login belongs to a local server user.
    LocalUser,
    /// The login belongs to an Active Directory (Windows) user.
    WindowsUser,
    /// The login or name belongs to an object imported from another tenant.
    OtherTenant,
    /// The login or name is linked to another Entra object of this tenant.
    LinkedElsewhere,
    /// The name is held by an object that is not linked to Entra ID.
    NameTaken,
    /// A chosen object is not in the tenant snapshot.
    NotInSnapshot,
    /// A deleted object is no longer on the server.
    NotOnServer,
    /// Disabling an object that is already disabled.
    AlreadyDisabled,
    /// An administrator disabled the user on the server (`roster server disable`): roster
    /// leaves it disabled although Entra ID has it enabled.
    DisabledByAdministrator,
    /// The server target could not be written.
    WriteFailed,
}

/// One changed field: `from` and `to` are JSON so that lists and flags read naturally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub from: Value,
    pub to: Value,
}

/// The decision (dry run) or result (import) for one entry of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryOutcome {
    pub kind: Kind,
    pub id: ObjectId,
    pub name: String,
    pub outcome: Outcome,
    pub detail: String,
    /// Machine-readable cause for skipped, conflict, failed and some unchanged entries.
    pub reason: Option<Reason>,
    pub changes: Vec<Change>,
    /// The server change this entry makes, if any: the log alone says what the server holds.
    pub op: Option<ServerOp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Completed,
    Aborted,
    Refused,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Aborted => "aborted",
            RunStatus::Refused => "refused",
        }
    }
}

/// Entry counts by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub added: u32,
    pub updated: u32,
    pub unchanged: u32,
    pub skipped: u32,
    pub disabled: u32,
    pub deleted: u32,
    pub ignored: u32,
    pub conflict: u32,
    pub failed: u32,
}

impl Summary {
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a EntryOutcome>) -> Summary {
        let mut s = Summary::default();
        for e in outcomes {
            s.count(e.outcome);
        }
        s
    }

    pub fn count(&mut self, outcome: Outcome) {
        *self.slot(outcome) += 1;
    }

    pub fn get(&self, outcome: Outcome) -> u32 {
        let mut copy = *self;
        *copy.slot(outcome)
    }

    fn slot(&mut self, outcome: Outcome) -> &mut u32 {
        match outcome {
            Outcome::Added => &mut self.added,
            Outcome::Updated => &mut self.updated,
            Outcome::Unchanged => &mut self.unchanged,
            Outcome::Skipped => &mut self.skipped,
            Outcome::Disabled => &mut self.disabled,
            Outcome::Deleted => &mut self.deleted,
            Outcome::Ignored => &mut self.ignored,
            Outcome::Conflict => &mut self.conflict,
            Outcome::Failed => &mut self.failed,
        }
    }

    pub fn has_problems(&self) -> bool {
        self.conflict > 0 || self.failed > 0
    }

    /// These counts with `other`'s added.
    pub fn plus(mut self, other: &Summary) -> Summary {
        for o in Outcome::ALL {
            *self.slot(o) += other.get(o);
        }
        self
    }

    /// These counts less `other`'s (none under zero).
    pub fn less(mut self, other: &Summary) -> Summary {
        for o in Outcome::ALL {
            let slot = self.slot(o);
            *slot = slot.saturating_sub(other.get(o));
        }
        self
    }

    pub fn total(&self) -> u32 {
        Outcome::ALL.iter().map(|o| self.get(*o)).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunFinished {
    pub status: RunStatus,
    pub summary: Summary,
    /// Why a run was refused or aborted.
    pub reason: Option<String>,
    /// Optional user attributes the server was seen not to keep during the run (a SCIM
    /// service that answered a write without them): the next run against it leaves them out
    /// ([`TargetInfo::unkept`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learned: Vec<String>,
}

/// See [`Event::ServerWriteIntended`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerWriteIntended {
    /// The server file, as the run named it.
    pub path: String,
    /// SHA-256 (hex) of the file as the run read it.
    pub before: String,
    /// SHA-256 (hex) of the file the run is about to write.
    pub after: String,
    /// The `ChangeIntended` events before this one.
    pub changes: u32,
}

/// See [`Event::LogRepaired`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRepaired {
    /// The unfinished run whose last writes were torn.
    pub run: RunId,
    /// The first event cut: the log kept everything before it.
    pub cut_from: Seq,
    /// Events cut, as the run index counted them.
    pub events_cut: u64,
    /// What was found torn.
    pub reason: String,
    /// Whether the embedded server's records were rebuilt from the log (the run had changed it).
    pub server_rebuilt: bool,
}

/// See [`Event::ServerEdited`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerEdited {
    /// Who did it: the operating-system account, as `RunStarted.startedBy`.
    pub by: String,
    /// What the administrator asked, as typed: `enable LOGIN`, `disable LOGIN`.
    pub action: String,
    /// The change made, applied as an import's ops are (`ServerState::apply`).
    pub op: ServerOp,
    pub changes: Vec<Change>,
    /// The server's digest once changed ([`crate::model::ServerState::digest`]): what the
    /// log says the server holds (version 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_digest: Option<String>,
}

/// See [`Event::ServerLoaded`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerLoaded {
    /// Who did it: the operating-system account, as `RunStarted.startedBy`.
    pub by: String,
    /// The server state file, as the administrator named it.
    pub file: String,
    pub users: u32,
    pub groups: u32,
    /// The directory loaded, by digest ([`crate::model::ServerState::digest`]).
    pub server_digest: String,
}

/// See [`Event::BackupTaken`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupTaken {
    /// Who took it: the operating-system account, as `RunStarted.startedBy`.
    pub by: String,
    pub orgs: u32,
    pub server_users: u32,
    pub server_groups: u32,
    /// SHA-256 of the backup's org and server lines, exactly as written after the log.
    pub contents_digest: String,
}

/// See [`Event::ProblemAcknowledged`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProblemAcknowledged {
    pub org: String,
    pub kind: Kind,
    pub id: ObjectId,
    pub name: String,
    /// The problem acknowledged, as the run named in `run` reported it: a later run's entry
    /// is acknowledged only while it has this outcome and this detail.
    pub outcome: Outcome,
    pub detail: String,
    pub run: RunId,
    /// Who did it: the operating-system account, as `RunStarted.startedBy`.
    pub by: String,
    /// Why, as the administrator wrote it (`--note`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// See [`Event::AcknowledgementWithdrawn`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcknowledgementWithdrawn {
    pub org: String,
    pub kind: Kind,
    pub id: ObjectId,
    pub name: String,
    pub by: String,
}
