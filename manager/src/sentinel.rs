//! The Redis Sentinel protocol endpoint (`--sentinel-addr`, off by default): answers
//! Sentinel's commands in RESP and publishes Sentinel's events to subscribers, from each
//! group's published topology, so that unmodified Sentinel clients find the master and the
//! replicas and follow failovers. Every manager answers, standby included; nothing is
//! decided here (`SENTINEL FAILOVER` writes the same request as `redis_node_manager
//! failover`, which the leader carries out).
//!
//! A group's name is its Sentinel master name. What differs from Sentinel: RESP2 only
//! (`HELLO 3` is refused with `NOPROTO`), no Sentinel election (`IS-MASTER-DOWN-BY-ADDR`
//! answers from this manager's own view and never votes), no runtime reconfiguration
//! (`SENTINEL SET/MONITOR/REMOVE/RESET/CONFIG SET` are refused). `SENTINEL SENTINELS` lists
//! the other managers at the Sentinel address each announces in its view (`ip ?`, `port 0`
//! for one that runs no Sentinel endpoint).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use redis_failover_client::wire::{unix_ms, ManualRequest};
use redis_failover_client::{ManagerView, NodeAddr, Topology, ZnodePaths};
use redis_protocol::bytes::{Bytes, BytesMut};
use redis_protocol::codec::Resp2;
use redis_protocol::error::{RedisProtocolError, RedisProtocolErrorKind};
use redis_protocol::resp2::types::BytesFrame as Frame;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::codec::{Decoder, Encoder, Framed};
use tracing::{debug, info, warn};

use crate::events::{self, Event};
use crate::snapshot::GroupSnapshot;

/// A client that does not take a reply within this long is dropped, so that one slow
/// subscriber cannot hold up the others.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Redis's default `maxclients`.
const MAX_CLIENTS: usize = 10_000;
/// Sentinel commands are a few dozen bytes; anything this large is garbage or an attack.
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Redis's own bound on an inline command line.
const MAX_INLINE_BYTES: usize = 64 * 1024;
/// How long open connections get to finish at shutdown before they are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Events kept for a subscriber that is momentarily behind.
const EVENT_BACKLOG: usize = 1024;
/// The Redis version reported by INFO and HELLO: the Sentinel protocol spoken here is
/// Redis 7.0's.
const REDIS_VERSION: &str = "7.0.0";
/// Sentinel's default, reported as `failover-timeout`; the leader has no such setting.
const FAILOVER_TIMEOUT_MS: u64 = 180_000;
/// Commands allowed on a subscribed connection, as in Redis.
const SUBSCRIBED_COMMANDS: &[&str] = &[
    "subscribe",
    "psubscribe",
    "unsubscribe",
    "punsubscribe",
    "ping",
    "quit",
    "reset",
];
const COMMANDS: &[&str] = &[
    "ping",
    "role",
    "sentinel",
    "info",
    "client",
    "auth",
    "hello",
    "quit",
    "subscribe",
    "psubscribe",
    "unsubscribe",
    "punsubscribe",
];

/// What the endpoint answers from.
pub struct SentinelState {
    pub manager_id: String,
    pub groups: Vec<watch::Receiver<GroupSnapshot>>,
    pub session: watch::Receiver<Option<zookeeper_client::Client>>,
    /// Required from clients (AUTH / HELLO AUTH) when set.
    pub password: Option<String>,
    /// The port listened on, for INFO.
    pub port: u16,
}

struct Shared {
    state: SentinelState,
    events: broadcast::Sender<Event>,
    /// Per group (in `state.groups` order), the last master published: shown while the
    /// group has none, as Sentinel keeps showing a down master at its address.
    last_masters: Mutex<Vec<Option<NodeAddr>>>,
    clients: Arc<Semaphore>,
    next_client_id: AtomicU64,
    started: Instant,
}

impl Shared {
    fn snapshots(&self) -> Vec<(usize, GroupSnapshot)> {
        self.state
            .groups
            .iter()
            .map(|g| g.borrow().clone())
            .enumerate()
            .collect()
    }

    fn group(&self, name: &str) -> Option<(usize, GroupSnapshot)> {
        self.state
            .groups
            .iter()
            .position(|g| g.borrow().name == name)
            .map(|i| (i, self.state.groups[i].borrow().clone()))
    }

    fn last_master(&self, index: usize) -> Option<NodeAddr> {
        let masters = self.last_masters.lock().unwrap_or_else(|e| e.into_inner());
        masters.get(index).cloned().flatten()
    }

    fn set_last_master(&self, index: usize, master: NodeAddr) {
        let mut masters = self.last_masters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = masters.get_mut(index) {
            *slot = Some(master);
        }
    }

    fn connected_clients(&self) -> usize {
        MAX_CLIENTS - self.clients.available_permits()
    }

    fn group_view<'a>(&'a self, index: usize, snap: &'a GroupSnapshot) -> GroupView<'a> {
        let remembered = self
            .last_master(index)
            .or_else(|| snap.last_failover().map(|r| r.to.clone()));
        GroupView::new(snap, remembered, &self.state.manager_id, unix_ms())
    }
}

