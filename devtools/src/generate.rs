//! `roster fixture generate`: deterministic synthetic tenants of any size, with the shape of
//! a real one — members and guests, disabled accounts, departments (some missing), every group
//! type, nested and dynamic groups, soft-deleted users and M365 groups — and, optionally, a
//! matching server state where part of the tenant is already imported (some of it drifted,
//! some of it deleted since), so that a run meets adds, updates, deleted objects and conflicts.
//!
//! Output is streamed: object `i`'s id and attributes are a function of (seed, i), so nothing
//! is held in memory and a million-user tenant is written in one pass.

use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::{json, Value};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerateOptions {
    pub users: u64,
    pub groups: u64,
    /// Average direct members per group.
    pub members_per_group: u64,
    pub seed: u64,
    /// Fraction of users (and groups) already imported into the server state.
    pub linked: f64,
}

const TENANT: &str = "7d3c2b1a-0f9e-4d8c-8b7a-6f5e4d3c2b1a";
const DOMAIN: &str = "contoso.example";
const FIRST: [&str; 24] = [
    "Ada", "Björn", "Chloé", "Dmitri", "Elif", "Farah", "Gustav", "Hana", "Ivan", "Jonas", "Kenji",
    "Lena", "Mateo", "Nora", "Oskar", "Priya", "Quentin", "Rosa", "Søren", "Tomás", "Uma",
    "Viktor", "Wen", "Zoë",
];
const LAST: [&str; 24] = [
    "Andersen", "Bianchi", "Costa", "Dubois", "Eriksson", "Fischer", "García", "Horvath",
    "Ivanova", "Jansen", "Kowalski", "Larsen", "Müller", "Novak", "O'Brien", "Petrov", "Quinn",
    "Rossi", "Schmidt", "Tanaka", "Ueda", "Vargas", "Weber", "Zhang",
];
const DEPARTMENTS: [&str; 9] = [
    "Sales",
    "Engineering",
    "Finance",
    "Human Resources",
    "Marketing",
    "Support",
    "Legal",
    "Operations",
    "Research",
];

