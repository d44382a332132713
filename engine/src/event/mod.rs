//! The facts a run records, in the past tense, and the envelope that orders and chains them.
//!
//! Variant and field names are part of the stored format: they never change once persisted.
//! A change of shape bumps [`EVENT_VERSION`] and adds a step to [`upcast`], so that a log written
//! today still replays in a later version.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ids::{ObjectId, RunId, Seq, TenantId};

mod fast;
use crate::model::{
    Completeness, DeletedItem, EntraGroup, EntraUser, Kind, ServerGroup, ServerOp, ServerUser,
};
#[doc(hidden)]
pub use fast::decode_current_by_type;

/// The schema version written with every new event. 4: `ServerLoaded`, `BackupTaken`, and the
/// server's digest in `ServerEdited`. 5: `ProblemAcknowledged`, `AcknowledgementWithdrawn`,
/// `RunOptions.leaveOut` and `RunStarted.approved` (older logs hold none of them; nothing
/// changed shape).
pub const EVENT_VERSION: u16 = 5;

/// The version of the decision rules a new run is decided under, recorded in
/// [`RunStarted::rules`]: replay decides a run under its own. 2: a linked user whose Entra
/// account is disabled is disabled on the server (and enabled again with it). 3: an
/// incremental run records every conflict, as before or not
/// ([`crate::chain::worth_recording`]), so that its report shows every entry that needs
/// attention. 4: an added user's detail names no authentication type on a SCIM service
/// ([`crate::plan::RULES_AUTH_TYPE_WHERE_KEPT`]).
pub const DECISION_RULES: u32 = 4;

/// The oldest version whose events already have the current shape (later versions only
/// added events and optional fields): these decode directly, without upcasting.
pub const CURRENT_SHAPE_SINCE: u16 = 2;

/// Whether an event written with `version` has the current shape.
pub fn has_current_shape(version: u16) -> bool {
    (CURRENT_SHAPE_SINCE..=EVENT_VERSION).contains(&version)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    RunStarted(RunStarted),
    UserSeen(UserSeen),
    GroupSeen(GroupSeen),
    ObjectDeleted(ObjectDeleted),
    ActionChosen(ActionChosen),
    /// An object of the base run's inputs that this run's complete listing no longer holds
    /// (incremental runs, version 3).
    ObjectUnlisted(ObjectUnlisted),
    /// A choice of the base run that this run no longer makes (incremental runs, version 3).
    ChoiceWithdrawn(Withdrawn),
    /// A deleted object the base run found that this run no longer finds: restored in Entra
    /// ID, or gone from the server (incremental runs, version 3).
    DeletionWithdrawn(Withdrawn),
    /// A dry run's decision for one entry: what an import would do. Nothing was changed.
    Planned(EntryOutcome),
    /// An import's outcome for one entry, committed together with its server change.
    Imported(EntryOutcome),
    /// An entry an import is about to write to a server it cannot change in the same atomic
    /// step as the log (a server file): the intent, flushed before the write. Followed by
    /// [`ServerWriteIntended`], then by the entry's `Imported` once the write is done.
    ChangeIntended(EntryOutcome),
    /// The write that the `ChangeIntended` events before it are about to make, with digests
    /// of the server file before and after: on the next open, the file itself says whether it
    /// was made.
    ServerWriteIntended(ServerWriteIntended),
    RunFinished(RunFinished),
    /// The store's tail was torn (a write error, a full disk) and cut back to its last verified
    /// prefix. Recorded on its own, under a run id of its own, when the store was next opened.
    LogRepaired(LogRepaired),
    /// An administrator changed the embedded server outside any import (`roster server
    /// enable|disable LOGIN`). Recorded on its own, under a run id of its own, in the same
    /// atomic batch as the change.
    ServerEdited(ServerEdited),
    /// An administrator replaced the embedded server's directory (`roster server load FILE`):
    /// what it now holds, by digest. Recorded on its own, under a run id of its own, flushed
    /// before the directory is replaced (version 4).
    ServerLoaded(ServerLoaded),
    /// `roster backup` took a backup of the store: what the backup holds besides the log, by
    /// digest. The backup ends its log with this event, so its other lines are tied to the
    /// chain head like every event (version 4).
    BackupTaken(BackupTaken),
    /// An administrator acknowledged a conflict or failure of one of an org's entries
    /// (`roster conflict ack`): a later run that meets the same problem (same outcome, same
    /// detail) does not count it as new. Recorded on its own, under a run id of its own
    /// (version 5).
    ProblemAcknowledged(ProblemAcknowledged),
    /// An administrator withdrew an acknowledgement (`roster conflict unack`). Recorded on its
    /// own, under a run id of its own (version 5).
    AcknowledgementWithdrawn(AcknowledgementWithdrawn),
}

