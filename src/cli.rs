//! Command-line arguments (docs/cli.md).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "roster",
    version,
    about = "Import users and groups from Microsoft Entra ID into an Enterprise Server, keeping every import as a verifiable event log",
    after_help = "Exit codes: 0 success; 1 runtime error; 2 bad usage or input (nothing changed); \
                  3 finished with failed or conflicting entries; 4 refused by a safety limit or a stale plan."
)]
pub struct Cli {
    /// Store (event log, embedded server, org settings): a directory, or a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE) shared by a team [default: $ROSTER_STORE, else the platform data dir]
    #[arg(long, global = true, value_name = "DIR|URL")]
    pub store: Option<PathBuf>,

    /// Machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,

    /// Target a JSON server state file instead of the embedded server in the store
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "scim")]
    pub server_file: Option<PathBuf>,

    /// Target a SCIM 2.0 service (its base URL, the one /Users hangs from) instead of the embedded server
    #[arg(long, global = true, value_name = "URL")]
    pub scim: Option<String>,

    /// The SCIM service's bearer token, in a file only you may read [default: $ROSTER_SCIM_TOKEN]
    #[arg(long, global = true, value_name = "FILE")]
    pub scim_token_file: Option<PathBuf>,

    /// Fail at once when another roster process holds the store, instead of waiting for it
    #[arg(long, global = true)]
    pub no_wait: bool,

    /// Tables keep every column (ids too) on a narrow terminal
    #[arg(long, global = true)]
    pub wide: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage organizations (tenants to import from)
    #[command(subcommand)]
    Org(OrgCommand),
    /// Search the tenant's users and groups (the wizard's search page)
    Search(SearchArgs),
    /// Dry run: show exactly what an import would change; nothing changes
    Plan(RunArgs),
    /// Plan and apply: import the selection and process deleted objects
    Import(RunArgs),
    /// List every run
    Runs(RunsArgs),
    /// The per-entry result report of a run
    Report(ReportArgs),
    /// The deleted objects a run found, with the action chosen for each
    Deleted(ReadRunRef),
    /// Apply a reviewed dry run: import exactly its plan, or refuse (exit 4) if it went stale;
    /// with --approve, a run a safety limit refused
    Apply(ApplyArgs),
    /// Repeat the org's last import (its selection and options), once or every DURATION
    Sync(SyncArgs),
    /// Known conflicts and failures: list them, acknowledge one (later runs that meet it
    /// unchanged exit 0), or withdraw an acknowledgement
    #[command(subcommand)]
    Conflict(ConflictCommand),
    /// The import wizard in the terminal: pick an org, tick users and groups, choose what
    /// happens to deleted objects, import, read the results
    Wizard(WizardArgs),
    /// Re-derive a run from its recorded inputs; exit 0 iff identical to what it recorded
    Replay(ReadRunRef),
    /// Check the whole log: hash chain, sequence, runs; name the first bad event
    Verify(VerifyArgs),
    /// A run's events (or the whole log's) as JSON Lines
    Events(EventsArgs),
    /// What changed between two imports of the same org
    Diff(DiffArgs),
    /// Write the whole store (log, orgs, embedded server) to one checkable JSON Lines file
    Backup(BackupArgs),
    /// Restore a backup into a new, empty store (--store DIR), checking every event's hash
    Restore(RestoreArgs),
    /// Inspect or replace the server's directory
    #[command(subcommand)]
    Server(ServerCommand),
    /// Import the bundled demo tenant into a fresh demo store and print the report
    Demo,
    /// Serve a tenant fixture as a fake Microsoft Graph on loopback (prints its base URL first)
    FakeGraph(Box<FakeGraphArgs>),
    /// Save an org's tenant as a fixture that `org add --fixture` accepts (nothing secret in it)
    Record(RecordArgs),
    /// Tenant fixtures for tests and benchmarks
    #[command(subcommand)]
    Fixture(FixtureCommand),
    /// Print a shell completion script (e.g. `roster completions bash > ~/.local/share/bash-completion/completions/roster`)
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print roster's man page (roff), or write every page — roster(1) and one per command — into a directory (`roster manpage --dir ~/.local/share/man/man1`)
    Manpage {
        /// Write roster.1 and a page per command (roster-org.1, roster-org-add.1, …) into
        /// this directory, made if missing, instead of printing roster.1
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Which store and which server this shell's commands use, and what the store holds
    Store,
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Add an organization
    Add(OrgAddArgs),
    /// List organizations
    List,
    /// Point a fixture org at another fixture file of its tenant (its runs stay its own)
    Set {
        /// Org name
        name: String,
        /// The tenant fixture (Graph JSON) to read from now on
        #[arg(long, value_name = "TENANT.json")]
        fixture: PathBuf,
    },
    /// Remove an organization (its runs stay in the log; its sign-in is forgotten)
    Remove {
        /// Org name
        name: String,
    },
    /// Sign in to a live org again (device code, or check the client secret)
    Login {
        /// Org name
        name: String,
    },
    /// Forget a live org's tokens
    Logout {
        /// Org name
        name: String,
    },
    /// Leave users or groups out of the org's selection for good: never imported (not as a
    /// member of a selected group either), never handled as deleted. Without OBJECT, list
    /// what is left out
    LeaveOut {
        /// Org name
        name: String,
        /// Object id, UPN or display name (as `roster search` shows them)
        objects: Vec<String>,
    },
    /// Bring objects left out back into the org's selection
    TakeBack {
        /// Org name
        name: String,
        /// Object id or name, as `roster org leave-out NAME` lists them
        #[arg(required = true)]
        objects: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConflictCommand {
    /// The conflicts and failures of each org's last run, and how each stands: new, reported
    /// before, or acknowledged
    List {
        /// Only this org
        org: Option<String>,
    },
    /// Acknowledge a conflict or failure of the org's last run, as reviewed: recorded in the
    /// log; a later run that meets it unchanged (same outcome and detail) does not exit 3
    Ack {
        /// Org name
        org: String,
        /// The entry: object id, UPN or display name
        object: String,
        /// Why (one line, up to 500 characters), recorded with it
        #[arg(long)]
        note: Option<String>,
    },
    /// Withdraw an acknowledgement: the problem counts as new again
    Unack {
        /// Org name
        org: String,
        /// The entry: object id or name
        object: String,
    },
}

#[derive(Debug, Args)]
pub struct OrgAddArgs {
    /// Org name: letters, digits, '.', '-', '_'
    pub name: String,
    /// A tenant fixture (Graph JSON) to read the tenant from
    #[arg(
        long,
        value_name = "TENANT.json",
        required_unless_present = "tenant",
        conflicts_with = "tenant"
    )]
    pub fixture: Option<PathBuf>,
    /// A live tenant: its Directory (tenant) ID, a GUID
    #[arg(long, value_name = "TENANT_ID")]
    pub tenant: Option<String>,
    /// The app registration's Application (client) ID [default for device code: Microsoft Graph Command Line Tools]
    #[arg(long, value_name = "ID", requires = "tenant")]
    pub client_id: Option<String>,
    /// How to sign in
    #[arg(long, value_enum, default_value_t = AuthArg::DeviceCode, requires = "tenant")]
    pub auth: AuthArg,
    /// Client secret in a file readable only by you (else $ROSTER_CLIENT_SECRET)
    #[arg(long, value_name = "FILE", requires = "tenant")]
    pub client_secret_file: Option<PathBuf>,
    /// --auth certificate: a PEM file, readable only by you, holding the private key and the certificate uploaded to the app
    #[arg(long, value_name = "FILE", requires = "tenant")]
    pub certificate: Option<PathBuf>,
    /// --auth federated: the file the platform writes its OIDC token to (re-read at every sign-in; e.g. $AZURE_FEDERATED_TOKEN_FILE)
    #[arg(long, value_name = "FILE", requires = "tenant")]
    pub assertion_file: Option<PathBuf>,
    /// Which Microsoft cloud
    #[arg(long, value_enum, default_value_t = CloudArg::Global, requires = "tenant")]
    pub cloud: CloudArg,
    /// Graph root URL, overriding the cloud's (e.g. `roster fake-graph`'s)
    #[arg(long, value_name = "URL", requires = "tenant")]
    pub graph_url: Option<String>,
    /// Login root URL, overriding the cloud's
    #[arg(long, value_name = "URL", requires = "tenant")]
    pub login_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    /// Delegated: an administrator signs in in a browser (MFA there)
    DeviceCode,
    /// App-only, unattended: the app's client secret
    ClientSecret,
    /// App-only, unattended: an assertion signed with the app's certificate (no shared secret)
    Certificate,
    /// App-only, unattended: a token from the platform roster runs on (workload identity federation)
    Federated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CloudArg {
    Global,
    Usgov,
    China,
}

#[derive(Debug, Args)]
pub struct FakeGraphArgs {
    /// The tenant fixture to serve
    #[arg(long, value_name = "TENANT.json")]
    pub tenant: PathBuf,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: std::net::SocketAddr,
    /// Largest page served, whatever $top asks (Graph serves up to 999 directory objects)
    #[arg(long, default_value_t = 999)]
    pub page_size: usize,
    /// Answer every Nth Graph request 429 with Retry-After (never the same request twice in a row)
    #[arg(
        long,
        value_name = "N",
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub throttle_every: Option<u64>,
    /// Answer every Nth Graph request 503 (never the same request twice in a row)
    #[arg(
        long,
        value_name = "N",
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub fail_every: Option<u64>,
    /// Delay every response by this many milliseconds
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0,
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub latency_ms: u64,
    /// Graph's resource-unit budget per 10 s (8000 for tenants over 500 users)
    #[arg(
        long,
        value_name = "N",
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub ru_per_10s: Option<u64>,
    /// Retry-After seconds sent with --throttle-every (decimals allowed)
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 1.0,
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub retry_after: f64,
    /// Send 429s without Retry-After
    #[arg(
        long,
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub no_retry_after: bool,
    /// The status --fail-every answers (500, 502, 503, 504)
    #[arg(
        long,
        value_name = "STATUS",
        default_value_t = 503,
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub fail_status: u16,
    /// Device code: polls answered authorization_pending before approval
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        help_heading = "Sign-in endpoints"
    )]
    pub approve_after: u32,
    /// Device code: what the admin does in the browser
    #[arg(long, value_enum, default_value_t = DeviceArg::Approve, help_heading = "Sign-in endpoints")]
    pub device: DeviceArg,
    /// Device code: the administrator's user principal name, in the ID token
    #[arg(
        long,
        value_name = "UPN",
        default_value = "admin@fake-graph.example",
        help_heading = "Sign-in endpoints"
    )]
    pub signed_in: String,
    /// Device code polling interval in seconds
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 1,
        help_heading = "Sign-in endpoints"
    )]
    pub poll_interval: u64,
    /// Lifetime of issued access tokens, seconds
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3600,
        help_heading = "Sign-in endpoints"
    )]
    pub token_ttl_s: u64,
    /// The client secret to accept (any, if not given)
    #[arg(long, value_name = "SECRET", help_heading = "Sign-in endpoints")]
    pub client_secret: Option<String>,
    /// A certificate (PEM) uploaded to the app: client assertions signed by its key are taken, every claim checked (repeatable)
    #[arg(long, value_name = "FILE", help_heading = "Sign-in endpoints")]
    pub trust_certificate: Vec<PathBuf>,
    /// A federated credential's issuer: its tokens (audience api://AzureADTokenExchange) are taken as client assertions
    #[arg(
        long,
        value_name = "ISSUER",
        requires = "federated_certificate",
        help_heading = "Sign-in endpoints"
    )]
    pub trust_federated: Option<String>,
    /// The certificate (PEM) whose key the --trust-federated issuer signs its tokens with
    #[arg(
        long,
        value_name = "FILE",
        requires = "trust_federated",
        help_heading = "Sign-in endpoints"
    )]
    pub federated_certificate: Option<PathBuf>,
    /// The subject the federated credential names (any, if not given)
    #[arg(
        long,
        value_name = "SUBJECT",
        requires = "trust_federated",
        help_heading = "Sign-in endpoints"
    )]
    pub federated_subject: Option<String>,
    /// Answer device-code sign-in with AADSTS7000218 (public client flows disabled)
    #[arg(long, help_heading = "Sign-in endpoints")]
    pub public_client_disabled: bool,
    /// Send this JSON value as `expires_in` in sign-in answers (a hostile service: a huge number, a string)
    #[arg(long, value_name = "JSON", help_heading = "Sign-in endpoints")]
    pub expires_in: Option<String>,
    /// Answer sign-in with AADSTS65001 (no consent)
    #[arg(long, help_heading = "Sign-in endpoints")]
    pub deny_consent: bool,
    /// Withhold this permission from the app (repeatable; e.g. Member.Read.Hidden: groups with hidden membership then list no members, as Graph does)
    #[arg(long, value_name = "PERMISSION", help_heading = "Sign-in endpoints")]
    pub deny_permission: Vec<String>,
    /// Answer Graph paths starting with this 403 Authorization_RequestDenied (repeatable; `groups` or `/v1.0/groups`)
    #[arg(
        long,
        value_name = "PATH",
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub forbid: Vec<String>,
    /// Answer Graph paths starting with this 404 Request_ResourceNotFound, as for an object deleted while it is read (repeatable)
    #[arg(
        long,
        value_name = "PATH",
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub not_found: Vec<String>,
    /// Answer every Graph request after the Nth with 500
    #[arg(
        long,
        value_name = "N",
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub fail_after: Option<u64>,
    /// Drop the connection mid-body on every Nth Graph request
    #[arg(
        long,
        value_name = "N",
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub drop_every: Option<u64>,
    /// Cut the JSON short on every Nth Graph request
    #[arg(
        long,
        value_name = "N",
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub truncate_every: Option<u64>,
    /// Pad every Nth response past 64 MiB, the most roster reads of one response
    #[arg(
        long,
        value_name = "N",
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub oversize_every: Option<u64>,
    /// Leave `value` out of every Nth page
    #[arg(
        long,
        value_name = "N",
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub missing_value_every: Option<u64>,
    /// Delay every Nth Graph request by --slow-ms
    #[arg(
        long,
        value_name = "N",
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub slow_every: Option<u64>,
    /// The delay --slow-every adds, in milliseconds
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0,
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub slow_ms: u64,
    /// Every nextLink points back at the first page
    #[arg(
        long,
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub loop_next_link: bool,
    /// After N Graph requests, every access token issued so far stops working
    #[arg(
        long,
        value_name = "N",
        help_heading = "Injected faults and limits (a fault by count never hits the same request twice in a row)"
    )]
    pub expire_tokens_after: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    Approve,
    Decline,
    Expire,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Org name
    pub org: String,
    /// Where to write the fixture
    #[arg(long, value_name = "TENANT.json")]
    pub out: PathBuf,
    /// Replace names, UPNs and mails with consistent pseudonyms
    #[arg(long)]
    pub anonymize: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum TypeArg {
    Users,
    Groups,
    #[default]
    All,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Org name
    pub org: String,
    /// Search term (case-insensitive; name, UPN, mail, department, description); empty shows everything
    pub term: Option<String>,
    /// Which rows to show
    #[arg(long = "type", value_enum, default_value_t)]
    pub kind: TypeArg,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Org name
    pub org: String,

    /// Select a user or group by id, UPN or name (repeatable)
    #[arg(long, value_name = "ID|UPN|NAME")]
    pub select: Vec<String>,
    /// Select every row (of the search results, with --search)
    #[arg(long)]
    pub select_all: bool,
    /// Only consider rows matching this search term
    #[arg(long, value_name = "TERM")]
    pub search: Option<String>,
    /// Invert the selection among the (searched) rows
    #[arg(long)]
    pub invert: bool,

    /// Look for objects deleted in Entra ID that still exist on the server
    #[arg(long)]
    pub check_deleted: bool,
    /// Action for every deleted object: ignore, disable, or delete [default: the config file's, else ignore]
    #[arg(long, value_name = "ACTION", value_parser = ["ignore", "disable", "delete"])]
    pub on_deleted: Option<String>,
    /// Action for one deleted object, by id, login or name (repeatable)
    #[arg(long, value_name = "ID=ACTION")]
    pub action: Vec<String>,
    /// Refuse the run if it would disable or delete more objects than this [default: the config file's, else 50]
    #[arg(long, value_name = "N")]
    pub max_deletions: Option<u32>,
    /// Accept a tenant that returns no users although server users are linked to it
    #[arg(long)]
    pub allow_empty_source: bool,
    /// Record everything (a full run), not only what differs from the org's last run
    #[arg(long)]
    pub full: bool,
    /// List every entry, not only those an incremental run recorded
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only runs of this org
    #[arg(long)]
    pub org: Option<String>,
    /// Only runs started on or after this date (YYYY-MM-DD, UTC) or time (RFC 3339)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only runs started before the end of this date (YYYY-MM-DD, UTC) or before this time (RFC 3339)
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only the newest N runs (of those the other filters keep)
    #[arg(long, value_name = "N")]
    pub last: Option<usize>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A chain head noted earlier: verify also proves nothing up to it changed
    #[arg(long, value_name = "HASH")]
    pub head: Option<String>,
    /// Also fold each org's runs from the log again and compare them with its mirror (takes
    /// as long as a run without its mirror)
    #[arg(long)]
    pub mirrors: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Run id, a unique prefix of it, `last`, or `last~N` (N runs before the last)
    #[arg(conflicts_with = "since")]
    pub run: Option<String>,
    /// The whole log from this sequence number on
    #[arg(long, value_name = "SEQ")]
    pub since: Option<u64>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup file to write (replaced atomically if it exists)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file `roster backup` wrote
    pub file: PathBuf,
    /// The chain head `roster backup` printed: the backup is restored only if its log ends there
    #[arg(long, value_name = "HASH")]
    pub head: Option<String>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier run
    pub a: String,
    /// The later run
    pub b: String,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Run id, a unique prefix of it, `last`, or `last~N` (N runs before the last)
    pub run: String,
    /// RUN was refused by a safety limit (--max-deletions, an empty or shrunk listing):
    /// import its plan as reviewed, that limit lifted as far as that plan needs; recorded
    /// with who approved it. Refused as stale (exit 4) if the import would now differ
    #[arg(long)]
    pub approve: bool,
}

