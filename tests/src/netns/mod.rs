//! A Jepsen-style network for partition tests on one machine: "hosts" are Linux network
//! namespaces joined by a bridge ([`Net`]), processes run on a host through its [`Place`]
//! (`ip netns exec NS ...`: [`crate::RedisNode::start_at`], [`crate::ZkServer::start_at`],
//! [`crate::manager::ManagerSet::add_at`]), in-process clients run on a host's thread
//! ([`Host::spawn`]), and partitions are iptables rules inside the namespaces
//! ([`Net::isolate`], [`Net::cut`], [`Net::heal_all`], [`Net::flap`]; [`Mode::Drop`] gives
//! timeouts, [`Mode::Reject`] immediate resets).
//!
//! It needs root, `ip` (iproute2) and `iptables` ([`available`]); a test without them calls
//! [`skip_unless_available`], which says so loudly on stderr — or fails the test when
//! `RF_REQUIRE_NETNS=1` (as `.ci/run` sets), so that CI never passes by skipping.
//!
//! The modules: `cmd` (the bounded `ip`/`iptables` commands), `net` (the bridge, the hosts,
//! cleanup), `rules` (partitions), `thread` (code on a host).
//!
//! [`Place`]: crate::Place

pub(crate) mod cmd;
mod net;
mod rules;
mod thread;

use std::sync::OnceLock;

pub use cmd::ip;
pub use net::{leftovers, remove_stale, Host, Leftovers, Net, PREFIX};
pub use rules::{Cut, Mode};
pub use thread::HostTask;

use cmd::{iptables, tool};

/// The environment variable that turns a skip into a failure.
pub const REQUIRE_ENV: &str = "RF_REQUIRE_NETNS";

/// Whether this process can build a [`Net`]: root, `ip` and `iptables` found, and a probe
/// namespace can be created, given an iptables chain and removed. `Err` says what is missing
/// in one line. Probed once per process.
pub fn available() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE.get_or_init(probe).clone()
}

fn probe() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Err(format!("not root (euid {euid})"));
    }
    for (program, package) in [("ip", "iproute2"), ("iptables", "iptables")] {
        if tool(program).is_none() {
            return Err(format!(
                "{program} not found: apt-get install {package} (or run .ci/run)"
            ));
        }
    }
    remove_stale();
    let ns = format!("{PREFIX}{:x}_probe", std::process::id());
    ip(&["netns", "add", &ns]).map_err(|e| format!("cannot create a namespace: {e}"))?;
    let chain = iptables(&ns, &["-N", "RFN_PROBE"]).map(|_| ());
    let removed = ip(&["netns", "del", &ns]);
    chain.map_err(|e| format!("iptables does not work in a namespace: {e}"))?;
    removed.map_err(|e| format!("cannot remove a namespace: {e}"))?;
    Ok(())
}

/// `true` when the partition harness can run. Otherwise prints
/// `SKIPPED (needs root and iptables): <test>: <why>` to stderr and returns `false` (the
/// caller returns) — or panics with that line when `RF_REQUIRE_NETNS=1`.
pub fn skip_unless_available(test: &str) -> bool {
    crate::util::run_or_skip("root and iptables", REQUIRE_ENV, test, available())
}
