//! What a partition scenario measured: per client the acknowledged writes and those lost, and
//! when the new master was published and the group converged; and [`summary_table`], the
//! runs side by side in Markdown.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// One application client's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientReport {
    /// `near` (on the first master's host) or `far`.
    pub name: String,
    /// The host it ran on.
    pub host: String,
    /// Acknowledged writes.
    pub acked: usize,
    /// Writes that failed or were not answered within the bound.
    pub errors: usize,
    /// Acknowledged writes missing on the final master (or holding another value).
    pub lost: usize,
    /// How long after the (first) cut the last lost write was acknowledged: the window in
    /// which the old master still acknowledged writes that were then lost.
    pub last_lost_after_cut: Option<Duration>,
}

/// The figures of one run of a [`super::Scenario`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub scenario: String,
    /// What watched the trio: `ours` or `sentinel`.
    pub system: String,
    /// The fault, in words.
    pub fault: String,
    pub first_master: String,
    pub final_master: String,
    /// From the cut to the first topology with another master in ZooKeeper, or the first
    /// answer of a sentinel naming another master (`None`: none before the group converged).
    pub published_after_cut: Option<Duration>,
    /// From the heal to exactly one master with every other node replicating from it, and
    /// that master published (by every sentinel).
    pub converged_after_heal: Duration,
    /// Cuts made (1, or the number of flaps).
    pub cuts: u32,
    pub clients: Vec<ClientReport>,
    /// Where the logs are.
    pub log_dir: PathBuf,
}

impl Report {
    /// Acknowledged writes lost, all clients together.
    pub fn lost(&self) -> usize {
        self.clients.iter().map(|c| c.lost).sum()
    }
}

fn secs_or_never(d: Option<Duration>) -> String {
    d.map_or("never".to_string(), |d| format!("{:.3} s", d.as_secs_f64()))
}

fn pct(part: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * part as f64 / of as f64
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "scenario {} [{}]: {} ({} cut(s))",
            self.scenario, self.system, self.fault, self.cuts
        )?;
        let published = secs_or_never(self.published_after_cut);
        writeln!(
            f,
            "  master {} -> {}; new master published {published} after the cut; converged {:.3} s after the heal",
            self.first_master,
            self.final_master,
            self.converged_after_heal.as_secs_f64()
        )?;
        for c in &self.clients {
            let window = c.last_lost_after_cut.map_or(String::new(), |d| {
                format!(
                    ", the last acknowledged {:.3} s after the cut",
                    d.as_secs_f64()
                )
            });
            writeln!(
                f,
                "  client {:<5} on {:<4} acknowledged {:>8}  errors {:>7}  acknowledged-but-lost {:>8} ({:.1}%){window}",
                c.name,
                c.host,
                c.acked,
                c.errors,
                c.lost,
                pct(c.lost, c.acked)
            )?;
        }
        writeln!(f, "  logs: {}", self.log_dir.display())
    }
}

/// One row of [`summary_table`]: a run's report, or why the run gave none.
pub type SummaryRow<'a> = (&'a str, &'a str, Result<&'a Report, &'a str>);

/// The runs side by side as a Markdown table: scenario, system, acknowledged / lost (%) per
/// client (the clients of the first report), when the new master was published after the cut
/// and when the group converged after the heal. A run that failed gets its error.
pub fn summary_table(rows: &[SummaryRow<'_>]) -> String {
    let clients: Vec<String> = rows
        .iter()
        .find_map(|(_, _, r)| r.ok())
        .map(|r| r.clients.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    let mut out = String::from("| scenario | system |");
    for c in &clients {
        out.push_str(&format!(" {c}: acknowledged / lost |"));
    }
    out.push_str(" new master published after the cut | converged after the heal |\n|---|---|");
    out.push_str(&"---:|".repeat(clients.len() + 2));
    out.push('\n');
    for (scenario, system, r) in rows {
        out.push_str(&format!("| {scenario} | {system} |"));
        match r {
            Ok(r) => {
                for name in &clients {
                    let cell = r
                        .clients
                        .iter()
                        .find(|c| &c.name == name)
                        .map_or("-".to_string(), |c| {
                            format!("{} / {} ({:.1}%)", c.acked, c.lost, pct(c.lost, c.acked))
                        });
                    out.push_str(&format!(" {cell} |"));
                }
                out.push_str(&format!(
                    " {} | {:.3} s |\n",
                    secs_or_never(r.published_after_cut),
                    r.converged_after_heal.as_secs_f64()
                ));
            }
            Err(e) => {
                let e = e.replace('|', "/").replace('\n', " ");
                let cells = " - |".repeat(clients.len() + 1);
                out.push_str(&format!("{cells} failed: {e} |\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(system: &str, lost: usize) -> Report {
        let client = |name: &str| ClientReport {
            name: name.into(),
            host: "h".into(),
            acked: 200,
            errors: 0,
            lost,
            last_lost_after_cut: None,
        };
        Report {
            scenario: "s".into(),
            system: system.into(),
            fault: "f".into(),
            first_master: "a:1".into(),
            final_master: "b:1".into(),
            published_after_cut: (lost > 0).then_some(Duration::from_millis(1200)),
            converged_after_heal: Duration::from_millis(500),
            cuts: 1,
            clients: vec![client("near"), client("far")],
            log_dir: PathBuf::from("/tmp"),
        }
    }

    #[test]
    fn summary_rows() {
        let (a, b) = (report("ours", 0), report("sentinel", 50));
        let t = summary_table(&[
            ("s", "ours", Ok(&a)),
            ("s", "sentinel", Ok(&b)),
            ("s", "ours", Err("no | root\nhere")),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "{t}");
        assert!(lines[0].starts_with("| scenario | system | near: acknowledged / lost |"));
        assert_eq!(
            lines[2],
            "| s | ours | 200 / 0 (0.0%) | 200 / 0 (0.0%) | never | 0.500 s |"
        );
        assert_eq!(
            lines[3],
            "| s | sentinel | 200 / 50 (25.0%) | 200 / 50 (25.0%) | 1.200 s | 0.500 s |"
        );
        assert_eq!(
            lines[4],
            "| s | ours | - | - | - | failed: no / root here |"
        );
    }
}