/// A run to read, the last one unless named (reading it changes nothing).
#[derive(Debug, Args)]
pub struct ReadRunRef {
    /// Run id, a unique prefix of it, `last`, or `last~N` (N runs before the last)
    #[arg(default_value = "last")]
    pub run: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    /// One self-contained HTML page, for auditors (`> report.html`)
    Html,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Organization whose last import to repeat
    pub org: String,
    /// Record everything (a full run), not only what differs from the org's last run
    #[arg(long)]
    pub full: bool,
    /// Repeat every DURATION (e.g. 40m, 1h, 90s) until SIGINT or SIGTERM; one summary line per cycle
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,
    /// Refuse a cycle that would disable or delete more objects than this [default: the repeated import's]
    #[arg(long, value_name = "N")]
    pub max_deletions: Option<u32>,
    /// Say what the sync repeats (selection, deleted-object options, guards, server) and where
    /// that comes from, and run nothing
    #[arg(long, conflicts_with_all = ["every", "full", "set_from"])]
    pub show: bool,
    /// Make import RUN (`last`: the org's last import) what every later sync repeats, whatever
    /// one-off imports come after; `--max-deletions` given here is kept with it. Runs nothing
    #[arg(long, value_name = "RUN", conflicts_with_all = ["every", "full"])]
    pub set_from: Option<String>,
}

