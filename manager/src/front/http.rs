//! The HTTP endpoint (`--http-addr`, off by default), for load balancers and operators:
//! `GET /health`, `GET /status`, `GET /metrics` (Prometheus), Patroni-style checks
//! `GET /master/{group}/{host:port}`, `GET /replica/{group}/{host:port}[?max_lag_bytes=N]`
//! and `GET /read-only/{group}/{host:port}[?max_lag_bytes=N]` that answer 200 only when that
//! node currently is the master / a healthy replica (published, and by this manager's probes
//! up, following the master with its link up, and within the lag) / either (503 otherwise),
//! and the operator actions `POST /failover`, `POST /pause`, `POST /resume` and, with
//! `--groups-from-zookeeper`, `POST/DELETE /groups/{name}` and `GET /groups` (the group
//! registry), which only write requests to ZooKeeper: the leader (or every manager, for the
//! registry) acts on them. Every manager answers,
//! standby included; nothing is decided here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use redis_failover_client::wire::PauseInfo;
use redis_failover_client::{NodeAddr, Topology, ZnodePaths};
use serde::Deserialize;
use tokio::sync::watch;
use zookeeper_client as zk;

use crate::io::zk::registry::{
    add_group as add, entries_json, new_entry, read_registry, remove_group as remove,
    RegistryError, Watched,
};
use crate::io::zk::ZkError;

pub use crate::front::snapshot::{GroupList, GroupSnapshot};

#[derive(Clone)]
pub struct HttpState {
    pub manager_id: String,
    pub groups: GroupList,
    /// `--groups-from-zookeeper`: the group registry's root, which `POST/DELETE /groups/{name}`
    /// write.
    pub registry: Option<String>,
    pub session: watch::Receiver<Option<zk::Client>>,
    pub metrics: Arc<crate::front::metrics::Metrics>,
    /// The session has the managers' identity: requests are written as its own.
    pub as_identity: bool,
}

/// Longest `wait_secs` a `POST /failover` may ask for.
const MAX_FAILOVER_WAIT: Duration = Duration::from_secs(120);
const DEFAULT_FAILOVER_WAIT: Duration = Duration::from_secs(30);

impl HttpState {
    /// The group's snapshot, or the message for a 404.
    fn group(&self, name: &str) -> Result<GroupSnapshot, String> {
        self.groups.find(name).ok_or_else(|| {
            format!(
                "unknown group {name:?}; known: {}",
                self.groups.names().join(", ")
            )
        })
    }

    /// The group a request names, or the only one when it names none.
    fn pick(&self, name: Option<&str>) -> Result<GroupSnapshot, ApiError> {
        match name {
            Some(n) => self
                .group(n)
                .map_err(|m| ApiError(StatusCode::NOT_FOUND, m)),
            None => match self.groups.snapshots().as_slice() {
                [only] => Ok(only.clone()),
                _ => Err(ApiError(
                    StatusCode::BAD_REQUEST,
                    "this manager watches several groups (or none): say which with \"group\""
                        .to_string(),
                )),
            },
        }
    }

    /// The live ZooKeeper session, for writing requests.
    fn client(&self) -> Result<zk::Client, ApiError> {
        crate::front::live_session(&self.session).ok_or_else(|| {
            ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no ZooKeeper connection ({}); try again later",
                    self.zk_state()
                ),
            )
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

/// A refused request: its status code and the message shown as `{"error": ..}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route(
            "/master/{group}/{node}",
            get(|s, p| node_check(s, p, None, Wanted::Master)),
        )
        .route(
            "/replica/{group}/{node}",
            get(|s, p, Query(q): Query<LagQuery>| {
                node_check(s, p, q.max_lag_bytes, Wanted::Replica)
            }),
        )
        .route(
            "/read-only/{group}/{node}",
            get(|s, p, Query(q): Query<LagQuery>| {
                node_check(s, p, q.max_lag_bytes, Wanted::Readable)
            }),
        )
        .route("/metrics", get(metrics))
        .route("/failover", post(failover))
        .route("/pause", post(pause))
        .route("/resume", post(resume))
        .route("/groups", get(list_groups))
        .route("/groups/{name}", post(add_group).delete(remove_group))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint; try GET /health, /status, /metrics, \
                 /master/{group}/{host:port}, /replica/{group}/{host:port}, \
                 /read-only/{group}/{host:port}, \
                 POST /failover, /pause, /resume, GET /groups, POST/DELETE /groups/{name}"
                    .to_string(),
            )
        })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed: /failover, /pause and /resume take POST, /groups/{name} \
                 POST or DELETE, the rest GET"
                    .to_string(),
            )
        })
        .with_state(state)
}

