//! The connection set: for each published topology, one shared connection per node
//! ([`NodeConn`], opened on first use, reopened after it breaks) grouped as [`Conns`], and
//! the task ([`follow`]) that rebuilds it whenever the watcher publishes a new topology,
//! keeping the connections to nodes that remain and ending the master's term when the
//! master changes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisResult};
use tokio::sync::watch;
use tracing::debug;

use crate::synchronous::Syncer;
use crate::term::{MasterTerm, Watchers};
use crate::watcher::{self, TopologyView};
use crate::wire::{NodeAddr, Topology};

/// Opens connections to nodes with the client's credentials and deadlines.
#[derive(Clone)]
pub(crate) struct Opener {
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) db: i64,
    pub(crate) tls: Option<crate::Tls>,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
}

impl Opener {
    pub(crate) async fn open(&self, addr: &NodeAddr) -> RedisResult<MultiplexedConnection> {
        self.open_with(addr, Some(self.command_timeout)).await
    }

    /// A connection whose replies may take `response_timeout` (`None`: no bound, for
    /// `BLPOP key 0`).
    pub(crate) async fn open_with(
        &self,
        addr: &NodeAddr,
        response_timeout: Option<Duration>,
    ) -> RedisResult<MultiplexedConnection> {
        // No CLIENT SETINFO round trip: connecting costs one TCP handshake (plus AUTH/SELECT
        // when configured).
        let mut settings = redis::RedisConnectionInfo::default()
            .set_db(self.db)
            .set_skip_set_lib_name();
        if let Some(u) = &self.username {
            settings = settings.set_username(u);
        }
        if let Some(p) = &self.password {
            settings = settings.set_password(p);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(response_timeout);
        let (client, config) = match &self.tls {
            Some(tls) => tls.redis_client(addr, settings, config)?,
            None => {
                let info = ConnectionAddr::Tcp(addr.host.clone(), addr.port)
                    .into_connection_info()?
                    .set_redis_settings(settings);
                (redis::Client::open(info)?, config)
            }
        };
        match tokio::time::timeout(
            self.connect_timeout + Duration::from_millis(50),
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        {
            Ok(Ok(mut conn)) => match &self.tls {
                // Under TLS 1.3 the node checks a client certificate after the handshake
                // has completed on this side: a refusal shows at the first reply, said here
                // rather than as a broken pipe on the caller's command.
                // Any reply (even an error: PING may be denied by ACL) means it was accepted.
                Some(tls) => match redis::cmd("PING").query_async::<()>(&mut conn).await {
                    Err(e) if e.is_io_error() || e.is_connection_dropped() => {
                        Err(crate::tls::explain(tls, addr, e, self.connect_timeout).await)
                    }
                    _ => Ok(conn),
                },
                None => Ok(conn),
            },
            Ok(Err(e)) => match &self.tls {
                Some(tls) => Err(crate::tls::explain(tls, addr, e, self.connect_timeout).await),
                None => Err(e),
            },
            Err(_) => Err(crate::error::io_error(format!(
                "connecting to {addr} timed out after {} ms",
                self.connect_timeout.as_millis()
            ))),
        }
    }
}

/// One connection object and its group commit for synchronous mode ([`Syncer`]): they live
/// and die together, so a `WAIT` is never sent on another connection than its writes'.
#[derive(Clone)]
pub(crate) struct Conn {
    pub(crate) redis: MultiplexedConnection,
    pub(crate) syncer: Arc<Syncer>,
}

impl Conn {
    pub(crate) fn new(redis: MultiplexedConnection) -> Self {
        Conn {
            redis,
            syncer: Arc::new(Syncer::new()),
        }
    }
}

/// One node's connection, opened on first use and reopened after it breaks.
pub(crate) struct NodeConn {
    pub(crate) addr: NodeAddr,
    pub(crate) conn: RwLock<Option<Conn>>,
}

impl NodeConn {
    pub(crate) fn new(addr: NodeAddr) -> Self {
        Self {
            addr,
            conn: RwLock::new(None),
        }
    }

    pub(crate) async fn get(&self, opener: &Opener) -> RedisResult<Conn> {
        if let Some(c) = self.conn.read().ok().and_then(|g| g.clone()) {
            return Ok(c);
        }
        let c = Conn::new(opener.open(&self.addr).await?);
        if let Ok(mut g) = self.conn.write() {
            *g = Some(c.clone());
        }
        Ok(c)
    }

    /// Drops the connection `used` failed on (any connection when `None`) and closes its
    /// group commit: its writes still waiting for a `WAIT` fail. A newer connection that
    /// replaced it is kept.
    pub(crate) fn invalidate(&self, used: Option<&Conn>) {
        if let Some(u) = used {
            u.syncer.close();
        }
        if let Ok(mut g) = self.conn.write() {
            let same = match (g.as_ref(), used) {
                (Some(c), Some(u)) => Arc::ptr_eq(&c.syncer, &u.syncer),
                _ => true,
            };
            if same {
                if let Some(c) = g.take() {
                    c.syncer.close();
                }
            }
        }
    }
}

/// The connections for one topology.
pub(crate) struct Conns {
    pub(crate) topology: Topology,
    pub(crate) version: i32,
    pub(crate) master: Option<Arc<NodeConn>>,
    /// Present with `master`; shared with the previous topology's when the master is the same.
    pub(crate) term: Option<Arc<MasterTerm>>,
    pub(crate) replicas: Vec<Arc<NodeConn>>,
}

impl Conns {
    /// Connections for `view`, keeping those of `previous` to nodes that remain (a
    /// connection does not care about its node's role); the others are dropped, which closes
    /// them.
    pub(crate) fn build(view: &TopologyView, previous: Option<&Conns>) -> Conns {
        let reuse = |addr: &NodeAddr| -> Arc<NodeConn> {
            previous
                .and_then(|p| {
                    p.master
                        .iter()
                        .chain(p.replicas.iter())
                        .find(|c| c.addr == *addr)
                        .cloned()
                })
                .unwrap_or_else(|| Arc::new(NodeConn::new(addr.clone())))
        };
        let master = view.topology.master.as_ref().map(reuse);
        let term = master.as_ref().map(|m| {
            previous
                .and_then(|p| p.master.as_ref().zip(p.term.as_ref()))
                .filter(|(pm, _)| pm.addr == m.addr)
                .map_or_else(|| Arc::new(MasterTerm::default()), |(_, t)| t.clone())
        });
        Conns {
            topology: view.topology.clone(),
            version: view.version,
            master,
            term,
            replicas: view.topology.slaves.iter().map(reuse).collect(),
        }
    }

    /// The master's term in `self` when `next` no longer continues it.
    pub(crate) fn term_ended_by(&self, next: &Conns) -> Option<Arc<MasterTerm>> {
        let term = self.term.as_ref()?;
        let continued = next.term.as_ref().is_some_and(|t| Arc::ptr_eq(t, term));
        (!continued).then(|| term.clone())
    }

    /// Opens every connection now (bounded), so the first commands do not pay for it.
    pub(crate) async fn warm_up(&self, opener: &Opener) {
        let all = self.master.iter().chain(self.replicas.iter());
        futures::future::join_all(all.map(|c| async move {
            if let Err(e) = c.get(opener).await {
                debug!(
                    "redis_failover client: cannot connect to {} yet: {e}",
                    c.addr
                );
            }
        }))
        .await;
    }
}

/// Rebuilds the connections whenever the watcher publishes a new topology.
pub(crate) async fn follow(
    mut rx: watch::Receiver<TopologyView>,
    conns: Arc<RwLock<Arc<Conns>>>,
    generation: Arc<AtomicU64>,
    generation_tx: Arc<watch::Sender<u64>>,
    watchers: Arc<Watchers>,
    opener: Opener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = watcher::stopped(&mut shutdown) => return,
        }
        let view = rx.borrow_and_update().clone();
        let (next, ended) = {
            let Ok(current) = conns.read() else { return };
            if current.version == view.version && current.topology.same_content(&view.topology) {
                continue;
            }
            let next = Arc::new(Conns::build(&view, Some(&current)));
            let ended = current.term_ended_by(&next);
            (next, ended)
        };
        if let Ok(mut g) = conns.write() {
            *g = next.clone();
        }
        bump(&generation, &generation_tx);
        // After the swap and the bump: a request woken (or refused) here finds the new
        // connections when it retries.
        if let Some(term) = ended {
            watchers.end(&term);
        }
        debug!(
            "redis_failover client: topology version {} epoch {} master {:?}",
            view.version, view.topology.epoch, view.topology.master
        );
        next.warm_up(&opener).await;
    }
}

