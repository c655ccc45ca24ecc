//! A throwaway ZooKeeper ensemble on loopback, or with each member at a [`Place`] of its own
//! (a network-namespace host), shaped as production runs one: 3 servers (each its own client,
//! quorum and election port), `forceSync=yes`, ZooKeeper's sample `tickTime=2000`,
//! `initLimit=10`, `syncLimit=5` (so sessions last 4 to 40 s). Members can be killed and
//! started again one by one; dropping the ensemble stops them all.

use std::time::{Duration, Instant};

use crate::process::Place;
use crate::util::free_port;
use crate::zookeeper::ZkServer;

/// How long an ensemble may take to elect a leader and serve.
const ENSEMBLE_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Three (or N) ZooKeeper servers that form one quorum.
pub struct ZkEnsemble {
    members: Vec<ZkServer>,
}

impl ZkEnsemble {
    /// Starts `n` servers on loopback on free ports and waits until every one serves (one
    /// leader, the others following).
    ///
    /// # Panics
    /// If ZooKeeper is missing or the ensemble does not form within 60 s (with the tail of
    /// each member's log).
    pub fn start(n: usize) -> ZkEnsemble {
        ZkEnsemble::start_at(&vec![Place::loopback(); n])
    }

    /// [`ZkEnsemble::start`] with member `i` (id `i + 1`) at `places[i]`: it binds its
    /// client, quorum and election ports on that place's address (a network-namespace
    /// host's own IP, see [`crate::netns::Host::place`]), and the `server.N=` lines name
    /// those addresses, so that cutting a host's links cuts that member from the others.
    ///
    /// # Panics
    /// As [`ZkEnsemble::start`].
    pub fn start_at(places: &[Place]) -> ZkEnsemble {
        let mut last_err = String::new();
        // A port picked by free_port() may be taken before a member binds it: that member
        // exits at once, and the whole ensemble is tried again on other ports.
        for _ in 0..3 {
            let ports: Vec<(u16, u16, u16)> = places
                .iter()
                .map(|_| (free_port(), free_port(), free_port()))
                .collect();
            let servers: String = ports
                .iter()
                .zip(places)
                .enumerate()
                .map(|(i, ((_, quorum, election), place))| {
                    format!("server.{}={}:{quorum}:{election}\n", i + 1, place.ip)
                })
                .collect();
            let members: Vec<ZkServer> = ports
                .iter()
                .zip(places)
                .enumerate()
                .map(|(i, ((client, _, _), place))| {
                    ZkServer::member(i as u32 + 1, place, *client, &servers)
                })
                .collect();
            let ensemble = ZkEnsemble { members };
            let all: Vec<usize> = (0..places.len()).collect();
            match ensemble.start_members(&all) {
                Ok(()) => return ensemble,
                Err(e) => last_err = e,
            }
        }
        panic!("{last_err}");
    }

    /// `IP1:P1,IP2:P2,...` (`127.0.0.1:P1,...` on loopback), as ZooKeeper clients take a
    /// server list.
    pub fn connect_string(&self) -> String {
        crate::comma_list(self.members.iter().map(ZkServer::connect_string))
    }

    pub fn member(&self, i: usize) -> &ZkServer {
        &self.members[i]
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member that says `Mode: leader`, if one does now.
    pub fn leader(&self) -> Option<usize> {
        (0..self.members.len()).find(|i| self.members[*i].mode().as_deref() == Some("leader"))
    }

    /// The members that say `Mode: follower` now.
    pub fn followers(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|i| self.members[*i].mode().as_deref() == Some("follower"))
            .collect()
    }

    /// Waits (up to 60 s) until one member leads; returns it.
    ///
    /// # Panics
    /// If none does in time.
    pub fn wait_leader(&self) -> usize {
        let deadline = Instant::now() + ENSEMBLE_READY_TIMEOUT;
        loop {
            if let Some(i) = self.leader() {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "no ZooKeeper leader within {ENSEMBLE_READY_TIMEOUT:?}; modes: {:?}",
                self.modes()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Each member's `Mode:` (`None`: not serving).
    pub fn modes(&self) -> Vec<Option<String>> {
        self.members.iter().map(ZkServer::mode).collect()
    }

    /// The session ids (`sid=0x...` of `cons`) connected to member `i` now.
    pub fn sessions_on(&self, i: usize) -> Vec<String> {
        self.members[i].session_ids()
    }

    /// Starts members `which` again (on their ports, with their data) and waits until each
    /// serves. Several at once when a quorum needs them all.
    ///
    /// # Panics
    /// If they do not serve within 60 s.
    pub fn restart(&self, which: &[usize]) {
        for i in which {
            self.members[*i].stop();
        }
        if let Err(e) = self.start_members(which) {
            panic!("{e}");
        }
    }

    fn start_members(&self, which: &[usize]) -> Result<(), String> {
        for i in which {
            self.members[*i].spawn()?;
        }
        let deadline = Instant::now() + ENSEMBLE_READY_TIMEOUT;
        for i in which {
            self.members[*i].wait_serving(deadline)?;
        }
        Ok(())
    }
}
