//! A real SCIM service (`scim2-server`, started by `testkit::scim`) and roster stores that
//! import into it, for the tests of `--scim`. The service is read over HTTP with roster's own
//! client; nothing stands in for it.

use std::collections::HashMap;

use adapters::auth::Secret;
use adapters::scim::{
    add_members, group_from_resource, group_resource, user_from_resource, user_resource,
    ScimClient, ScimDirectory,
};
use engine::model::ServerState;
use engine::SmolStr;
use serde_json::{json, Value};
use testkit::scim::TOKEN;

use super::Roster;

pub struct Service {
    pub scim: testkit::scim::Scim,
    pub client: ScimClient,
    rt: tokio::runtime::Runtime,
}

impl Service {
    pub fn start() -> Service {
        Service::on(testkit::scim::Scim::start())
    }

    /// A stock django-scim2 service (see [`testkit::scim::Scim::start_django`]).
    pub fn django() -> Service {
        Service::on(testkit::scim::Scim::start_django())
    }

    pub fn on(scim: testkit::scim::Scim) -> Service {
        let client = ScimClient::new(&scim.url.parse().unwrap(), Secret::new(TOKEN));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Service { scim, client, rt }
    }

    /// Writes `state` into the service as roster maps it: users, then groups naming their
    /// members by SCIM id.
    pub fn seed(&self, state: &ServerState) {
        self.rt.block_on(async {
            let mut ids = HashMap::new();
            for u in state.users() {
                let written = self
                    .client
                    .create("Users", &user_resource(u), ("userName", &u.login))
                    .await
                    .unwrap();
                ids.insert(engine::ids::fold_case(&u.login), written.id);
            }
            for g in state.groups() {
                let members: Vec<String> = g
                    .members
                    .iter()
                    .map(|m| ids[&engine::ids::fold_case(m)].clone())
                    .collect();
                // As Entra does, which every service takes: members added once it is made.
                let made = self
                    .client
                    .create(
                        "Groups",
                        &group_resource(g, &[] as &[&str]),
                        ("displayName", &g.name),
                    )
                    .await
                    .unwrap();
                if !members.is_empty() {
                    self.client
                        .patch("Groups", &made.id, None, vec![add_members(&members)])
                        .await
                        .unwrap();
                }
            }
        });
    }

    /// The service's directory, read over HTTP.
    pub fn directory(&self) -> ScimDirectory {
        self.rt.block_on(self.client.load()).unwrap()
    }

    /// One resource as the service holds it.
    pub fn resource(&self, kind: &str, id: &str) -> Option<Value> {
        self.rt
            .block_on(self.client.get_resource(kind, id))
            .unwrap()
    }

    /// `--scim URL`, for a command line.
    pub fn flag(&self) -> [&str; 2] {
        ["--scim", &self.scim.url]
    }

    /// Runs roster against this service (its token in `ROSTER_SCIM_TOKEN`).
    pub fn run(&self, roster: &Roster, args: &[&str]) -> (i32, String, String) {
        let args: Vec<&str> = self
            .flag()
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        roster.run_with(&args, &[("ROSTER_SCIM_TOKEN", TOKEN)])
    }
}

/// `state` as a SCIM service holds it: users through the mapping and back (an Active
/// Directory account becomes a local one: SCIM has no such kind), groups without a
/// description or type.
pub fn as_scim_holds(state: &ServerState) -> ServerState {
    let with_id = |mut v: Value, id: &str| {
        v["id"] = json!(id);
        v
    };
    let users: Vec<_> = state
        .users()
        .map(|u| {
            user_from_resource(&with_id(user_resource(u), &u.login))
                .unwrap()
                .user
        })
        .collect();
    let logins: HashMap<String, SmolStr> = state
        .users()
        .map(|u| (u.login.to_string(), u.login.clone()))
        .collect();
    let groups: Vec<_> = state
        .groups()
        .map(|g| {
            let resource = with_id(group_resource(g, &g.members), &g.name);
            group_from_resource(&resource, &logins).unwrap().group
        })
        .collect();
    ServerState::from_parts(users, groups).unwrap()
}