/// Decodes an optional JSON body (an empty body is `{}`).
fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("bad JSON body: {e}")))
}

fn paths_of(g: &GroupSnapshot) -> Result<ZnodePaths, ApiError> {
    ZnodePaths::new(&g.znode_path).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailoverBody {
    group: Option<String>,
    /// `h:p`; absent = the best replica.
    to: Option<String>,
    /// How long to wait for the leader's verdict [default 30, at most 120].
    wait_secs: Option<u64>,
}

/// Writes a manual failover request and waits for the leader's verdict: 200 done, 409
/// refused (with the reason), 504 nobody acted in time.
async fn failover(State(s): State<HttpState>, raw: Bytes) -> Result<Response, ApiError> {
    let req: FailoverBody = body(&raw)?;
    let g = s.pick(req.group.as_deref())?;
    let to: Option<NodeAddr> = req
        .to
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))?;
    let paths = paths_of(&g)?;
    let client = s.client()?;
    let wait = req
        .wait_secs
        .map_or(DEFAULT_FAILOVER_WAIT, Duration::from_secs)
        .min(MAX_FAILOVER_WAIT);
    let unavailable = |e: ZkError| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    crate::io::zk::request_manual(&client, &paths, to.as_ref(), s.as_identity)
        .await
        .map_err(unavailable)?;
    match crate::io::zk::await_manual(&client, &paths, wait)
        .await
        .map_err(unavailable)?
    {
        crate::io::zk::ManualOutcome::Done(m) => {
            Ok(Json(serde_json::json!({ "group": g.name, "result": m })).into_response())
        }
        crate::io::zk::ManualOutcome::Refused(r) => {
            Err(ApiError(StatusCode::CONFLICT, format!("refused: {r}")))
        }
        crate::io::zk::ManualOutcome::TimedOut(m) => Err(ApiError(StatusCode::GATEWAY_TIMEOUT, m)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    group: Option<String>,
    reason: Option<String>,
}

/// Pauses automatic failover for a group (`<root>/paused`); monitoring goes on.
async fn pause(State(s): State<HttpState>, raw: Bytes) -> Result<Response, ApiError> {
    let req: PauseBody = body(&raw)?;
    let info = PauseInfo::now(
        req.reason.unwrap_or_default(),
        format!("http ({})", s.manager_id),
    );
    switch(&s, req.group.as_deref(), Some(info)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeBody {
    group: Option<String>,
}

async fn resume(State(s): State<HttpState>, raw: Bytes) -> Result<Response, ApiError> {
    let req: ResumeBody = body(&raw)?;
    switch(&s, req.group.as_deref(), None).await
}

async fn switch(
    s: &HttpState,
    group: Option<&str>,
    pause: Option<PauseInfo>,
) -> Result<Response, ApiError> {
    let g = s.pick(group)?;
    let paths = paths_of(&g)?;
    let client = s.client()?;
    crate::io::zk::set_pause(&client, &paths, pause.as_ref(), s.as_identity)
        .await
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(serde_json::json!({ "group": g.name, "paused": pause })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    /// `"h:p,h:p"` or `["h:p", "h:p"]`, as `--nodes` and the config file take them.
    nodes: Option<crate::config::NodesValue>,
    znode_path: Option<String>,
}

/// The group registry's root, or why this manager has none.
fn registry(s: &HttpState) -> Result<&str, ApiError> {
    s.registry.as_deref().ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "this manager does not take groups from ZooKeeper; start it with \
             --groups-from-zookeeper"
                .to_string(),
        )
    })
}

fn registry_error(e: RegistryError) -> ApiError {
    let code = match &e {
        RegistryError::Invalid(_) => StatusCode::BAD_REQUEST,
        RegistryError::Exists(_) | RegistryError::Taken(_) => StatusCode::CONFLICT,
        RegistryError::Missing(_) => StatusCode::NOT_FOUND,
        RegistryError::Zk(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError(code, e.to_string())
}

/// Adds a group to the registry (`redis_node_manager group add`): every manager with
/// `--groups-from-zookeeper` starts watching it.
async fn add_group(
    State(s): State<HttpState>,
    Path(name): Path<String>,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let root = registry(&s)?;
    let req: GroupBody = body(&raw)?;
    let Some(nodes) = req.nodes else {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "nodes: missing; give {\"nodes\": \"host:port,...\"}".to_string(),
        ));
    };
    let entry = new_entry(
        &name,
        &nodes.csv(),
        "nodes",
        req.znode_path.as_deref(),
        format!("http ({})", s.manager_id),
    )
    .map_err(registry_error)?;
    let watched: Vec<Watched> = s
        .groups
        .snapshots()
        .into_iter()
        .map(|g| Watched {
            nodes: g.nodes.into_keys().collect(),
            name: g.name,
            root: g.znode_path,
        })
        .collect();
    let client = s.client()?;
    add(&client, root, &name, &entry, s.as_identity, &watched)
        .await
        .map_err(registry_error)?;
    Ok(Json(serde_json::json!({ "group": name, "added": entry })).into_response())
}

/// Removes a group from the registry (`redis_node_manager group remove`).
async fn remove_group(
    State(s): State<HttpState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let root = registry(&s)?;
    let client = s.client()?;
    remove(&client, root, &name).await.map_err(registry_error)?;
    Ok(Json(serde_json::json!({ "group": name, "removed": true })).into_response())
}

/// The registry's entries, as ZooKeeper holds them.
async fn list_groups(State(s): State<HttpState>) -> Result<Response, ApiError> {
    let root = registry(&s)?;
    let client = s.client()?;
    let entries = read_registry(&client, root)
        .await
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?
        .unwrap_or_default();
    let groups = entries_json(entries);
    Ok(Json(serde_json::json!({ "registry": root, "groups": groups })).into_response())
}

async fn metrics(State(s): State<HttpState>) -> Response {
    let groups = s.groups.snapshots();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(&groups, &s.zk_state()),
    )
        .into_response()
}