/// Which event a record holds, without its payload: what readers filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    RunStarted,
    UserSeen,
    GroupSeen,
    ObjectDeleted,
    ActionChosen,
    ObjectUnlisted,
    ChoiceWithdrawn,
    DeletionWithdrawn,
    Planned,
    Imported,
    ChangeIntended,
    ServerWriteIntended,
    RunFinished,
    LogRepaired,
    ServerEdited,
    ServerLoaded,
    BackupTaken,
    ProblemAcknowledged,
    AcknowledgementWithdrawn,
}

impl EventKind {
    pub const ALL: [EventKind; 19] = [
        EventKind::RunStarted,
        EventKind::UserSeen,
        EventKind::GroupSeen,
        EventKind::ObjectDeleted,
        EventKind::ActionChosen,
        EventKind::ObjectUnlisted,
        EventKind::ChoiceWithdrawn,
        EventKind::DeletionWithdrawn,
        EventKind::Planned,
        EventKind::Imported,
        EventKind::ChangeIntended,
        EventKind::ServerWriteIntended,
        EventKind::RunFinished,
        EventKind::LogRepaired,
        EventKind::ServerEdited,
        EventKind::ServerLoaded,
        EventKind::BackupTaken,
        EventKind::ProblemAcknowledged,
        EventKind::AcknowledgementWithdrawn,
    ];

    /// The name the stored record gives it (`"type"`): part of the format, never changed.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::RunStarted => "RunStarted",
            EventKind::UserSeen => "UserSeen",
            EventKind::GroupSeen => "GroupSeen",
            EventKind::ObjectDeleted => "ObjectDeleted",
            EventKind::ActionChosen => "ActionChosen",
            EventKind::ObjectUnlisted => "ObjectUnlisted",
            EventKind::ChoiceWithdrawn => "ChoiceWithdrawn",
            EventKind::DeletionWithdrawn => "DeletionWithdrawn",
            EventKind::Planned => "Planned",
            EventKind::Imported => "Imported",
            EventKind::ChangeIntended => "ChangeIntended",
            EventKind::ServerWriteIntended => "ServerWriteIntended",
            EventKind::RunFinished => "RunFinished",
            EventKind::LogRepaired => "LogRepaired",
            EventKind::ServerEdited => "ServerEdited",
            EventKind::ServerLoaded => "ServerLoaded",
            EventKind::BackupTaken => "BackupTaken",
            EventKind::ProblemAcknowledged => "ProblemAcknowledged",
            EventKind::AcknowledgementWithdrawn => "AcknowledgementWithdrawn",
        }
    }

    /// An event that is a run by itself: recorded alone, under a run id of its own.
    pub fn is_whole_run(self) -> bool {
        matches!(
            self,
            EventKind::LogRepaired
                | EventKind::ServerEdited
                | EventKind::ServerLoaded
                | EventKind::BackupTaken
                | EventKind::ProblemAcknowledged
                | EventKind::AcknowledgementWithdrawn
        )
    }

    /// The kind a stored name stands for; `None` for a name this roster does not know.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::RunStarted(_) => EventKind::RunStarted,
            Event::UserSeen(_) => EventKind::UserSeen,
            Event::GroupSeen(_) => EventKind::GroupSeen,
            Event::ObjectDeleted(_) => EventKind::ObjectDeleted,
            Event::ActionChosen(_) => EventKind::ActionChosen,
            Event::ObjectUnlisted(_) => EventKind::ObjectUnlisted,
            Event::ChoiceWithdrawn(_) => EventKind::ChoiceWithdrawn,
            Event::DeletionWithdrawn(_) => EventKind::DeletionWithdrawn,
            Event::Planned(_) => EventKind::Planned,
            Event::Imported(_) => EventKind::Imported,
            Event::ChangeIntended(_) => EventKind::ChangeIntended,
            Event::ServerWriteIntended(_) => EventKind::ServerWriteIntended,
            Event::RunFinished(_) => EventKind::RunFinished,
            Event::LogRepaired(_) => EventKind::LogRepaired,
            Event::ServerEdited(_) => EventKind::ServerEdited,
            Event::ServerLoaded(_) => EventKind::ServerLoaded,
            Event::BackupTaken(_) => EventKind::BackupTaken,
            Event::ProblemAcknowledged(_) => EventKind::ProblemAcknowledged,
            Event::AcknowledgementWithdrawn(_) => EventKind::AcknowledgementWithdrawn,
        }
    }

    pub fn type_name(&self) -> &'static str {
        self.kind().name()
    }
}

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