/// Serves Sentinel clients on `listener` until `stop` turns true; then ends every task it
/// started (connections get [`SHUTDOWN_GRACE`], then are aborted).
pub async fn serve(listener: TcpListener, state: SentinelState, mut stop: watch::Receiver<bool>) {
    let (events, _) = broadcast::channel(EVENT_BACKLOG);
    let shared = Arc::new(Shared {
        last_masters: Mutex::new(vec![None; state.groups.len()]),
        state,
        events,
        clients: Arc::new(Semaphore::new(MAX_CLIENTS)),
        next_client_id: AtomicU64::new(1),
        started: Instant::now(),
    });
    let mut tasks = JoinSet::new();
    for (i, rx) in shared.state.groups.iter().enumerate() {
        tasks.spawn(watch_group(shared.clone(), i, rx.clone(), stop.clone()));
    }
    loop {
        let accepted = tokio::select! {
            _ = crate::stopped(&mut stop) => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                match shared.clients.clone().try_acquire_owned() {
                    Ok(permit) => {
                        tasks.spawn(connection(
                            shared.clone(),
                            stream,
                            peer.to_string(),
                            stop.clone(),
                            permit,
                        ));
                    }
                    Err(_) => {
                        tasks.spawn(refuse(stream));
                    }
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                warn!("-sentinel: accept failed: {e}");
                tokio::select! {
                    _ = crate::stopped(&mut stop) => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
        // Finished connections leave the set, so it does not grow with every client.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

async fn refuse(stream: TcpStream) {
    let mut framed = Framed::new(stream, Codec::default());
    let _ = tokio::time::timeout(
        WRITE_TIMEOUT,
        framed.send(error("ERR max number of clients reached")),
    )
    .await;
}

/// Publishes the events of every change of the group's topology.
async fn watch_group(
    shared: Arc<Shared>,
    index: usize,
    mut rx: watch::Receiver<GroupSnapshot>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last: Option<Topology> = None;
    loop {
        let (name, topology, quorum) = {
            let snap = rx.borrow_and_update();
            let quorum = last
                .as_ref()
                .and_then(|t| t.master.as_ref())
                .map(|m| {
                    let view = GroupView::new(&snap, None, &shared.state.manager_id, unix_ms());
                    let (seen, required) = view.odown_quorum(m);
                    // The leader published the change on at least `required` views; the
                    // views read here may lag behind the ones it counted.
                    (seen.max(required), required)
                })
                .unwrap_or((1, 1));
            (snap.name.clone(), snap.topology.clone(), quorum)
        };
        // A topology that is momentarily unknown (ZooKeeper trouble) is no change: the next
        // one is compared with the last one known.
        if let Some(new) = topology {
            if let Some(old) = last.as_ref().filter(|old| !old.same_content(&new)) {
                let remembered = shared.last_master(index);
                let change = events::Change {
                    group: &name,
                    old,
                    new: &new,
                    last_master: remembered.as_ref(),
                    quorum,
                };
                for e in events::diff(&change) {
                    debug!("sentinel event {} {}", e.channel, e.message);
                    // No subscriber is not an error.
                    let _ = shared.events.send(e);
                }
            }
            if let Some(m) = &new.master {
                shared.set_last_master(index, m.clone());
            }
            last = Some(new);
        }
        tokio::select! {
            _ = crate::stopped(&mut stop) => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
    }
}

// ---------------------------------------------------------------------------------------
// RESP framing
// ---------------------------------------------------------------------------------------

/// RESP2 through `redis-protocol`, plus Redis's inline form (`PING\r\n`, what `nc` and
/// telnet send; split on whitespace, without Redis's quoting), with a bound on how much one
/// request may buffer.
#[derive(Default)]
struct Codec(Resp2);

fn protocol_error(msg: &'static str) -> RedisProtocolError {
    RedisProtocolError::new(RedisProtocolErrorKind::DecodeError, msg)
}

impl Decoder for Codec {
    type Item = Frame;
    type Error = RedisProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        loop {
            let Some(&first) = src.first() else {
                return Ok(None);
            };
            // As in Redis, only `*` starts a RESP request; anything else is an inline line.
            if first == b'*' {
                let frame = self.0.decode(src)?;
                if frame.is_none() && src.len() > MAX_REQUEST_BYTES {
                    return Err(protocol_error("request too large"));
                }
                return Ok(frame);
            }
            let Some(end) = src.iter().position(|&b| b == b'\n') else {
                if src.len() > MAX_INLINE_BYTES {
                    return Err(protocol_error("too big inline request"));
                }
                return Ok(None);
            };
            let line = src.split_to(end + 1);
            let args: Vec<Frame> = line[..]
                .split(|b: &u8| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .map(|w| Frame::BulkString(Bytes::copy_from_slice(w)))
                .collect();
            // Redis ignores empty inline lines.
            if !args.is_empty() {
                return Ok(Some(Frame::Array(args)));
            }
        }
    }
}

impl Encoder<Frame> for Codec {
    type Error = RedisProtocolError;

    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), Self::Error> {
        self.0.encode(item, dst)
    }
}

fn bulk(s: impl Into<String>) -> Frame {
    Frame::BulkString(Bytes::from(s.into()))
}

fn simple(s: &'static str) -> Frame {
    Frame::SimpleString(Bytes::from_static(s.as_bytes()))
}

fn ok() -> Frame {
    simple("OK")
}

/// An error reply; `msg` starts with its code (`ERR`, `NOAUTH`, ...). Line breaks, which
/// would end the reply early, become spaces.
fn error(msg: impl Into<String>) -> Frame {
    let msg: String = msg
        .into()
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    Frame::Error(msg.into())
}

fn int(i: i64) -> Frame {
    Frame::Integer(i)
}

/// A flat field/value array of bulk strings, as Sentinel's MASTER/REPLICAS replies.
fn fields(pairs: Vec<(&'static str, String)>) -> Frame {
    Frame::Array(
        pairs
            .into_iter()
            .flat_map(|(k, v)| [bulk(k), bulk(v)])
            .collect(),
    )
}

fn arity(command: &str) -> Frame {
    error(format!(
        "ERR wrong number of arguments for '{command}' command"
    ))
}

/// Redis's message: the name and the first arguments, each cut to 128 bytes in all.
fn unknown_command(args: &[String]) -> Frame {
    let mut shown = String::new();
    for a in &args[1..] {
        if shown.len() >= 128 {
            break;
        }
        let room = 128 - shown.len();
        shown.push_str(&format!("'{}' ", truncate(a, room)));
    }
    error(format!(
        "ERR unknown command '{}', with args beginning with: {shown}",
        truncate(&args[0], 128)
    ))
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Redis's glob (`stringmatchlen`): `*`, `?`, `[abc]`, `[^a-z]`, `\x`.
fn glob(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index it matched to).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let mut matched = None;
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                b'?' => matched = Some(p + 1),
                b'[' => {
                    let mut i = p + 1;
                    let negate = pattern.get(i) == Some(&b'^');
                    if negate {
                        i += 1;
                    }
                    let mut hit = false;
                    while i < pattern.len() && pattern[i] != b']' {
                        if pattern[i] == b'\\' && i + 1 < pattern.len() {
                            hit |= eq(pattern[i + 1], text[t]);
                            i += 2;
                        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' {
                            let (mut lo, mut hi) = (pattern[i], pattern[i + 2]);
                            if lo > hi {
                                std::mem::swap(&mut lo, &mut hi);
                            }
                            let c = text[t];
                            let candidates = if nocase {
                                [c, c.to_ascii_lowercase(), c.to_ascii_uppercase()]
                            } else {
                                [c; 3]
                            };
                            hit |= candidates.iter().any(|c| (lo..=hi).contains(c));
                            i += 3;
                        } else {
                            hit |= eq(pattern[i], text[t]);
                            i += 1;
                        }
                    }
                    if hit != negate {
                        matched = Some((i + 1).min(pattern.len()));
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if eq(pattern[p + 1], text[t]) {
                        matched = Some(p + 2);
                    }
                }
                c => {
                    if eq(c, text[t]) {
                        matched = Some(p + 1);
                    }
                }
            }
        }
        match (matched, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((sp, st))) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

// ---------------------------------------------------------------------------------------
// What a group looks like to Sentinel clients
// ---------------------------------------------------------------------------------------

/// One group's snapshot, read the way Sentinel reports instances.
struct GroupView<'a> {
    snap: &'a GroupSnapshot,
    /// The master to show: the published one, or the last one while there is none.
    master: Option<NodeAddr>,
    me: &'a str,
    now_ms: u64,
}

impl<'a> GroupView<'a> {
    fn new(
        snap: &'a GroupSnapshot,
        remembered: Option<NodeAddr>,
        me: &'a str,
        now_ms: u64,
    ) -> Self {
        let master = match &snap.topology {
            Some(t) => t.master.clone().or(remembered),
            None => remembered,
        };
        Self {
            snap,
            master,
            me,
            now_ms,
        }
    }

    fn has_master(&self) -> bool {
        self.snap
            .topology
            .as_ref()
            .is_some_and(|t| t.master.is_some())
    }

    fn down_after_ms(&self) -> u64 {
        match self.snap.settings.down_after_ms {
            0 => crate::config::DEFAULT_DOWN_AFTER_MS,
            ms => ms,
        }
    }

    fn quorum(&self) -> usize {
        self.snap.settings.required_node_managers.max(1)
    }

    /// A manager's view counts while it is as recent as the leader's votes require.
    fn fresh(&self, v: &ManagerView) -> bool {
        let max_age = (2 * self.down_after_ms()).max(2000);
        self.now_ms.saturating_sub(v.at_ms) <= max_age
    }

    /// Every manager's view as read from ZooKeeper, with this manager's own replaced by its
    /// current one (the copy in ZooKeeper lags by up to a publishing interval, and is absent
    /// before the first one).
    fn views(&self) -> impl Iterator<Item = &ManagerView> {
        self.snap
            .views
            .iter()
            .filter(|(id, _)| id.as_str() != self.me)
            .map(|(_, v)| v)
            .chain(std::iter::once(&self.snap.view))
    }

    fn usable_managers(&self) -> usize {
        self.views().filter(|v| self.fresh(v)).count()
    }

    /// The fresh views that see `node` down, and how many are required.
    fn odown_quorum(&self, node: &NodeAddr) -> (usize, usize) {
        let down = self
            .views()
            .filter(|v| self.fresh(v) && v.unavailable.contains(node))
            .count();
        (down, self.quorum())
    }

    /// This manager's own probes cannot reach `node`.
    fn unreachable(&self, node: &NodeAddr) -> bool {
        self.snap.view.unavailable.contains(node)
            || self
                .snap
                .nodes
                .get(node)
                .is_some_and(|r| r.status == "down")
    }

    fn other_managers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for id in self
            .snap
            .managers_in_line
            .iter()
            .chain(self.snap.views.keys())
        {
            if id != self.me && !out.contains(id) {
                out.push(id.clone());
            }
        }
        out
    }

    /// Every known replica: the healthy ones, then those the topology holds unavailable
    /// (Sentinel lists down replicas too, flagged `s_down`).
    fn replicas(&self) -> Vec<NodeAddr> {
        let Some(t) = &self.snap.topology else {
            return Vec::new();
        };
        t.slaves
            .iter()
            .chain(t.unavailable.iter())
            .filter(|n| Some(*n) != self.master.as_ref())
            .cloned()
            .collect()
    }

    /// `(s_down, o_down)` of the master.
    fn master_down(&self) -> (bool, bool) {
        let Some(m) = &self.master else {
            return (true, true);
        };
        if !self.has_master() {
            return (true, true);
        }
        let (seen, required) = self.odown_quorum(m);
        let o_down = seen >= required;
        (self.unreachable(m) || o_down, o_down)
    }

    fn status(&self) -> &'static str {
        match self.master_down() {
            (_, true) => "odown",
            (true, false) => "sdown",
            _ => "ok",
        }
    }

    fn ms_since_ok(&self, node: &NodeAddr) -> String {
        self.snap
            .nodes
            .get(node)
            .and_then(|r| r.last_ok_ms_ago)
            .unwrap_or(0)
            .to_string()
    }

    fn down_time(&self, node: &NodeAddr) -> String {
        self.snap
            .nodes
            .get(node)
            .and_then(|r| r.down_for_ms)
            .unwrap_or(0)
            .to_string()
    }

    /// Since the topology naming the roles was published.
    fn role_time(&self) -> String {
        self.snap
            .topology
            .as_ref()
            .map_or(0, |t| self.now_ms.saturating_sub(t.updated_at_ms))
            .to_string()
    }

    fn epoch(&self) -> u64 {
        self.snap.topology.as_ref().map_or(0, |t| t.epoch)
    }

    /// `SENTINEL MASTER`'s fields, in Sentinel's order.
    fn master_fields(&self) -> Vec<(&'static str, String)> {
        let (ip, port) = self
            .master
            .as_ref()
            .map_or(("?".to_string(), "0".to_string()), |m| {
                (m.host.clone(), m.port.to_string())
            });
        let (s_down, o_down) = self.master_down();
        let disconnected = self.master.as_ref().is_none_or(|m| self.unreachable(m));
        let mut flags = Vec::new();
        if s_down {
            flags.push("s_down");
        }
        if o_down {
            flags.push("o_down");
        }
        flags.push("master");
        if disconnected {
            flags.push("disconnected");
        }
        let since_ok = self
            .master
            .as_ref()
            .map_or("0".to_string(), |m| self.ms_since_ok(m));
        let replicas = self.replicas().len();
        let mut f = vec![
            ("name", self.snap.name.clone()),
            ("ip", ip),
            ("port", port),
            ("runid", String::new()),
            ("flags", flags.join(",")),
            ("link-pending-commands", "0".into()),
            ("link-refcount", "1".into()),
            ("last-ping-sent", "0".into()),
            ("last-ok-ping-reply", since_ok.clone()),
            ("last-ping-reply", since_ok.clone()),
        ];
        let down_time = self
            .master
            .as_ref()
            .map_or("0".to_string(), |m| self.down_time(m));
        if s_down {
            f.push(("s-down-time", down_time.clone()));
        }
        if o_down {
            f.push(("o-down-time", down_time));
        }
        f.extend([
            ("down-after-milliseconds", self.down_after_ms().to_string()),
            ("info-refresh", since_ok),
            ("role-reported", "master".into()),
            ("role-reported-time", self.role_time()),
            ("config-epoch", self.epoch().to_string()),
            ("num-slaves", replicas.to_string()),
            (
                "num-other-sentinels",
                self.other_managers().len().to_string(),
            ),
            ("quorum", self.quorum().to_string()),
            ("failover-timeout", FAILOVER_TIMEOUT_MS.to_string()),
            // The leader re-points every replica at once.
            ("parallel-syncs", replicas.max(1).to_string()),
        ]);
        f
    }

    /// `SENTINEL REPLICAS`'s fields for one replica, in Sentinel's order.
    fn replica_fields(&self, r: &NodeAddr) -> Vec<(&'static str, String)> {
        let healthy = self
            .snap
            .topology
            .as_ref()
            .is_some_and(|t| t.slaves.contains(r));
        let unreachable = self.unreachable(r);
        let s_down = !healthy || unreachable;
        let mut flags = Vec::new();
        if s_down {
            flags.push("s_down");
        }
        flags.push("slave");
        if unreachable {
            flags.push("disconnected");
        }
        let report = self.snap.nodes.get(r);
        let role = match report.and_then(|n| n.role.as_deref()) {
            Some("master") => "master",
            _ => "slave",
        };
        let link_ok = report.map_or(healthy, |n| n.link_up);
        let follows = report
            .and_then(|n| n.master.clone())
            .or_else(|| healthy.then(|| self.master.clone()).flatten());
        let (mh, mp) = follows.map_or(("?".to_string(), "0".to_string()), |m| {
            (m.host, m.port.to_string())
        });
        let since_ok = self.ms_since_ok(r);
        let mut f = vec![
            ("name", r.to_string()),
            ("ip", r.host.clone()),
            ("port", r.port.to_string()),
            ("runid", String::new()),
            ("flags", flags.join(",")),
            ("link-pending-commands", "0".into()),
            ("link-refcount", "1".into()),
            ("last-ping-sent", "0".into()),
            ("last-ok-ping-reply", since_ok.clone()),
            ("last-ping-reply", since_ok.clone()),
        ];
        if s_down {
            f.push(("s-down-time", self.down_time(r)));
        }
        f.extend([
            ("down-after-milliseconds", self.down_after_ms().to_string()),
            ("info-refresh", since_ok),
            ("role-reported", role.into()),
            ("role-reported-time", self.role_time()),
            (
                "master-link-down-time",
                if link_ok { "0" } else { "-1" }.into(),
            ),
            (
                "master-link-status",
                if link_ok { "ok" } else { "err" }.into(),
            ),
            ("master-host", mh),
            ("master-port", mp),
            (
                "slave-priority",
                report.and_then(|n| n.priority).unwrap_or(100).to_string(),
            ),
            (
                "slave-repl-offset",
                report.and_then(|n| n.offset).unwrap_or(0).to_string(),
            ),
            ("replica-announced", "1".into()),
        ]);
        f
    }

    /// `SENTINEL SENTINELS`'s fields for another manager.
    fn manager_fields(&self, id: &str) -> Vec<(&'static str, String)> {
        let view = self.snap.views.get(id);
        let fresh = view.is_some_and(|v| self.fresh(v));
        let age = view.map_or("0".to_string(), |v| {
            self.now_ms.saturating_sub(v.at_ms).to_string()
        });
        let flags = if fresh || view.is_none() {
            "sentinel"
        } else {
            "s_down,sentinel"
        };
        let (ip, port) = view
            .and_then(|v| v.sentinel_addr.as_ref())
            .map_or(("?".to_string(), "0".to_string()), |a| {
                (a.host.clone(), a.port.to_string())
            });
        vec![
            ("name", id.to_string()),
            ("ip", ip),
            ("port", port),
            ("runid", id.to_string()),
            ("flags", flags.into()),
            ("link-pending-commands", "0".into()),
            ("link-refcount", "1".into()),
            ("last-ping-sent", "0".into()),
            ("last-ok-ping-reply", age.clone()),
            ("last-ping-reply", age.clone()),
            ("down-after-milliseconds", self.down_after_ms().to_string()),
            ("last-hello-message", age),
            ("voted-leader", "?".into()),
            ("voted-leader-epoch", "0".into()),
        ]
    }

    /// INFO's `masterN:` line.
    fn info_line(&self, n: usize) -> String {
        let address = self
            .master
            .as_ref()
            .map_or("?:0".to_string(), |m| format!("{}:{}", m.host, m.port));
        format!(
            "master{n}:name={},status={},address={address},slaves={},sentinels={}",
            self.snap.name,
            self.status(),
            self.replicas().len(),
            self.other_managers().len() + 1
        )
    }
}

// ---------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------

struct Client {
    id: u64,
    peer: String,
    name: Option<String>,
    authed: bool,
    channels: BTreeSet<String>,
    patterns: BTreeSet<String>,
    events: Option<broadcast::Receiver<Event>>,
}

/// What to send back, and whether to close the connection after it.
struct Reply {
    frames: Vec<Frame>,
    close: bool,
}

impl From<Frame> for Reply {
    fn from(f: Frame) -> Self {
        Reply {
            frames: vec![f],
            close: false,
        }
    }
}

async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: String,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let mut framed = Framed::new(stream, Codec::default());
    let mut client = Client {
        id: shared.next_client_id.fetch_add(1, Ordering::Relaxed),
        peer,
        name: None,
        authed: shared.state.password.is_none(),
        channels: BTreeSet::new(),
        patterns: BTreeSet::new(),
        events: None,
    };
    loop {
        // Reading has no deadline: Sentinel clients keep idle connections open.
        let frames = tokio::select! {
            _ = crate::stopped(&mut stop) => return,
            request = framed.next() => match request {
                None => return,
                Some(Err(e)) => {
                    let _ = send(&mut framed, vec![error(format!("ERR Protocol error: {e}"))]).await;
                    return;
                }
                Some(Ok(frame)) => match request_args(frame) {
                    Err(e) => {
                        let _ = send(&mut framed, vec![error(e)]).await;
                        return;
                    }
                    Ok(args) if args.is_empty() => continue,
                    Ok(args) => {
                        let reply = client.handle(&shared, args).await;
                        if send(&mut framed, reply.frames).await.is_err() || reply.close {
                            return;
                        }
                        continue;
                    }
                },
            },
            event = next_event(&mut client.events) => match event {
                Some(e) => client.deliver(&e),
                None => continue,
            },
        };
        if send(&mut framed, frames).await.is_err() {
            return;
        }
    }
}

/// Writes `frames`, bounded by [`WRITE_TIMEOUT`]; an error means the connection is done.
async fn send(framed: &mut Framed<TcpStream, Codec>, frames: Vec<Frame>) -> Result<(), ()> {
    let write = async {
        for f in frames {
            framed.feed(f).await?;
        }
        framed.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// The next event for a subscribed client; pending forever while not subscribed.
async fn next_event(rx: &mut Option<broadcast::Receiver<Event>>) -> Option<Event> {
    let Some(r) = rx.as_mut() else {
        return std::future::pending().await;
    };
    match r.recv().await {
        Ok(e) => Some(e),
        Err(broadcast::error::RecvError::Lagged(n)) => {
            warn!("-sentinel: a subscriber missed {n} events (too slow)");
            None
        }
        Err(broadcast::error::RecvError::Closed) => {
            *rx = None;
            None
        }
    }
}

/// A request's words; Redis wants an array of bulk strings.
fn request_args(frame: Frame) -> Result<Vec<String>, String> {
    let Frame::Array(items) = frame else {
        return Err("ERR Protocol error: expected an array of bulk strings".to_string());
    };
    items
        .into_iter()
        .map(|f| match f {
            Frame::BulkString(b) | Frame::SimpleString(b) => {
                Ok(String::from_utf8_lossy(&b).into_owned())
            }
            Frame::Integer(i) => Ok(i.to_string()),
            _ => Err("ERR Protocol error: expected bulk strings in the request".to_string()),
        })
        .collect()
}

fn password_matches(expected: &str, given: &str) -> bool {
    // Same time whatever the first differing byte, so that timing does not reveal a prefix.
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

impl Client {
    fn subscriptions(&self) -> i64 {
        (self.channels.len() + self.patterns.len()) as i64
    }

    fn deliver(&self, e: &Event) -> Vec<Frame> {
        let mut out = Vec::new();
        if self.channels.contains(e.channel) {
            out.push(Frame::Array(vec![
                bulk("message"),
                bulk(e.channel),
                bulk(e.message.clone()),
            ]));
        }
        for p in &self.patterns {
            if glob(p.as_bytes(), e.channel.as_bytes(), false) {
                out.push(Frame::Array(vec![
                    bulk("pmessage"),
                    bulk(p.clone()),
                    bulk(e.channel),
                    bulk(e.message.clone()),
                ]));
            }
        }
        out
    }

    /// Checks `user`/`password` against the configured password; only Redis's `default`
    /// user exists here. Without a password, `default` takes any (Redis's `nopass`).
    fn authenticate(&mut self, shared: &Shared, user: &str, password: &str) -> bool {
        let ok = user == "default"
            && shared
                .state
                .password
                .as_deref()
                .is_none_or(|p| password_matches(p, password));
        if ok {
            self.authed = true;
        }
        ok
    }

    async fn handle(&mut self, shared: &Shared, args: Vec<String>) -> Reply {
        let cmd = args[0].to_ascii_lowercase();
        let known = COMMANDS.contains(&cmd.as_str());
        if !self.authed && !matches!(cmd.as_str(), "auth" | "hello" | "quit") {
            return error("NOAUTH Authentication required.").into();
        }
        if !known {
            return unknown_command(&args).into();
        }
        if self.subscriptions() > 0 && !SUBSCRIBED_COMMANDS.contains(&cmd.as_str()) {
            return error(format!(
                "ERR Can't execute '{cmd}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / \
                 QUIT / RESET are allowed in this context"
            ))
            .into();
        }
        match cmd.as_str() {
            "ping" => self.ping(&args).into(),
            "role" if args.len() == 1 => {
                let names = shared
                    .snapshots()
                    .into_iter()
                    .map(|(_, s)| bulk(s.name))
                    .collect();
                Frame::Array(vec![bulk("sentinel"), Frame::Array(names)]).into()
            }
            "role" => arity("role").into(),
            "quit" => Reply {
                frames: vec![ok()],
                close: true,
            },
            "auth" => self.auth(shared, &args).into(),
            "hello" => self.hello(shared, &args).into(),
            "client" => self.client_command(&args).into(),
            "info" => info(shared, &args).into(),
            "subscribe" | "psubscribe" => self.subscribe(shared, &cmd, &args),
            "unsubscribe" | "punsubscribe" => self.unsubscribe(&cmd, &args),
            _ => self.sentinel(shared, &args).await.into(),
        }
    }

    fn ping(&self, args: &[String]) -> Frame {
        if args.len() > 2 {
            return arity("ping");
        }
        if self.subscriptions() > 0 {
            let msg = args.get(1).cloned().unwrap_or_default();
            return Frame::Array(vec![bulk("pong"), bulk(msg)]);
        }
        match args.get(1) {
            Some(m) => bulk(m.clone()),
            None => simple("PONG"),
        }
    }

    fn auth(&mut self, shared: &Shared, args: &[String]) -> Frame {
        let (user, password) = match args.len() {
            2 => ("default", args[1].as_str()),
            3 => (args[1].as_str(), args[2].as_str()),
            1 => return arity("auth"),
            _ => return error("ERR syntax error"),
        };
        if shared.state.password.is_none() && args.len() == 2 {
            return error(
                "ERR AUTH <password> called without any password configured for the default \
                 user. Are you sure your configuration is correct?",
            );
        }
        if self.authenticate(shared, user, password) {
            ok()
        } else {
            error(WRONGPASS)
        }
    }

    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`; RESP3 is not spoken here.
    fn hello(&mut self, shared: &Shared, args: &[String]) -> Frame {
        if let Some(v) = args.get(1) {
            match v.parse::<i64>() {
                Ok(2) => {}
                Ok(_) => return error("NOPROTO unsupported protocol version"),
                Err(_) => return error("ERR Protocol version is not an integer or out of range"),
            }
        }
        let mut auth = None;
        let mut setname = None;
        let mut i = 2;
        while i < args.len() {
            let opt = args[i].to_ascii_lowercase();
            match opt.as_str() {
                "auth" if i + 2 < args.len() => {
                    auth = Some((args[i + 1].as_str(), args[i + 2].as_str()));
                    i += 3;
                }
                "setname" if i + 1 < args.len() => {
                    setname = Some(args[i + 1].clone());
                    i += 2;
                }
                _ => return error(format!("ERR Syntax error in HELLO option '{}'", args[i])),
            }
        }
        if let Some((user, password)) = auth {
            if !self.authenticate(shared, user, password) {
                return error(WRONGPASS);
            }
        }
        if !self.authed {
            return error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise \
                 the HELLO AUTH <user> <pass> option can be used to authenticate the client and \
                 select the RESP protocol version at the same time",
            );
        }
        if let Some(name) = setname {
            if let Err(e) = self.set_name(name) {
                return e;
            }
        }
        Frame::Array(vec![
            bulk("server"),
            bulk("redis"),
            bulk("version"),
            bulk(REDIS_VERSION),
            bulk("proto"),
            int(2),
            bulk("id"),
            int(self.id as i64),
            bulk("mode"),
            bulk("sentinel"),
            bulk("modules"),
            Frame::Array(Vec::new()),
        ])
    }

    fn set_name(&mut self, name: String) -> Result<(), Frame> {
        if name.bytes().any(|b| !(b'!'..=b'~').contains(&b)) {
            return Err(error(
                "ERR Client names cannot contain spaces, newlines or special characters.",
            ));
        }
        self.name = (!name.is_empty()).then_some(name);
        Ok(())
    }

    fn client_command(&mut self, args: &[String]) -> Frame {
        let Some(sub) = args.get(1).map(|s| s.to_ascii_lowercase()) else {
            return arity("client");
        };
        match (sub.as_str(), args.len()) {
            ("setinfo", 4) => match args[2].to_ascii_lowercase().as_str() {
                "lib-name" | "lib-ver" => ok(),
                _ => error(format!("ERR Unrecognized option '{}'", args[2])),
            },
            ("setname", 3) => match self.set_name(args[2].clone()) {
                Ok(()) => ok(),
                Err(e) => e,
            },
            ("getname", 2) => self.name.clone().map_or(Frame::Null, bulk),
            ("id", 2) => int(self.id as i64),
            ("setinfo" | "setname" | "getname" | "id", _) => arity(&format!("client|{sub}")),
            _ => error(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                args[1]
            )),
        }
    }

    fn subscribe(&mut self, shared: &Shared, cmd: &str, args: &[String]) -> Reply {
        if args.len() < 2 {
            return arity(cmd).into();
        }
        let mut frames = Vec::new();
        for ch in &args[1..] {
            if cmd == "subscribe" {
                self.channels.insert(ch.clone());
            } else {
                self.patterns.insert(ch.clone());
            }
            frames.push(Frame::Array(vec![
                bulk(cmd),
                bulk(ch.clone()),
                int(self.subscriptions()),
            ]));
        }
        if self.events.is_none() {
            self.events = Some(shared.events.subscribe());
        }
        Reply {
            frames,
            close: false,
        }
    }

    fn unsubscribe(&mut self, cmd: &str, args: &[String]) -> Reply {
        let set = if cmd == "unsubscribe" {
            &mut self.channels
        } else {
            &mut self.patterns
        };
        let targets: Vec<String> = if args.len() == 1 {
            set.iter().cloned().collect()
        } else {
            args[1..].to_vec()
        };
        let mut frames = Vec::new();
        if targets.is_empty() {
            frames.push(Frame::Array(vec![
                bulk(cmd),
                Frame::Null,
                int(self.subscriptions()),
            ]));
        }
        for t in targets {
            let set = if cmd == "unsubscribe" {
                &mut self.channels
            } else {
                &mut self.patterns
            };
            set.remove(&t);
            frames.push(Frame::Array(vec![
                bulk(cmd),
                bulk(t),
                int(self.subscriptions()),
            ]));
        }
        if self.subscriptions() == 0 {
            self.events = None;
        }
        Reply {
            frames,
            close: false,
        }
    }

    async fn sentinel(&mut self, shared: &Shared, args: &[String]) -> Frame {
        let Some(sub) = args.get(1).map(|s| s.to_ascii_lowercase()) else {
            return arity("sentinel");
        };
        let with_group = |n: usize| -> Result<Option<(usize, GroupSnapshot)>, Frame> {
            if args.len() != n {
                return Err(arity(&format!("sentinel|{sub}")));
            }
            Ok(shared.group(&args[2]))
        };
        let no_such = || error("ERR No such master with that name");
        // `SENTINEL <sub> <name>` answered from the group's view.
        let for_group = |f: &dyn Fn(&GroupView<'_>) -> Frame| match with_group(3) {
            Err(e) => e,
            Ok(None) => no_such(),
            Ok(Some((i, s))) => f(&shared.group_view(i, &s)),
        };
        match sub.as_str() {
            "masters" => {
                if args.len() != 2 {
                    return arity("sentinel|masters");
                }
                let masters = shared
                    .snapshots()
                    .iter()
                    .map(|(i, s)| fields(shared.group_view(*i, s).master_fields()))
                    .collect();
                Frame::Array(masters)
            }
            "master" => for_group(&|g| fields(g.master_fields())),
            "replicas" | "slaves" => for_group(&|g| {
                Frame::Array(
                    g.replicas()
                        .iter()
                        .map(|r| fields(g.replica_fields(r)))
                        .collect(),
                )
            }),
            "sentinels" => for_group(&|g| {
                Frame::Array(
                    g.other_managers()
                        .iter()
                        .map(|id| fields(g.manager_fields(id)))
                        .collect(),
                )
            }),
            "get-master-addr-by-name" => match with_group(3) {
                Err(e) => e,
                Ok(Some((_, s))) => match s.topology.and_then(|t| t.master) {
                    Some(m) => Frame::Array(vec![bulk(m.host), bulk(m.port.to_string())]),
                    None => Frame::Null,
                },
                Ok(None) => Frame::Null,
            },
            "failover" => match with_group(3) {
                Err(e) => e,
                Ok(None) => no_such(),
                Ok(Some((_, s))) => self.failover(shared, &s).await,
            },
            "ckquorum" => match with_group(3) {
                Err(e) => e,
                Ok(None) => no_such(),
                Ok(Some((i, s))) => {
                    let g = shared.group_view(i, &s);
                    let (usable, required) = (g.usable_managers(), g.quorum());
                    if usable >= required {
                        Frame::SimpleString(Bytes::from(format!(
                            "OK {usable} usable Sentinels. Quorum and failover authorization \
                             can be reached"
                        )))
                    } else {
                        error(format!(
                            "NOQUORUM {usable} usable Sentinels. Not enough available \
                             Sentinels to reach the specified quorum for this master \
                             ({required} required)"
                        ))
                    }
                }
            },
            "is-master-down-by-addr" => {
                if args.len() != 6 {
                    return arity("sentinel|is-master-down-by-addr");
                }
                if args[4].parse::<i64>().is_err() {
                    return error("ERR value is not an integer or out of range");
                }
                let node = args[3]
                    .parse::<u16>()
                    .ok()
                    .map(|port| NodeAddr::new(args[2].clone(), port));
                let down = node.is_some_and(|n| {
                    shared.snapshots().iter().any(|(_, s)| {
                        s.view.unavailable.contains(&n)
                            && s.topology
                                .as_ref()
                                .is_none_or(|t| t.all_nodes().any(|x| *x == n))
                    })
                });
                // No Sentinel election happens here: never a vote, leader "*", epoch 0.
                Frame::Array(vec![int(i64::from(down)), bulk("*"), int(0)])
            }
            "myid" if args.len() == 2 => bulk(shared.state.manager_id.clone()),
            "myid" => arity("sentinel|myid"),
            "config" => match args.get(2).map(|s| s.to_ascii_lowercase()).as_deref() {
                Some("get") if args.len() == 4 => config_get(&args[3]),
                Some("get") => arity("sentinel|config|get"),
                Some("set") => error(
                    "ERR SENTINEL CONFIG SET is not supported: redis_node_manager is \
                     configured by its flags and config file",
                ),
                _ => error(
                    "ERR Only SENTINEL CONFIG GET <option> / SET <option> <value> are supported.",
                ),
            },
            // No scripts run here, so none is pending.
            "pending-scripts" if args.len() == 2 => Frame::Array(Vec::new()),
            "pending-scripts" => arity("sentinel|pending-scripts"),
            "help" => Frame::Array(HELP.iter().map(|l| simple(l)).collect()),
            "monitor" | "remove" | "set" | "reset" | "flushconfig" | "simulate-failure"
            | "debug" | "info-cache" => error(format!(
                "ERR SENTINEL {} is not supported: redis_node_manager takes its groups from \
                 its configuration and ZooKeeper",
                sub.to_ascii_uppercase()
            )),
            _ => error(format!(
                "ERR unknown subcommand '{}'. Try SENTINEL HELP.",
                args[1]
            )),
        }
    }

    /// Writes a manual failover request for the leader, as `redis_node_manager failover`
    /// does; like Sentinel, answers once it is started, not done.
    async fn failover(&self, shared: &Shared, s: &GroupSnapshot) -> Frame {
        let Some(t) = &s.topology else {
            return error("ERR No topology is published for this master yet");
        };
        if t.slaves.is_empty() {
            return error("NOGOODSLAVE No suitable replica to promote");
        }
        let Some(zk) = shared.state.session.borrow().clone() else {
            return error("ERR No ZooKeeper session right now; try again");
        };
        let paths = match ZnodePaths::new(&s.znode_path) {
            Ok(p) => p,
            Err(e) => return error(format!("ERR {e}")),
        };
        match crate::zk::read_manual(&zk, &paths.manual_failover()).await {
            // An earlier request the leader refused stays in the znode until the next one.
            Ok(Some((data, _))) if ManualRequest::parse(&data) != ManualRequest::Refused => {
                return error("INPROG Failover already in progress")
            }
            Ok(_) => {}
            Err(e) => return error(format!("ERR {e}")),
        }
        match crate::zk::request_manual(&zk, &paths, None).await {
            Ok(()) => {
                info!(
                    "+sentinel-failover {}: requested by Sentinel client {} (id {})",
                    s.name, self.peer, self.id
                );
                ok()
            }
            Err(e) => error(format!("ERR {e}")),
        }
    }
}

/// The global options Sentinel has, with the values that describe this endpoint.
fn config_get(pattern: &str) -> Frame {
    const OPTIONS: &[(&str, &str)] = &[
        ("resolve-hostnames", "no"),
        ("announce-hostnames", "no"),
        ("announce-ip", ""),
        ("announce-port", "0"),
        ("sentinel-user", ""),
        ("sentinel-pass", ""),
    ];
    Frame::Array(
        OPTIONS
            .iter()
            .filter(|(k, _)| glob(pattern.as_bytes(), k.as_bytes(), true))
            .flat_map(|(k, v)| [bulk(*k), bulk(*v)])
            .collect(),
    )
}

const HELP: &[&str] = &[
    "SENTINEL <subcommand> [<arg> [value] [opt] ...]. Subcommands are (answered by \
     redis_node_manager from the topology published in ZooKeeper):",
    "CKQUORUM <master-name>",
    "    Check that enough managers publish fresh views to judge nodes down.",
    "CONFIG GET <param>",
    "    Get a global Sentinel configuration parameter.",
    "GET-MASTER-ADDR-BY-NAME <master-name>",
    "    Return the ip and port number of the master with that name.",
    "FAILOVER <master-name>",
    "    Ask the leading manager for a failover (a switchover while the master is healthy).",
    "IS-MASTER-DOWN-BY-ADDR <ip> <port> <current-epoch> <runid>",
    "    Check if the node is down from this manager's point of view (never votes).",
    "MASTER <master-name>",
    "    Show the state and info of the specified master.",
    "MASTERS",
    "    Show a list of monitored masters and their state.",
    "MYID",
    "    Return the ID of this manager.",
    "REPLICAS <master-name>",
    "    Show a list of replicas for this master and their state.",
    "SENTINELS <master-name>",
    "    Show the other managers of this master.",
    "HELP",
    "    Prints this help.",
];

fn info(shared: &Shared, args: &[String]) -> Frame {
    let all = ["server", "clients", "sentinel"];
    let wanted: Vec<String> = if args.len() == 1 {
        all.iter().map(|s| s.to_string()).collect()
    } else {
        args[1..].iter().map(|s| s.to_ascii_lowercase()).collect()
    };
    let everything = wanted
        .iter()
        .any(|w| matches!(w.as_str(), "all" | "everything" | "default"));
    let mut sections = Vec::new();
    for name in all {
        if !everything && !wanted.iter().any(|w| w == name) {
            continue;
        }
        let mut lines: Vec<String> = Vec::new();
        match name {
            "server" => {
                let uptime = shared.started.elapsed().as_secs();
                lines.extend([
                    "# Server".to_string(),
                    format!("redis_version:{REDIS_VERSION}"),
                    "redis_mode:sentinel".to_string(),
                    format!("redis_failover_version:{}", env!("CARGO_PKG_VERSION")),
                    format!("manager_id:{}", shared.state.manager_id),
                    format!("process_id:{}", std::process::id()),
                    format!("run_id:{}", shared.state.manager_id),
                    format!("tcp_port:{}", shared.state.port),
                    format!("server_time_usec:{}", unix_ms() * 1000),
                    format!("uptime_in_seconds:{uptime}"),
                    format!("uptime_in_days:{}", uptime / 86_400),
                ]);
            }
            "clients" => lines.extend([
                "# Clients".to_string(),
                format!("connected_clients:{}", shared.connected_clients()),
                format!("maxclients:{MAX_CLIENTS}"),
            ]),
            _ => {
                let snaps = shared.snapshots();
                lines.extend([
                    "# Sentinel".to_string(),
                    format!("sentinel_masters:{}", snaps.len()),
                    "sentinel_tilt:0".to_string(),
                    "sentinel_tilt_since_seconds:-1".to_string(),
                    "sentinel_running_scripts:0".to_string(),
                    "sentinel_scripts_queue_length:0".to_string(),
                    "sentinel_simulate_failure_flags:0".to_string(),
                ]);
                for (n, (i, s)) in snaps.iter().enumerate() {
                    lines.push(shared.group_view(*i, s).info_line(n));
                }
            }
        }
        sections.push(lines.join("\r\n") + "\r\n");
    }
    bulk(sections.join("\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{GroupSettings, NodeReport};

    fn a(s: &str) -> NodeAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn globs_match_like_redis() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "+switch-master", true),
            ("+s*", "+sdown", true),
            ("+s*", "-sdown", false),
            ("?sdown", "-sdown", true),
            ("[-+]sdown", "-sdown", true),
            ("[^+]sdown", "+sdown", false),
            ("[a-c]x", "bx", true),
            ("*down", "+odown", true),
            ("*down*", "+odown", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("\\*", "*", true),
            ("\\*", "x", false),
            ("", "", true),
            ("", "x", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob(p.as_bytes(), t.as_bytes(), false), *want, "{p} ~ {t}");
        }
        assert!(glob(b"RESOLVE-*", b"resolve-hostnames", true));
        assert!(!glob(b"RESOLVE-*", b"resolve-hostnames", false));
    }

    #[test]
    fn inline_and_resp_requests_decode() {
        let mut c = Codec::default();
        let mut buf = BytesMut::from(&b"\r\nPING  hello\r\n*1\r\n$4\r\nROLE\r\nSENT"[..]);
        let words = |f: Frame| request_args(f).expect("array of strings");
        assert_eq!(
            words(c.decode(&mut buf).expect("ok").expect("inline")),
            ["PING", "hello"]
        );
        assert_eq!(
            words(c.decode(&mut buf).expect("ok").expect("resp")),
            ["ROLE"]
        );
        assert!(c.decode(&mut buf).expect("ok").is_none(), "incomplete line");
        let mut huge = BytesMut::from(vec![b'x'; MAX_INLINE_BYTES + 1].as_slice());
        assert!(c.decode(&mut huge).is_err());
        let mut huge = BytesMut::from(&b"*1\r\n$99999999\r\n"[..]);
        huge.extend_from_slice(&vec![b'x'; MAX_REQUEST_BYTES + 1]);
        assert!(c.decode(&mut huge).is_err());
    }

    #[test]
    fn unknown_commands_are_reported_like_redis() {
        let args: Vec<String> = ["foo", "bar", "baz"].map(String::from).to_vec();
        assert_eq!(
            unknown_command(&args),
            error("ERR unknown command 'foo', with args beginning with: 'bar' 'baz' ")
        );
        let long = vec!["x".to_string(), "y".repeat(300), "z".into()];
        let Frame::Error(msg) = unknown_command(&long) else {
            panic!("an error")
        };
        assert!(msg.len() < 200, "{msg}");
        assert_eq!(error("a\r\nb"), error("a  b"));
    }

    fn snapshot(topology: Topology) -> GroupSnapshot {
        GroupSnapshot {
            name: "g".into(),
            znode_path: "/r".into(),
            topology: Some(topology),
            settings: GroupSettings {
                down_after_ms: 1000,
                required_node_managers: 1,
                ..GroupSettings::default()
            },
            ..GroupSnapshot::default()
        }
    }

    fn get<'a>(f: &'a [(&'static str, String)], k: &str) -> &'a str {
        f.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no field {k} in {f:?}"))
    }

    #[test]
    fn masters_and_replicas_carry_sentinel_flags() {
        let mut s = snapshot(Topology {
            master: Some(a("h:1")),
            slaves: vec![a("h:2")],
            unavailable: vec![a("h:3")],
            epoch: 4,
            ..Topology::default()
        });
        s.nodes.insert(
            a("h:2"),
            NodeReport {
                link_up: true,
                offset: Some(77),
                priority: Some(10),
                master: Some(a("h:1")),
                ..NodeReport::default()
            },
        );
        s.view.unavailable.push(a("h:3"));
        let g = GroupView::new(&s, None, "me", 10_000);
        let m = g.master_fields();
        assert_eq!(get(&m, "name"), "g");
        assert_eq!((get(&m, "ip"), get(&m, "port")), ("h", "1"));
        assert_eq!(get(&m, "flags"), "master");
        assert_eq!(get(&m, "config-epoch"), "4");
        assert_eq!(get(&m, "num-slaves"), "2");
        assert_eq!(get(&m, "quorum"), "1");
        assert_eq!(get(&m, "down-after-milliseconds"), "1000");
        assert_eq!(g.replicas(), vec![a("h:2"), a("h:3")]);
        let r = g.replica_fields(&a("h:2"));
        assert_eq!(get(&r, "name"), "h:2");
        assert_eq!(get(&r, "flags"), "slave");
        assert_eq!(get(&r, "master-link-status"), "ok");
        assert_eq!(get(&r, "slave-repl-offset"), "77");
        assert_eq!(get(&r, "slave-priority"), "10");
        assert_eq!((get(&r, "master-host"), get(&r, "master-port")), ("h", "1"));
        let down = g.replica_fields(&a("h:3"));
        assert_eq!(get(&down, "flags"), "s_down,slave,disconnected");
        assert_eq!(get(&down, "master-link-status"), "err");
        assert_eq!(
            g.info_line(0),
            "master0:name=g,status=ok,address=h:1,slaves=2,sentinels=1"
        );

        // No master published: the last one is shown, objectively down.
        let s = snapshot(Topology {
            master: None,
            unavailable: vec![a("h:1"), a("h:2")],
            ..Topology::default()
        });
        let g = GroupView::new(&s, Some(a("h:1")), "me", 10_000);
        let m = g.master_fields();
        assert_eq!((get(&m, "ip"), get(&m, "port")), ("h", "1"));
        assert!(get(&m, "flags").starts_with("s_down,o_down,master"));
        assert_eq!(g.replicas(), vec![a("h:2")]);
        assert!(g.info_line(0).contains("status=odown"));
        let g = GroupView::new(&s, None, "me", 10_000);
        let m = g.master_fields();
        assert_eq!((get(&m, "ip"), get(&m, "port")), ("?", "0"));
    }

    #[test]
    fn quorum_comes_from_fresh_views() {
        let mut s = snapshot(Topology {
            master: Some(a("h:1")),
            ..Topology::default()
        });
        s.settings.required_node_managers = 2;
        let view = |at_ms, down: &[&str]| ManagerView {
            at_ms,
            unavailable: down.iter().map(|d| a(d)).collect(),
            ..ManagerView::default()
        };
        s.views.insert("me".into(), view(1_000, &[]));
        s.view = view(9_500, &["h:1"]);
        s.views.insert("other".into(), view(9_000, &["h:1"]));
        s.views.insert("stale".into(), view(1_000, &["h:1"]));
        s.managers_in_line = vec!["other".into(), "me".into()];
        let g = GroupView::new(&s, None, "me", 10_000);
        assert_eq!(g.usable_managers(), 2);
        assert_eq!(g.odown_quorum(&a("h:1")), (2, 2));
        assert_eq!(g.master_down(), (true, true));
        assert_eq!(g.other_managers(), vec!["other", "stale"]);
        let stale = g.manager_fields("stale");
        assert_eq!(get(&stale, "flags"), "s_down,sentinel");
        assert_eq!(get(&stale, "runid"), "stale");
    }
}