async fn health(State(s): State<HttpState>) -> Response {
    let groups: Vec<_> = s
        .groups
        .snapshots()
        .into_iter()
        .map(|g| serde_json::json!({ "name": g.name, "leader": g.leader }))
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
    let groups: BTreeMap<String, serde_json::Value> = s
        .groups
        .snapshots()
        .into_iter()
        .map(|g| {
            let mut v = serde_json::to_value(&g).unwrap_or_default();
            v["last_failover"] = serde_json::to_value(g.last_failover()).unwrap_or_default();
            // The leading manager's id (`leader` says whether it is this one).
            v["leader_id"] = serde_json::to_value(g.managers_in_line.first()).unwrap_or_default();
            (g.name.clone(), v)
        })
        .collect();
    Json(serde_json::json!({
        "manager": s.manager_id,
        "zookeeper": s.zk_state(),
        "groups": groups,
    }))
    .into_response()
}

/// What a node check (`GET /master`, `/replica`, `/read-only`) asks of the node: 200 when it
/// holds, 503 when it does not (or when this manager cannot confirm the topology: no live
/// ZooKeeper session), 400/404 for bad requests.
#[derive(Clone, Copy)]
enum Wanted {
    /// The group's master.
    Master,
    /// A replica of the group's master in the published topology and, by this manager's
    /// probes, up, following that master with its link up (not loading a full sync) and,
    /// with `max_lag_bytes`, at most that far behind.
    Replica,
    /// May serve reads: the master, or a replica as [`Wanted::Replica`] says.
    Readable,
}

impl Wanted {
    /// Why `n` is not what is wanted (empty when there is nothing more to say).
    fn holds(
        self,
        g: &GroupSnapshot,
        t: &Topology,
        n: &NodeAddr,
        max_lag_bytes: Option<u64>,
    ) -> Result<(), String> {
        let is_master = t.master.as_ref() == Some(n);
        match self {
            Wanted::Master if is_master => Ok(()),
            Wanted::Master => Err(String::new()),
            Wanted::Replica => healthy_replica(g, t, n, max_lag_bytes),
            Wanted::Readable if is_master => Ok(()),
            Wanted::Readable => healthy_replica(g, t, n, max_lag_bytes).map_err(|_| String::new()),
        }
    }

    /// The role named in the answer.
    fn name(self) -> &'static str {
        match self {
            Wanted::Master => "master",
            Wanted::Replica => "replica",
            Wanted::Readable => "master or healthy replica",
        }
    }
}

/// `?max_lag_bytes=N` of the replica checks.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LagQuery {
    max_lag_bytes: Option<u64>,
}

/// The node check of `GET /{wanted}/{group}/{node}`.
async fn node_check(
    State(s): State<HttpState>,
    Path((group, node)): Path<(String, String)>,
    max_lag_bytes: Option<u64>,
    wanted: Wanted,
) -> Response {
    check(
        &s,
        &group,
        &node,
        |g, t, n| wanted.holds(g, t, n, max_lag_bytes),
        wanted.name(),
    )
}

