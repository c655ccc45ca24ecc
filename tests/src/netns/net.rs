//! [`Net`]: a Linux bridge and one network namespace per host, each joined to the bridge by a
//! veth pair, with an address of its own; removed again on drop (also after a panic), and
//! leftovers of crashed runs removed at creation.
//!
//! Names: everything this harness creates starts with [`PREFIX`] followed by the owning
//! process's pid and a per-process counter in hex (`rfn1f2a_3`): the bridge `<tag>b`, the
//! host-side veths `<tag>v<i>`, the namespaces `<tag>_<host>` (the namespace side of each veth
//! is its `eth0`). Interface names stay within Linux's 15 characters.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use super::cmd::{ip, iptables};
use crate::process::Place;
use crate::util::{lock, pid_alive};

/// The first characters of every name this harness gives a namespace or an interface.
pub const PREFIX: &str = "rfn";
/// The chains of the partition rules in each host (jumped to from `INPUT -i eth0` and
/// `OUTPUT -o eth0`, so a host's traffic to itself is never cut).
pub(crate) const CHAIN_IN: &str = "RFN_IN";
pub(crate) const CHAIN_OUT: &str = "RFN_OUT";

/// Hosts one net can have (host `i` gets `.10 + i`, its veth `<tag>v<i hex>`).
const MAX_HOSTS: usize = 16;

/// One host: a network namespace with one interface (`eth0`) on the bridge.
#[derive(Clone, Debug)]
pub struct Host {
    /// The name given to [`Net::new`].
    pub name: String,
    /// The network namespace (`/var/run/netns/<ns>`).
    pub ns: String,
    /// Its address on the bridge.
    pub ip: String,
    pub(crate) veth: String,
}

impl Host {
    /// Where a process runs on this host: its address, and `ip netns exec <ns>`.
    pub fn place(&self) -> Place {
        Place {
            ip: self.ip.clone(),
            prefix: vec!["ip".into(), "netns".into(), "exec".into(), self.ns.clone()],
        }
    }
}

/// A bridge and its hosts (see the module documentation). The test process reaches every
/// host through the bridge's address ([`Net::bridge_ip`]) while the host is not isolated.
///
/// Declare it before the processes that run on it, so that they are dropped first.
#[derive(Debug)]
pub struct Net {
    pub(crate) bridge: String,
    pub(crate) subnet: [u8; 3],
    pub(crate) hosts: Vec<Host>,
}

/// A /24 in 10.200.0.0–10.254.255.0, from a number.
fn subnet_of(k: u32) -> [u8; 3] {
    [10, 200 + ((k / 256) % 55) as u8, (k % 256) as u8]
}

/// Whether `subnet`/24 overlaps an IPv4 route of the root namespace (every address the
/// machine has comes with one).
fn subnet_in_use(subnet: [u8; 3], routes: &str) -> bool {
    let ours = u32::from(Ipv4Addr::new(subnet[0], subnet[1], subnet[2], 0));
    routes.lines().any(|l| {
        let Some(dest) = l.split_whitespace().next() else {
            return false;
        };
        let (addr, len) = dest.split_once('/').unwrap_or((dest, "32"));
        let (Ok(addr), Ok(len)) = (addr.parse::<Ipv4Addr>(), len.parse::<u32>()) else {
            return false;
        };
        // the two prefixes overlap when they agree on the shorter one's bits
        let common = len.min(24);
        let mask = if common == 0 {
            0
        } else {
            u32::MAX << (32 - common)
        };
        (u32::from(addr) & mask) == (ours & mask)
    })
}

/// The pid in a harness name (`rfn<pid hex>_...`), if it is one.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let hex = rest.split('_').next()?;
    u32::from_str_radix(hex, 16).ok()
}

/// The namespaces and interfaces with the harness's prefix that exist now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    pub namespaces: Vec<String>,
    pub links: Vec<String>,
}

/// Lists [`Leftovers`] (`ip netns list`, `ip -o link show`).
pub fn leftovers() -> Result<Leftovers, String> {
    let namespaces = ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_string)
        .collect();
    // `12: rfn1f2a_3v0@if2: <...` : the name is the second field, without `@peer` and `:`
    let links = ip(&["-o", "link", "show"])?
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|f| f.trim_end_matches(':').split('@').next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_string)
        .collect();
    Ok(Leftovers { namespaces, links })
}

/// Removes namespaces and interfaces with the harness's names whose owning process is gone
/// (a run that crashed or was killed before its [`Net`] dropped). Errors are reported, not
/// fatal.
pub fn remove_stale() {
    let stale = |name: &str| owner_pid(name).is_some_and(|pid| !pid_alive(pid));
    let found = match leftovers() {
        Ok(f) => f,
        Err(e) => return eprintln!("netns: cannot list leftovers: {e}"),
    };
    for ns in found.namespaces.iter().filter(|n| stale(n)) {
        if let Err(e) = ip(&["netns", "del", ns]) {
            eprintln!("netns: cannot remove stale namespace {ns}: {e}");
        }
    }
    for link in found.links.iter().filter(|n| stale(n)) {
        // a veth may already be gone with its peer or its bridge
        let _ = ip(&["link", "del", link]);
    }
}

