//! The HTTP endpoint (`--http-addr`, off by default), for load balancers and operators:
//! `GET /health`, `GET /status`, and Patroni-style checks `GET /master/{group}/{host:port}`
//! and `GET /replica/{group}/{host:port}` that answer 200 only when that node currently is
//! the master / a healthy replica in the published topology (503 otherwise). Every manager
//! answers, standby included, from the topology and its own probes; nothing is decided here.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use redis_failover_client::{NodeAddr, Topology};
use tokio::sync::watch;
use zookeeper_client as zk;

pub use crate::snapshot::GroupSnapshot;

#[derive(Clone)]
pub struct HttpState {
    pub manager_id: String,
    pub groups: Vec<watch::Receiver<GroupSnapshot>>,
    pub session: watch::Receiver<Option<zk::Client>>,
}

impl HttpState {
    /// The group's snapshot, or the message for a 404.
    fn group(&self, name: &str) -> Result<GroupSnapshot, String> {
        self.groups
            .iter()
            .map(|g| g.borrow().clone())
            .find(|g| g.name == name)
            .ok_or_else(|| {
                let known: Vec<String> = self
                    .groups
                    .iter()
                    .map(|g| g.borrow().name.clone())
                    .collect();
                format!("unknown group {name:?}; known: {}", known.join(", "))
            })
    }

    fn zk_state(&self) -> String {
        match self.session.borrow().as_ref() {
            Some(c) => c.state().to_string(),
            None => "no session".to_string(),
        }
    }
}

fn error(code: StatusCode, message: String) -> Response {
    (code, Json(serde_json::json!({ "error": message }))).into_response()
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/master/{group}/{node}", get(master))
        .route("/replica/{group}/{node}", get(replica))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint; try /health, /status, /master/{group}/{host:port}, \
                 /replica/{group}/{host:port}"
                    .to_string(),
            )
        })
        .with_state(state)
}

async fn health(State(s): State<HttpState>) -> Response {
    let groups: Vec<_> = s
        .groups
        .iter()
        .map(|g| {
            let g = g.borrow();
            serde_json::json!({ "name": g.name, "leader": g.leader })
        })
        .collect();
    Json(serde_json::json!({
        "status": "up",
        "manager": s.manager_id,
        "zookeeper": s.zk_state(),
        "groups": groups,
    }))
    .into_response()
}

async fn status(State(s): State<HttpState>) -> Response {
    let groups: BTreeMap<String, GroupSnapshot> = s
        .groups
        .iter()
        .map(|g| {
            let g = g.borrow().clone();
            (g.name.clone(), g)
        })
        .collect();
    Json(serde_json::json!({
        "manager": s.manager_id,
        "zookeeper": s.zk_state(),
        "groups": groups,
    }))
    .into_response()
}

/// 200 when `node` is the group's master, 503 when it is not, 400/404 for bad requests.
async fn master(
    State(s): State<HttpState>,
    Path((group, node)): Path<(String, String)>,
) -> Response {
    check(
        &s,
        &group,
        &node,
        |t, n| t.master.as_ref() == Some(n),
        "master",
    )
}

/// 200 when `node` is a healthy replica of the group's master, 503 otherwise.
async fn replica(
    State(s): State<HttpState>,
    Path((group, node)): Path<(String, String)>,
) -> Response {
    check(&s, &group, &node, |t, n| t.slaves.contains(n), "replica")
}

fn check(
    s: &HttpState,
    group: &str,
    node: &str,
    is: impl Fn(&Topology, &NodeAddr) -> bool,
    what: &str,
) -> Response {
    let g = match s.group(group) {
        Ok(g) => g,
        Err(msg) => return error(StatusCode::NOT_FOUND, msg),
    };
    let addr: NodeAddr = match node.parse() {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match &g.topology {
        Some(t) if is(t, &addr) => (
            StatusCode::OK,
            Json(serde_json::json!({ "node": addr, "role": what, "epoch": t.epoch })),
        )
            .into_response(),
        Some(t) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{addr} is not the {what} of {group} (epoch {})", t.epoch),
        ),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no topology known yet for {group}"),
        ),
    }
}