/// A SHA-256 digest chaining an event to all the events before it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The hash "before" the first event.
    pub const GENESIS: Hash = Hash([0; 32]);

    /// `sha256(previous || record)`: any edit, removal, insertion or reordering of stored
    /// records changes every hash from that point on.
    pub fn chain(previous: &Hash, record: &[u8]) -> Hash {
        let mut h = Sha256::new();
        h.update(previous.0);
        h.update(record);
        Hash(h.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Hash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).ok()?;
        Some(Hash(out))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// An event with its place in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub seq: Seq,
    pub run: RunId,
    pub time: DateTime<Utc>,
    /// The schema version the event was written with (it has been upcast since, if older).
    pub version: u16,
    pub hash: Hash,
    pub event: Event,
}

/// The stored, hashed form of an event: exactly these bytes are chained.
#[derive(Serialize)]
struct RecordOut<'a> {
    seq: Seq,
    run: RunId,
    time: &'a DateTime<Utc>,
    version: u16,
    event: &'a Event,
}

#[derive(Deserialize)]
struct RecordCurrent {
    seq: Seq,
    run: RunId,
    time: DateTime<Utc>,
    version: u16,
    event: Event,
}

#[derive(Deserialize)]
struct RecordIn {
    seq: Seq,
    run: RunId,
    time: DateTime<Utc>,
    version: u16,
    event: Value,
}

/// Why stored bytes do not decode into an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a stored event: {0}")]
    Malformed(String),
    #[error("event version {0} is newer than this roster understands (up to {EVENT_VERSION}); upgrade roster")]
    TooNew(u16),
    #[error("event version {version} cannot be upcast: {reason}")]
    Upcast { version: u16, reason: String },
}

/// Serializes an event record; these bytes are what the hash chain covers.
pub fn encode_record(seq: Seq, run: RunId, time: &DateTime<Utc>, event: &Event) -> Vec<u8> {
    serde_json::to_vec(&RecordOut {
        seq,
        run,
        time,
        version: EVENT_VERSION,
        event,
    })
    .expect("events serialize: all keys are strings")
}

/// Decodes a stored record, upcasting older versions to the current event shape.
pub fn decode_record(bytes: &[u8], hash: Hash) -> Result<Envelope, DecodeError> {
    match fast::decode_current_by_type(bytes, hash) {
        Some(env) => Ok(env),
        None => decode_record_general(bytes, hash),
    }
}

