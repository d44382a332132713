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
mod payloads;
mod record;
mod upcasting;
use crate::model::{
    Completeness, DeletedItem, EntraGroup, EntraUser, Kind, ServerGroup, ServerOp, ServerUser,
};
#[doc(hidden)]
pub use fast::decode_current_by_type;
pub use payloads::*;
pub use record::*;
pub use upcasting::*;

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