#[derive(Debug, Args)]
pub struct WizardArgs {
    /// Organization to start with (else the first; the wizard lists them all)
    pub org: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run id, a unique prefix of it, `last`, or `last~N` (N runs before the last)
    #[arg(default_value = "last")]
    pub run: String,
    /// Output format [default: table, or json with --json]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// List every entry of an incremental run, not only those it recorded (the HTML page
    /// always lists every entry)
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Print the server's directory as a server state file
    Dump,
    /// Replace the server's directory with a server state file
    Load {
        /// Server state JSON file
        file: PathBuf,
    },
    /// Enable a server user now (undo a disable without waiting for Entra), recorded in the log
    Enable {
        /// Login
        login: String,
    },
    /// Disable a server user now, recorded in the log
    Disable {
        /// Login
        login: String,
    },
    /// Show one server user's properties
    Show {
        /// Login
        login: String,
        /// Also list every run that changed this user, with the changes
        #[arg(long)]
        history: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum FixtureCommand {
    /// Generate a deterministic synthetic tenant (and optionally a matching server state)
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Users in the tenant (1 % of them soft-deleted)
    #[arg(long)]
    pub users: u64,
    /// Groups in the tenant
    #[arg(long)]
    pub groups: u64,
    /// Average direct members per group
    #[arg(long, default_value_t = 20)]
    pub members_per_group: u64,
    /// Seed: the same seed gives the same tenant
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the tenant fixture
    #[arg(long, value_name = "TENANT.json")]
    pub out: PathBuf,
    /// Also write a server state where part of the tenant is already imported
    #[arg(long, value_name = "SERVER.json")]
    pub server_out: Option<PathBuf>,
    /// Fraction of users and groups already imported into the server state
    #[arg(long, default_value_t = 0.5, value_name = "FRACTION")]
    pub linked: f64,
}
