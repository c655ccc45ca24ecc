//! Sentinel's event messages (`+switch-master`, `+sdown`, `+odown`, `+slave`, ...) derived
//! from two successive published topologies of a group, so that the Sentinel endpoint can
//! publish what a real Sentinel would have published for the same change. Pure: no I/O.
//!
//! Formats are Sentinel's: `+switch-master <name> <oldip> <oldport> <newip> <newport>`, and
//! for instance events `<type> <name> <ip> <port> @ <master-name> <master-ip> <master-port>`
//! (a master is `master <name> <ip> <port>`, a replica is `slave <ip:port> <ip> <port> @ ...`).

use redis_failover_client::{NodeAddr, Topology};

/// One message, published on the channel named after the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub channel: &'static str,
    pub message: String,
}

/// A change of one group's published topology.
#[derive(Clone, Copy, Debug)]
pub struct Change<'a> {
    /// The group's name (its Sentinel master name).
    pub group: &'a str,
    pub old: &'a Topology,
    pub new: &'a Topology,
    /// The last master published before `old`, used when `old` has none: Sentinel keeps
    /// talking about a down master by its address until another one replaces it.
    pub last_master: Option<&'a NodeAddr>,
    /// `#quorum N/M` of `+odown`: managers that see the master down, managers required.
    pub quorum: (usize, usize),
}

fn event(channel: &'static str, message: String) -> Event {
    Event { channel, message }
}

fn master_instance(group: &str, m: &NodeAddr) -> String {
    format!("master {group} {} {}", m.host, m.port)
}

fn replica_instance(group: &str, r: &NodeAddr, master: Option<&NodeAddr>) -> String {
    // Sentinel's own notation for a master it does not know.
    let (mh, mp) = master.map_or(("?", 0), |m| (m.host.as_str(), m.port));
    format!("slave {r} {} {} @ {group} {mh} {mp}", r.host, r.port)
}