/// Moves the generation on: every handle drops its connections on its next command.
pub(crate) fn bump(generation: &AtomicU64, tx: &watch::Sender<u64>) {
    let g = generation.fetch_add(1, Ordering::AcqRel) + 1;
    tx.send_replace(g);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(master: Option<&str>, slaves: &[&str], version: i32) -> TopologyView {
        TopologyView {
            topology: Topology {
                master: master.map(|m| m.parse().expect("addr")),
                slaves: slaves.iter().map(|s| s.parse().expect("addr")).collect(),
                ..Topology::default()
            },
            version,
            fetched_at: std::time::Instant::now(),
            stale_since: None,
        }
    }

    #[test]
    fn a_master_term_lasts_until_another_master_or_none_is_named() {
        let a = Conns::build(&view(Some("10.0.0.1:6379"), &["10.0.0.2:6379"], 1), None);
        // Replicas change, the master stays: the same term.
        let b = Conns::build(&view(Some("10.0.0.1:6379"), &[], 2), Some(&a));
        assert!(a.term_ended_by(&b).is_none());
        // Another master: the term ends.
        let c = Conns::build(
            &view(Some("10.0.0.2:6379"), &["10.0.0.1:6379"], 3),
            Some(&b),
        );
        assert!(a.term_ended_by(&c).is_some() && b.term_ended_by(&c).is_some());
        // No master: it ends too.
        let none = Conns::build(&view(None, &["10.0.0.1:6379"], 4), Some(&c));
        assert!(none.term.is_none() && c.term_ended_by(&none).is_some());
        // The first master again: a term of its own, which an old request cannot share.
        let d = Conns::build(&view(Some("10.0.0.1:6379"), &[], 5), Some(&none));
        let (old, new) = (a.term.expect("term"), d.term.expect("term"));
        assert!(!Arc::ptr_eq(&old, &new));
    }
}