/// The general decoder alone, which defines what a record means; the fast path must agree
/// with it (tests and the `event` fuzz target compare the two).
#[doc(hidden)]
pub fn decode_record_general(bytes: &[u8], hash: Hash) -> Result<Envelope, DecodeError> {
    // A record of the current version decodes in one pass.
    if let Ok(rec) = serde_json::from_slice::<RecordCurrent>(bytes) {
        if has_current_shape(rec.version) {
            return Ok(Envelope {
                seq: rec.seq,
                run: rec.run,
                time: rec.time,
                version: rec.version,
                hash,
                event: rec.event,
            });
        }
    }
    let rec: RecordIn =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let event = upcast(rec.version, rec.event)?;
    let event: Event =
        serde_json::from_value(event).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    Ok(Envelope {
        seq: rec.seq,
        run: rec.run,
        time: rec.time,
        version: rec.version,
        hash,
        event,
    })
}

/// Brings an event of an older schema version to the current shape. Each version bump adds
/// one step here, from the oldest up, so that any stored version reaches the current one.
///
/// - 1 → 2: `Planned`/`Imported` gain `reason`, derived from the wording of `detail` that
///   version 1 wrote (the same wording version 2 still writes).
/// - 2 → 3: nothing to change: version 3 adds events (`ObjectUnlisted`, `ChoiceWithdrawn`,
///   `DeletionWithdrawn`) and optional `RunStarted` fields (`base`, `inputsDigest`); a
///   version-2 run is a full run.
pub fn upcast(version: u16, mut event: Value) -> Result<Value, DecodeError> {
    if version == 0 {
        return Err(DecodeError::Upcast {
            version,
            reason: "version 0 was never written".into(),
        });
    }
    if version > EVENT_VERSION {
        return Err(DecodeError::TooNew(version));
    }
    if version < 2 {
        let obj = event.as_object_mut().ok_or_else(|| DecodeError::Upcast {
            version,
            reason: "the event is not a JSON object".into(),
        })?;
        if matches!(
            obj.get("type").and_then(Value::as_str),
            Some("Planned" | "Imported")
        ) {
            let detail = obj
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let reason = reason_from_v1_detail(detail)
                .map(|r| serde_json::to_value(r).expect("reasons serialize"))
                .unwrap_or(Value::Null);
            obj.insert("reason".into(), reason);
        }
    }
    Ok(event)
}

/// The reason a version-1 entry's detail states, in the words the planner used.
fn reason_from_v1_detail(detail: &str) -> Option<Reason> {
    let rules: [(&str, Reason); 10] = [
        ("account disabled in Entra ID", Reason::AccountDisabled),
        ("a local user with login", Reason::LocalUser),
        (
            "an Active Directory (Windows) user with login",
            Reason::WindowsUser,
        ),
        (
            "belongs to an object imported from another organization",
            Reason::OtherTenant,
        ),
        ("is linked to another Entra object", Reason::LinkedElsewhere),
        (
            "exists on the server and is not linked to Entra ID",
            Reason::NameTaken,
        ),
        ("not found in the tenant snapshot", Reason::NotInSnapshot),
        ("no longer on the server", Reason::NotOnServer),
        ("; already disabled", Reason::AlreadyDisabled),
        ("not applied: ", Reason::WriteFailed),
    ];
    rules
        .iter()
        .find(|(words, _)| detail.contains(words))
        .map(|(_, r)| *r)
}

/// What `verify` needs of a record, decoded without the payload: fast, and independent of
/// the payload's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub seq: Seq,
    pub run: RunId,
    pub version: u16,
    /// The stored name of the event's type (`kind` says which event it is, if known).
    pub event_type: String,
}

impl RecordHeader {
    pub fn kind(&self) -> Option<EventKind> {
        EventKind::from_name(&self.event_type)
    }
}

#[derive(Deserialize)]
struct HeaderIn {
    seq: Seq,
    run: RunId,
    version: u16,
    event: TypeOnly,
}

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    event_type: String,
}

pub fn decode_header(bytes: &[u8]) -> Result<RecordHeader, DecodeError> {
    // Records roster wrote start the same way; reading that prefix spares parsing the payload.
    // Anything else (or anything odd) goes through the full parser.
    if let Some(h) = fast::header_prefix(bytes) {
        return Ok(h);
    }
    let h: HeaderIn =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    Ok(RecordHeader {
        seq: h.seq,
        run: h.run,
        version: h.version,
        event_type: h.event.event_type,
    })
}