/// The events a Sentinel would publish for `c.old` becoming `c.new`, in Sentinel's order:
/// the old master going down, the switch, then replicas going down, coming back or
/// appearing.
pub fn diff(c: &Change<'_>) -> Vec<Event> {
    let Change {
        group, old, new, ..
    } = *c;
    let mut out = Vec::new();
    let previous = old.master.as_ref().or(c.last_master);
    let entered_unavailable =
        |n: &NodeAddr| new.unavailable.contains(n) && !old.unavailable.contains(n);

    if let Some(m) = old.master.as_ref().filter(|m| entered_unavailable(m)) {
        out.push(event("+sdown", master_instance(group, m)));
        out.push(event(
            "+odown",
            format!(
                "{} #quorum {}/{}",
                master_instance(group, m),
                c.quorum.0,
                c.quorum.1
            ),
        ));
    }
    let switched = match (previous, new.master.as_ref()) {
        (Some(p), Some(n)) if p != n => {
            out.push(event(
                "+switch-master",
                format!("{group} {} {} {} {}", p.host, p.port, n.host, n.port),
            ));
            // Sentinel turns the old master into a replica of the new one; while it is down
            // it is a down replica, which a later `-sdown slave` clears.
            if new.unavailable.contains(p) {
                out.push(event("+sdown", replica_instance(group, p, Some(n))));
            }
            true
        }
        (Some(p), Some(n)) if p == n && old.unavailable.contains(p) => {
            // The down master is back and still the master.
            out.push(event("-sdown", master_instance(group, p)));
            out.push(event("-odown", master_instance(group, p)));
            false
        }
        _ => false,
    };
    let master = new.master.as_ref().or(previous);
    for n in &new.unavailable {
        let handled = old.master.as_ref() == Some(n) || (switched && previous == Some(n));
        if entered_unavailable(n) && !handled {
            out.push(event("+sdown", replica_instance(group, n, master)));
        }
    }
    for n in &new.slaves {
        if old.slaves.contains(n) {
            continue;
        }
        if old.unavailable.contains(n) {
            out.push(event("-sdown", replica_instance(group, n, master)));
        } else {
            out.push(event("+slave", replica_instance(group, n, master)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> NodeAddr {
        s.parse().expect("test address")
    }

    fn t(master: Option<&str>, slaves: &[&str], unavailable: &[&str]) -> Topology {
        Topology {
            master: master.map(a),
            slaves: slaves.iter().map(|s| a(s)).collect(),
            unavailable: unavailable.iter().map(|s| a(s)).collect(),
            ..Topology::default()
        }
    }

    #[test]
    fn events_follow_sentinel() {
        type Case<'a> = (
            &'a str,
            Topology,
            Topology,
            Option<&'a str>,
            Vec<(&'a str, &'a str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "nothing changed",
                t(Some("h:1"), &["h:2"], &[]),
                t(Some("h:1"), &["h:2"], &[]),
                None,
                vec![],
            ),
            (
                "master crashed, replica promoted",
                t(Some("h:1"), &["h:2", "h:3"], &[]),
                t(Some("h:2"), &["h:3"], &["h:1"]),
                None,
                vec![
                    ("+sdown", "master g h 1"),
                    ("+odown", "master g h 1 #quorum 2/1"),
                    ("+switch-master", "g h 1 h 2"),
                    ("+sdown", "slave h:1 h 1 @ g h 2"),
                ],
            ),
            (
                "master crashed, nobody to promote",
                t(Some("h:1"), &["h:2"], &[]),
                t(None, &[], &["h:1", "h:2"]),
                None,
                vec![
                    ("+sdown", "master g h 1"),
                    ("+odown", "master g h 1 #quorum 2/1"),
                    ("+sdown", "slave h:2 h 2 @ g h 1"),
                ],
            ),
            (
                "the down master is back as the master",
                t(None, &[], &["h:1", "h:2"]),
                t(Some("h:1"), &[], &["h:2"]),
                Some("h:1"),
                vec![("-sdown", "master g h 1"), ("-odown", "master g h 1")],
            ),
            (
                "a replica promoted after a time without master",
                t(None, &[], &["h:1", "h:2"]),
                t(Some("h:2"), &[], &["h:1"]),
                Some("h:1"),
                vec![
                    ("+switch-master", "g h 1 h 2"),
                    ("+sdown", "slave h:1 h 1 @ g h 2"),
                ],
            ),
            (
                "no master known at all: no switch to report",
                t(None, &[], &["h:1", "h:2"]),
                t(Some("h:2"), &[], &["h:1"]),
                None,
                vec![],
            ),
            (
                "a replica went down",
                t(Some("h:1"), &["h:2", "h:3"], &[]),
                t(Some("h:1"), &["h:3"], &["h:2"]),
                None,
                vec![("+sdown", "slave h:2 h 2 @ g h 1")],
            ),
            (
                "a replica came back",
                t(Some("h:1"), &["h:3"], &["h:2"]),
                t(Some("h:1"), &["h:2", "h:3"], &[]),
                None,
                vec![("-sdown", "slave h:2 h 2 @ g h 1")],
            ),
            (
                "the old master came back as a replica",
                t(Some("h:2"), &["h:3"], &["h:1"]),
                t(Some("h:2"), &["h:1", "h:3"], &[]),
                Some("h:2"),
                vec![("-sdown", "slave h:1 h 1 @ g h 2")],
            ),
            (
                "a new replica",
                t(Some("h:1"), &["h:2"], &[]),
                t(Some("h:1"), &["h:2", "h:3"], &[]),
                None,
                vec![("+slave", "slave h:3 h 3 @ g h 1")],
            ),
            (
                "planned switchover: the old master becomes a replica",
                t(Some("h:1"), &["h:2", "h:3"], &[]),
                t(Some("h:2"), &["h:1", "h:3"], &[]),
                None,
                vec![
                    ("+switch-master", "g h 1 h 2"),
                    ("+slave", "slave h:1 h 1 @ g h 2"),
                ],
            ),
            (
                "IPv6 replica names keep their brackets",
                t(Some("[::1]:1"), &["[::1]:2"], &[]),
                t(Some("[::1]:1"), &[], &["[::1]:2"]),
                None,
                vec![("+sdown", "slave [::1]:2 ::1 2 @ g ::1 1")],
            ),
        ];
        for (what, old, new, last, want) in cases {
            let last = last.map(a);
            let got = diff(&Change {
                group: "g",
                old: &old,
                new: &new,
                last_master: last.as_ref(),
                quorum: (2, 1),
            });
            let want: Vec<Event> = want
                .into_iter()
                .map(|(c, m)| event(c, m.to_string()))
                .collect();
            assert_eq!(got, want, "{what}");
        }
    }
}