/// A 64-bit mix of (seed, stream, index): every attribute is reproducible from its index.
fn mix(seed: u64, stream: u64, i: u64) -> u64 {
    let mut z =
        seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn guid(seed: u64, stream: u64, i: u64) -> String {
    let a = mix(seed, stream, i);
    let b = mix(seed, stream ^ 0x5555, i);
    let bytes: Vec<u8> = a.to_be_bytes().into_iter().chain(b.to_be_bytes()).collect();
    let mut u = uuid::Builder::from_random_bytes(bytes.try_into().expect("16 bytes"))
        .into_uuid()
        .to_string();
    u.make_ascii_lowercase();
    u
}

/// Fraction in [0, 1) for (stream, i).
fn unit(seed: u64, stream: u64, i: u64) -> f64 {
    (mix(seed, stream, i) >> 11) as f64 / (1u64 << 53) as f64
}

const S_USER: u64 = 1;
const S_GROUP: u64 = 2;
const S_GUEST: u64 = 3;
const S_DISABLED: u64 = 4;
const S_DEPT: u64 = 5;
const S_DELETED: u64 = 6;
const S_GTYPE: u64 = 7;
const S_MEMBERS: u64 = 8;
const S_NEST: u64 = 9;
const S_LINK: u64 = 10;
const S_DRIFT: u64 = 11;
const S_NAME: u64 = 12;

struct Gen {
    o: GenerateOptions,
}

/// What kind of user `i` is.
struct UserShape {
    guest: bool,
    disabled: bool,
    /// In the recycle bin (1 %).
    deleted: bool,
}

impl Gen {
    fn user_id(&self, i: u64) -> String {
        guid(self.o.seed, S_USER, i)
    }

    fn group_id(&self, g: u64) -> String {
        guid(self.o.seed, S_GROUP, g)
    }

    fn shape(&self, i: u64) -> UserShape {
        let s = self.o.seed;
        UserShape {
            guest: unit(s, S_GUEST, i) < 0.05,
            disabled: unit(s, S_DISABLED, i) < 0.03,
            deleted: unit(s, S_DELETED, i) < 0.01,
        }
    }

    fn names(&self, i: u64) -> (&'static str, &'static str) {
        let m = mix(self.o.seed, S_NAME, i);
        (FIRST[(m % 24) as usize], LAST[((m >> 8) % 24) as usize])
    }

    fn upn(&self, i: u64) -> String {
        let (f, l) = self.names(i);
        let local = format!("{}.{}{}", ascii(f), ascii(l), i);
        if self.shape(i).guest {
            format!("{local}_partner{}.example#EXT#@{DOMAIN}", i % 7)
        } else {
            format!("{local}@{DOMAIN}")
        }
    }

    fn department(&self, i: u64) -> Option<&'static str> {
        let m = mix(self.o.seed, S_DEPT, i);
        (!m.is_multiple_of(10)).then(|| DEPARTMENTS[((m >> 8) % DEPARTMENTS.len() as u64) as usize])
    }

    fn user(&self, i: u64) -> Value {
        let (f, l) = self.names(i);
        let shape = self.shape(i);
        let upn = self.upn(i);
        let job = ["Engineer", "Analyst", "Manager", "Specialist", "Director"][(i % 5) as usize];
        let mail = if shape.guest {
            format!("{}.{}{}@partner{}.example", ascii(f), ascii(l), i, i % 7)
        } else {
            upn.clone()
        };
        json!({
            "id": self.user_id(i),
            "displayName": format!("{f} {l} {i}"),
            "userPrincipalName": upn,
            "mail": mail,
            "givenName": f,
            "surname": l,
            "department": self.department(i),
            "jobTitle": job,
            "userType": if shape.guest { "Guest" } else { "Member" },
            "accountEnabled": !shape.disabled,
        })
    }

    /// 0 M365, 1 security, 2 mail-enabled security, 3 distribution, 4 dynamic security, 5 dynamic M365.
    fn group_kind(&self, g: u64) -> u64 {
        let u = unit(self.o.seed, S_GTYPE, g);
        match u {
            u if u < 0.30 => 0,
            u if u < 0.70 => 1,
            u if u < 0.80 => 2,
            u if u < 0.90 => 3,
            u if u < 0.95 => 4,
            _ => 5,
        }
    }

    fn group_deleted(&self, g: u64) -> bool {
        matches!(self.group_kind(g), 0 | 5) && unit(self.o.seed, S_DELETED ^ 0x77, g) < 0.01
    }

    fn group(&self, g: u64, members: Vec<Value>) -> Value {
        let kind = self.group_kind(g);
        let dept = DEPARTMENTS[(g % DEPARTMENTS.len() as u64) as usize];
        let (types, mail_enabled, security_enabled): (Vec<&str>, bool, bool) = match kind {
            0 => (vec!["Unified"], true, false),
            1 => (vec![], false, true),
            2 => (vec![], true, true),
            3 => (vec![], true, false),
            4 => (vec!["DynamicMembership"], false, true),
            _ => (vec!["Unified", "DynamicMembership"], true, false),
        };
        let rule = matches!(kind, 4 | 5).then(|| format!("(user.department -eq \"{dept}\")"));
        json!({
            "id": self.group_id(g),
            "displayName": format!("{dept} team {g}"),
            "description": format!("Group {g} of the {dept} department"),
            "mail": mail_enabled.then(|| format!("group{g}@{DOMAIN}")),
            "groupTypes": types,
            "mailEnabled": mail_enabled,
            "securityEnabled": security_enabled,
            "membershipRule": rule,
            "members": members,
        })
    }

    /// Direct members of group `g`: about `members_per_group` users, and for one group in
    /// ten one or two earlier groups (nesting without cycles).
    fn members(&self, g: u64) -> Vec<Value> {
        let (n_users, k) = (self.o.users.max(1), self.o.members_per_group);
        let count = if k == 0 {
            0
        } else {
            mix(self.o.seed, S_MEMBERS, g) % (2 * k + 1)
        };
        let mut out: Vec<Value> = (0..count)
            .map(|j| mix(self.o.seed, S_MEMBERS ^ (j + 1), g) % n_users)
            .filter(|u| !self.shape(*u).deleted)
            .map(|u| json!({"@odata.type": "#microsoft.graph.user", "id": self.user_id(u)}))
            .collect();
        out.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        out.dedup();
        if g > 0 && unit(self.o.seed, S_NEST, g) < 0.10 {
            for j in 0..(1 + g % 2) {
                let parent = mix(self.o.seed, S_NEST ^ (j + 7), g) % g;
                if !self.group_deleted(parent) {
                    out.push(json!({"@odata.type": "#microsoft.graph.group", "id": self.group_id(parent)}));
                }
            }
        }
        out
    }
}

fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ö' | 'ø' => 'o',
            'é' | 'ë' => 'e',
            'á' => 'a',
            'ü' => 'u',
            c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
            _ => 'x',
        })
        .collect()
}