/// Why `n` is not a healthy replica of `t`'s master, as this manager's probes see it.
fn healthy_replica(
    g: &GroupSnapshot,
    t: &Topology,
    n: &NodeAddr,
    max_lag_bytes: Option<u64>,
) -> Result<(), String> {
    if !t.slaves.contains(n) {
        return Err("not a published replica".into());
    }
    let Some(r) = g.nodes.get(n) else {
        return Err("not probed by this manager".into());
    };
    if r.status != "up" {
        return Err(format!("{} by this manager's probes", r.status));
    }
    if r.master.as_ref() != t.master.as_ref() {
        return Err("not following the published master".into());
    }
    if !r.link_up {
        return Err("its link to the master is down (or it is loading a full sync)".into());
    }
    match (max_lag_bytes, r.lag_bytes) {
        (Some(max), Some(lag)) if lag > max => {
            Err(format!("{lag} bytes behind the master, more than {max}"))
        }
        (Some(_), None) => Err("its lag is not known yet".into()),
        _ => Ok(()),
    }
}

/// 200 when `is` says `node` is `what` in the group's published topology (with this
/// manager's view of the group), 503 with why not.
fn check(
    s: &HttpState,
    group: &str,
    node: &str,
    is: impl Fn(&GroupSnapshot, &Topology, &NodeAddr) -> Result<(), String>,
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
    // Without a live session the topology may have been replaced meanwhile (another manager
    // may have promoted a replica): vouch for nothing, so that a load balancer stops sending
    // traffic to a master that may be deposed.
    if s.client().is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "topology unconfirmed: this manager has no live ZooKeeper session ({}), so {group}'s {what} may have changed",
                s.zk_state()
            ),
        );
    }
    match &g.topology {
        Some(t) => match is(&g, t, &addr) {
            Ok(()) => (
                StatusCode::OK,
                Json(serde_json::json!({ "node": addr, "role": what, "epoch": t.epoch })),
            )
                .into_response(),
            Err(why) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{addr} is not {} {what} of {group} (epoch {}){}",
                    if what == "master" { "the" } else { "a" },
                    t.epoch,
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(": {why}")
                    }
                ),
            ),
        },
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no topology known yet for {group}"),
        ),
    }
}

/// Serves `router` over TLS on `listener` until `stop`: each connection's handshake and
/// requests in its own task (bounded handshake), all of them ended at `stop`.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    router: Router,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors and the like: pause instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (tls, router) = (tls.clone(), router.clone());
        conns.spawn(async move {
            let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(5), tls.accept(stream)).await
            else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
    conns.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::snapshot::NodeReport;

    #[test]
    fn a_healthy_replica_is_published_up_linked_and_within_the_lag() {
        let (m, r): (NodeAddr, NodeAddr) = ("h:1".parse().expect("m"), "h:2".parse().expect("r"));
        let t = Topology {
            master: Some(m.clone()),
            slaves: vec![r.clone()],
            ..Topology::default()
        };
        let report = |status: &str, master: Option<&NodeAddr>, link_up, lag| NodeReport {
            status: status.into(),
            master: master.cloned(),
            link_up,
            lag_bytes: lag,
            ..NodeReport::default()
        };
        let snapshot = |n: NodeReport| GroupSnapshot {
            nodes: [(r.clone(), n)].into_iter().collect(),
            ..GroupSnapshot::default()
        };
        let table: &[(NodeReport, Option<u64>, Result<(), &str>)] = &[
            (report("up", Some(&m), true, Some(10)), None, Ok(())),
            (report("up", Some(&m), true, Some(10)), Some(10), Ok(())),
            (
                report("up", Some(&m), true, Some(11)),
                Some(10),
                Err("11 bytes behind the master, more than 10"),
            ),
            (
                report("up", Some(&m), true, None),
                Some(10),
                Err("its lag is not known yet"),
            ),
            (
                report("up", Some(&m), false, Some(0)),
                None,
                Err("link to the master is down"),
            ),
            (
                report("up", Some(&r), true, Some(0)),
                None,
                Err("not following the published master"),
            ),
            (
                report("down", Some(&m), true, Some(0)),
                None,
                Err("down by this manager's probes"),
            ),
        ];
        for (n, max, want) in table {
            let got = healthy_replica(&snapshot(n.clone()), &t, &r, *max);
            match (got, want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(w)) => assert!(e.contains(w), "{n:?} {max:?}: {e}"),
                (got, _) => panic!("{n:?} {max:?}: {got:?}"),
            }
        }
        let unpublished = healthy_replica(&GroupSnapshot::default(), &t, &m, None);
        assert!(unpublished.is_err_and(|e| e.contains("not a published replica")));
    }
}
