//! How several managers' views combine into "this node is down" — the Ruby gem's node
//! strategies. Every manager publishes its own view; the leader counts one ballot per fresh
//! view (its own included) and decides by `--node-strategy`, and only with at least
//! `--required-node-managers` ballots. Pure; `now` comes in as an argument.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use redis_failover_client::wire::ManagerView;
use redis_failover_client::NodeAddr;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Down when more managers see it down than up.
    #[default]
    Majority,
    /// Down when every manager sees it down.
    Consensus,
    /// Down when any manager sees it down.
    Single,
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "majority" => Ok(Strategy::Majority),
            "consensus" => Ok(Strategy::Consensus),
            "single" => Ok(Strategy::Single),
            other => Err(format!(
                "unknown node strategy {other:?} (majority, consensus or single)"
            )),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Majority => "majority",
            Strategy::Consensus => "consensus",
            Strategy::Single => "single",
        })
    }
}

/// One manager's opinion on one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ballot {
    pub manager: String,
    pub down: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Down(String),
    Up(String),
    /// Too few fresh views to decide anything: never act on it.
    Doubtful(String),
}

/// How often a manager rewrites its view when nothing changed (it writes it at once on
/// every change), so that a view that stops being rewritten is known to be stale.
pub const VIEW_HEARTBEAT: Duration = Duration::from_secs(5);

/// How old another manager's view may be and still count as a ballot: three heartbeats
/// (one may be late, one in flight), and at least twice `--down-after-ms`. A view says what
/// its manager sees now, however old it is, as long as that manager rewrites it on every
/// change; the age only tells a manager that stopped working (a live session keeps its
/// ephemeral view) from one that has nothing new to say.
pub fn max_view_age(down_after: Duration) -> Duration {
    (down_after * 2).max(VIEW_HEARTBEAT * 3)
}

/// A view written at `at_ms` still counts at `now_ms`.
pub fn is_fresh(at_ms: u64, now_ms: u64, max_age: Duration) -> bool {
    at_ms.saturating_add(max_age.as_millis() as u64) >= now_ms
}

/// The ballots on `node`: this manager's own (`own_down`: `None` while it has not probed the
/// node yet) and one per other manager's view written within `max_age` of `now_ms` that
/// mentions the node.
pub fn ballots_for(
    node: &NodeAddr,
    own_id: &str,
    own_down: Option<bool>,
    views: &BTreeMap<String, ManagerView>,
    now_ms: u64,
    max_age: Duration,
) -> Vec<Ballot> {
    let mut ballots: Vec<Ballot> = own_down
        .map(|down| Ballot {
            manager: own_id.to_string(),
            down,
        })
        .into_iter()
        .collect();
    for (id, view) in views {
        if id == own_id || !is_fresh(view.at_ms, now_ms, max_age) {
            continue;
        }
        let down = if view.unavailable.contains(node) {
            true
        } else if view.available.contains_key(node) {
            false
        } else {
            continue;
        };
        ballots.push(Ballot {
            manager: id.clone(),
            down,
        });
    }
    ballots
}

/// Combines ballots by `strategy`; fewer than `required` ballots is doubtful. The reason
/// names who voted what.
pub fn tally(strategy: Strategy, required: usize, ballots: &[Ballot]) -> Verdict {
    let names = |down: bool| {
        let v: Vec<&str> = ballots
            .iter()
            .filter(|b| b.down == down)
            .map(|b| b.manager.as_str())
            .collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(",")
        }
    };
    let down = ballots.iter().filter(|b| b.down).count();
    let up = ballots.len() - down;
    let votes = format!(
        "{strategy}: down for {} [{}], up for {} [{}]",
        down,
        names(true),
        up,
        names(false)
    );
    if ballots.len() < required.max(1) {
        return Verdict::Doubtful(format!(
            "only {} of the {} required manager views ({votes})",
            ballots.len(),
            required.max(1)
        ));
    }
    let is_down = match strategy {
        Strategy::Majority => down > up,
        Strategy::Consensus => up == 0,
        Strategy::Single => down > 0,
    };
    if is_down {
        Verdict::Down(votes)
    } else {
        Verdict::Up(votes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(spec: &str) -> Vec<Ballot> {
        spec.chars()
            .enumerate()
            .map(|(i, c)| Ballot {
                manager: format!("m{i}"),
                down: c == 'D',
            })
            .collect()
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn strategies() {
        use Strategy::*;
        // (strategy, required, [(ballots: D = down, U = up, expected: D/U/?)])
        let cases: [(Strategy, usize, &[(&str, char)]); 7] = [
            (
                Majority,
                1,
                &[
                    ("D", 'D'),
                    ("U", 'U'),
                    ("DDU", 'D'),
                    ("DUU", 'U'),
                    ("DU", 'U'),
                ],
            ),
            (Consensus, 1, &[("DDD", 'D'), ("DDU", 'U')]),
            (Single, 1, &[("DUU", 'D'), ("UUU", 'U')]),
            (Majority, 2, &[("D", '?')]),
            (Single, 3, &[("DD", '?')]),
            (Majority, 0, &[("", '?')]),
            (Consensus, 2, &[("DD", 'D')]),
        ];
        for (s, required, ballots) in cases {
            for &(spec, want) in ballots {
                let got = match tally(s, required, &b(spec)) {
                    Verdict::Down(_) => 'D',
                    Verdict::Up(_) => 'U',
                    Verdict::Doubtful(_) => '?',
                };
                assert_eq!(got, want, "{s} required {required} ballots {spec}");
            }
        }
    }

    #[test]
    fn the_reason_names_the_votes() {
        let v = tally(Strategy::Majority, 2, &b("DDU"));
        assert_eq!(
            v,
            Verdict::Down("majority: down for 2 [m0,m1], up for 1 [m2]".into())
        );
        let v = tally(Strategy::Majority, 2, &b("D"));
        assert_eq!(
            v,
            Verdict::Doubtful(
                "only 1 of the 2 required manager views (majority: down for 1 [m0], up for 0 [none])".into()
            )
        );
    }

    #[test]
    fn stale_and_silent_views_do_not_vote() {
        let n: NodeAddr = "h:1".parse().expect("addr");
        let mut fresh = ManagerView {
            at_ms: 10_000,
            ..ManagerView::default()
        };
        fresh.unavailable.push(n.clone());
        let mut stale = ManagerView {
            at_ms: 1_000,
            ..ManagerView::default()
        };
        stale.available.insert(n.clone(), 1.0);
        let silent = ManagerView {
            at_ms: 10_000,
            ..ManagerView::default()
        };
        let own_old = ManagerView {
            at_ms: 10_000,
            ..ManagerView::default()
        };
        let views = BTreeMap::from([
            ("a".to_string(), fresh),
            ("b".to_string(), stale),
            ("c".to_string(), silent),
            ("me".to_string(), own_old),
        ]);
        let got = ballots_for(
            &n,
            "me",
            Some(false),
            &views,
            10_500,
            Duration::from_millis(2_000),
        );
        assert_eq!(
            got,
            vec![
                Ballot {
                    manager: "me".into(),
                    down: false
                },
                Ballot {
                    manager: "a".into(),
                    down: true
                },
            ]
        );
        assert_eq!(
            ballots_for(&n, "me", None, &views, 10_500, Duration::from_millis(2_000)).len(),
            1
        );
    }
}