impl Net {
    /// Creates the bridge and one host per name (at most 16; names of letters, digits and
    /// `_`, at most 20 characters), after removing stale leftovers ([`remove_stale`]).
    /// `Err` names the command that failed; whatever was created by then is removed.
    pub fn new(names: &[&str]) -> Result<Net, String> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        static CREATE: Mutex<()> = Mutex::new(());
        if names.len() > MAX_HOSTS {
            return Err(format!("Net::new: at most {MAX_HOSTS} hosts"));
        }
        for n in names {
            if n.is_empty()
                || n.len() > 20
                || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(format!("Net::new: bad host name {n:?}"));
            }
        }
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{PREFIX}{pid:x}_{n:x}");
        // One creation at a time in this process: the subnet check and the bridge's address
        // are one step.
        let _one = lock(&CREATE);
        remove_stale();
        let routes = ip(&["-4", "route", "show", "table", "all"])?;
        let start = pid.wrapping_mul(31).wrapping_add(n.wrapping_mul(7));
        let subnet = (0..55 * 256)
            .map(|i| subnet_of(start.wrapping_add(i)))
            .find(|s| !subnet_in_use(*s, &routes))
            .ok_or("Net::new: no free /24 in 10.200.0.0/16–10.254.0.0/16")?;
        let mut net = Net {
            bridge: format!("{tag}b"),
            subnet,
            hosts: Vec::new(),
        };
        // From here on, a failure drops `net`, which removes what exists.
        let br = net.bridge.clone();
        ip(&["link", "add", &br, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", net.bridge_ip()),
            "dev",
            &br,
        ])?;
        ip(&["link", "set", &br, "up"])?;
        for (i, name) in names.iter().enumerate() {
            let host = Host {
                name: name.to_string(),
                ns: format!("{tag}_{name}"),
                ip: net.addr(10 + i as u8),
                veth: format!("{tag}v{i:x}"),
            };
            net.hosts.push(host.clone());
            add_host(&host, &br)?;
        }
        Ok(net)
    }

    /// `a.b.c.last` in this net's subnet.
    fn addr(&self, last: u8) -> String {
        let [a, b, c] = self.subnet;
        format!("{a}.{b}.{c}.{last}")
    }

    /// The bridge's address in the root namespace (`.1`): where the test process's packets
    /// to a host come from.
    pub fn bridge_ip(&self) -> String {
        self.addr(1)
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// Every host, in the order given to [`Net::new`].
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Result<&Host, String> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| format!("no host {name:?} in this net"))
    }

    /// The namespaces and interfaces this net owns (the namespace side of the veths lives
    /// and dies in its namespace).
    pub fn owned_names(&self) -> Vec<String> {
        let mut names = vec![self.bridge.clone()];
        for h in &self.hosts {
            names.push(h.ns.clone());
            names.push(h.veth.clone());
        }
        names
    }
}

/// The namespace, the veth pair (`eth0` inside), the address, and the partition chains.
fn add_host(h: &Host, bridge: &str) -> Result<(), String> {
    let ns = h.ns.as_str();
    ip(&["netns", "add", ns])?;
    ip(&[
        "link", "add", &h.veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
    ])?;
    ip(&["link", "set", &h.veth, "master", bridge])?;
    ip(&["link", "set", &h.veth, "up"])?;
    ip(&[
        "-n",
        ns,
        "addr",
        "add",
        &format!("{}/24", h.ip),
        "dev",
        "eth0",
    ])?;
    ip(&["-n", ns, "link", "set", "eth0", "up"])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    iptables(ns, &["-N", CHAIN_IN])?;
    iptables(ns, &["-N", CHAIN_OUT])?;
    iptables(ns, &["-A", "INPUT", "-i", "eth0", "-j", CHAIN_IN])?;
    iptables(ns, &["-A", "OUTPUT", "-o", "eth0", "-j", CHAIN_OUT])?;
    Ok(())
}

impl Drop for Net {
    /// Removes the veths, the namespaces (their rules go with them) and the bridge. A
    /// namespace that a process still runs in lives on until it exits, unreachable.
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = ip(&["link", "del", &h.veth]);
            if let Err(e) = ip(&["netns", "del", &h.ns]) {
                eprintln!("netns: {e}");
            }
        }
        if let Err(e) = ip(&["link", "del", &self.bridge]) {
            eprintln!("netns: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_subnets() {
        assert_eq!(owner_pid("rfn1f2a_3b"), Some(0x1f2a));
        assert_eq!(owner_pid("rfn1f2a_3_zk"), Some(0x1f2a));
        assert_eq!(owner_pid("eth0"), None);
        // the longest interface name fits Linux's 15 characters
        let tag = format!("{PREFIX}{:x}_{:x}", u32::MAX >> 10, 0xffu32);
        assert!(format!("{tag}v{:x}", MAX_HOSTS - 1).len() <= 15);
        let routes = "default via 10.0.0.1 dev eth0\n10.200.3.0/24 dev x\n10.201.0.0/16 dev y\n";
        assert!(subnet_in_use([10, 200, 3], routes));
        assert!(subnet_in_use([10, 201, 77], routes));
        assert!(!subnet_in_use([10, 200, 4], routes));
        assert!(subnet_in_use([10, 200, 4], "0.0.0.0/0 dev z\n"));
        assert_eq!(subnet_of(256 * 55 + 3), [10, 200, 3]);
    }
}
