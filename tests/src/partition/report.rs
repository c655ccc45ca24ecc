//! What a partition scenario measured: per client the acknowledged writes and those lost, and
//! when the new master was published and the group converged.

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
    /// The fault, in words.
    pub fault: String,
    pub first_master: String,
    pub final_master: String,
    /// From the cut to the first topology with another master in ZooKeeper (`None`: none
    /// was published before the group converged).
    pub published_after_cut: Option<Duration>,
    /// From the heal to exactly one master with every other node replicating from it, and
    /// that master published.
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
            "scenario {}: {} ({} cut(s))",
            self.scenario, self.fault, self.cuts
        )?;
        let published = self
            .published_after_cut
            .map_or("never".to_string(), |d| format!("{:.3} s", d.as_secs_f64()));
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