/// Writes `items` as a JSON array member of an object being streamed.
fn write_array<W: Write>(
    w: &mut W,
    key: &str,
    items: impl Iterator<Item = Value>,
    first_key: bool,
) -> std::io::Result<()> {
    if !first_key {
        w.write_all(b",\n")?;
    }
    write!(w, "\"{key}\": [")?;
    for (n, item) in items.enumerate() {
        w.write_all(if n == 0 { b"\n  " } else { b",\n  " })?;
        serde_json::to_writer(&mut *w, &item)?;
    }
    w.write_all(b"\n]")
}

/// Writes the tenant fixture.
pub fn write_tenant(path: &Path, o: GenerateOptions) -> std::io::Result<()> {
    let g = Gen { o };
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(w, "{{\"tenantId\": \"{TENANT}\",")?;
    write_array(
        &mut w,
        "users",
        (0..o.users)
            .filter(|i| !g.shape(*i).deleted)
            .map(|i| g.user(i)),
        true,
    )?;
    write_array(
        &mut w,
        "groups",
        (0..o.groups)
            .filter(|x| !g.group_deleted(*x))
            .map(|x| g.group(x, g.members(x))),
        false,
    )?;
    write_array(
        &mut w,
        "deletedUsers",
        (0..o.users).filter(|i| g.shape(*i).deleted).map(|i| {
            json!({"id": g.user_id(i), "displayName": format!("{} {} {i}", g.names(i).0, g.names(i).1), "deletedDateTime": "2026-11-01T08:00:00Z"})
        }),
        false,
    )?;
    write_array(
        &mut w,
        "deletedGroups",
        (0..o.groups).filter(|x| g.group_deleted(*x)).map(|x| json!({"id": g.group_id(x), "displayName": format!("team {x}"), "deletedDateTime": "2026-11-02T08:00:00Z"})),
        false,
    )?;
    w.write_all(b"\n}\n")?;
    w.flush()
}

/// Writes a server state in which `linked` of the tenant is already imported: 5 % of those
/// drifted (department, display name), linked users now in the recycle bin or gone entirely,
/// and local users whose logins collide with Entra users (0.5 %).
pub fn write_server(path: &Path, o: GenerateOptions) -> std::io::Result<()> {
    let g = Gen { o };
    let linked = |stream: u64, i: u64| unit(o.seed, S_LINK ^ stream, i) < o.linked;
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all(b"{")?;
    let users = (0..o.users).filter_map(|i| {
        let shape = g.shape(i);
        if unit(o.seed, S_LINK ^ 99, i) < 0.005 && !linked(0, i) && !shape.deleted {
            return Some(json!({"login": g.upn(i), "displayName": "Local account", "authType": "local", "enabled": true}));
        }
        if !linked(0, i) || (shape.disabled && !shape.deleted) {
            return None;
        }
        let u = g.user(i);
        let drift = unit(o.seed, S_DRIFT, i) < 0.05;
        let department = if drift { Value::from("Former department") } else { u["department"].clone() };
        let attrs = json!({
            "id": u["id"], "userPrincipalName": u["userPrincipalName"], "displayName": u["displayName"], "givenName": u["givenName"],
            "surname": u["surname"], "mail": u["mail"], "department": department, "jobTitle": u["jobTitle"], "userType": u["userType"],
        });
        Some(json!({
            "login": u["userPrincipalName"], "displayName": u["displayName"], "email": u["mail"], "department": department,
            "authType": "entra", "entraId": u["id"], "tenantId": TENANT, "enabled": true, "entra": attrs,
        }))
    });
    // Linked users deleted from Entra ID entirely (absent, not in the recycle bin).
    let gone = (0..(o.users / 500).max(1)).map(|k| {
        let id = guid(o.seed, S_USER ^ 0xdead, k);
        json!({"login": format!("gone{k}@{DOMAIN}"), "displayName": format!("Gone {k}"), "authType": "entra", "entraId": id, "tenantId": TENANT, "enabled": true})
    });
    write_array(&mut w, "users", users.chain(gone), true)?;
    let groups = (0..o.groups).filter(|x| linked(1, *x)).map(|x| {
        json!({"name": format!("{} team {x}", DEPARTMENTS[(x % DEPARTMENTS.len() as u64) as usize]), "description": "imported earlier",
               "type": "Security Group", "entraId": g.group_id(x), "tenantId": TENANT, "enabled": true, "members": []})
    });
    write_array(&mut w, "groups", groups, false)?;
    w.write_all(b"\n}\n")?;
    w.flush()
}
