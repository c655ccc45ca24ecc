//! Partitions of a [`Net`] with iptables inside the hosts' namespaces, as Jepsen makes them:
//! [`Net::isolate`] a host, [`Net::cut`] two hosts apart, [`Net::undo`] one of those,
//! [`Net::heal_all`], and [`Net::flap`] a cut on and off.
//!
//! Every rule lives in a host's `RFN_IN` / `RFN_OUT` chain (see [`super::net`]), which sees
//! only the traffic of the host's `eth0`: a host always reaches itself.

use std::time::{Duration, Instant};

use super::cmd::iptables;
use super::net::{Net, CHAIN_IN, CHAIN_OUT};

/// How a cut link behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Packets vanish: connects and requests time out (a silent network, a dead switch).
    Drop,
    /// TCP is answered with a reset (`--reject-with tcp-reset`) and everything else with ICMP
    /// port-unreachable: connects are refused at once, as if the process had died.
    Reject,
}

impl Mode {
    /// The iptables rules (match + target), in order, of the chain `chain`. A rejecting
    /// host's own answers (the RSTs and ICMP errors that REJECT sends from the input chain)
    /// pass its output chain: without that, the output rule would swallow them and REJECT
    /// would look like DROP to the other side.
    fn targets(self, chain: &str) -> &'static [&'static [&'static str]] {
        const REJECT: [&[&str]; 2] = [
            &["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
            &["-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
        ];
        const REJECT_OUT: [&[&str]; 4] = [
            &["-p", "tcp", "--tcp-flags", "RST", "RST", "-j", "RETURN"],
            &[
                "-p",
                "icmp",
                "--icmp-type",
                "destination-unreachable",
                "-j",
                "RETURN",
            ],
            REJECT[0],
            REJECT[1],
        ];
        match (self, chain == CHAIN_OUT) {
            (Mode::Drop, _) => &[&["-j", "DROP"]],
            (Mode::Reject, false) => &REJECT,
            (Mode::Reject, true) => &REJECT_OUT,
        }
    }
}

/// One rule: namespace, chain, match + target.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    ns: String,
    chain: &'static str,
    spec: Vec<String>,
}

/// The rules one partition operation added, to [`Net::undo`] it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cut {
    rules: Vec<Rule>,
}

impl Net {
    /// Rules in `host`'s namespace cutting it from `peer` (`None`: from every other address),
    /// both directions.
    fn rules(&self, host: &str, peer: Option<&str>, mode: Mode) -> Result<Vec<Rule>, String> {
        let ns = self.host(host)?.ns.clone();
        let peer_ip = peer
            .map(|p| self.host(p).map(|h| h.ip.clone()))
            .transpose()?;
        let mut rules = Vec::new();
        for (chain, dir) in [(CHAIN_IN, "-s"), (CHAIN_OUT, "-d")] {
            for target in mode.targets(chain) {
                let mut spec: Vec<String> = Vec::new();
                if let Some(ip) = &peer_ip {
                    spec.extend([dir.to_string(), ip.clone()]);
                }
                spec.extend(target.iter().map(|s| s.to_string()));
                rules.push(Rule {
                    ns: ns.clone(),
                    chain,
                    spec,
                });
            }
        }
        Ok(rules)
    }

    /// Adds the rules that are not there yet.
    fn apply(&self, rules: Vec<Rule>) -> Result<Cut, String> {
        for r in &rules {
            if !rule_exists(r)? {
                iptables(&r.ns, &rule_args("-A", r))?;
            }
        }
        Ok(Cut { rules })
    }

    /// Cuts `host` from every other address (the other hosts and the test process), in both
    /// directions.
    pub fn isolate(&self, host: &str, mode: Mode) -> Result<Cut, String> {
        self.apply(self.rules(host, None, mode)?)
    }

    /// Cuts the link between hosts `a` and `b` only, in both directions (rules on both).
    pub fn cut(&self, a: &str, b: &str, mode: Mode) -> Result<Cut, String> {
        let mut rules = self.rules(a, Some(b), mode)?;
        rules.extend(self.rules(b, Some(a), mode)?);
        self.apply(rules)
    }

    /// Cuts every host of `side` from every host of `others` (see [`Net::cut`]), as one
    /// [`Cut`].
    pub fn cut_between(&self, side: &[&str], others: &[&str], mode: Mode) -> Result<Cut, String> {
        let mut rules = Vec::new();
        for a in side {
            for b in others {
                rules.extend(self.rules(a, Some(b), mode)?);
                rules.extend(self.rules(b, Some(a), mode)?);
            }
        }
        self.apply(rules)
    }

    /// Removes the rules of `cut` that are still there (undoing twice is harmless).
    pub fn undo(&self, cut: &Cut) -> Result<(), String> {
        for r in &cut.rules {
            if rule_exists(r)? {
                iptables(&r.ns, &rule_args("-D", r))?;
            }
        }
        Ok(())
    }

    /// Removes every partition rule of every host (idempotent).
    pub fn heal_all(&self) -> Result<(), String> {
        for h in &self.hosts {
            iptables(&h.ns, &["-F", CHAIN_IN])?;
            iptables(&h.ns, &["-F", CHAIN_OUT])?;
        }
        Ok(())
    }

    /// The partition rules now in `host`'s chains (`iptables -S`), for messages.
    pub fn rules_of(&self, host: &str) -> Result<String, String> {
        let ns = &self.host(host)?.ns;
        Ok(iptables(ns, &["-S", CHAIN_IN])? + &iptables(ns, &["-S", CHAIN_OUT])?)
    }

    /// Flapping: applies `make` for `on`, undoes it for `off`, again and again until `total`
    /// has passed (the last cut is always undone, also when an operation fails). Returns
    /// the number of cuts. Blocking: from async code, call it on a blocking thread.
    pub fn flap(
        &self,
        make: impl Fn(&Net) -> Result<Cut, String>,
        on: Duration,
        off: Duration,
        total: Duration,
    ) -> Result<u32, String> {
        let end = Instant::now() + total;
        let mut cuts = 0;
        while Instant::now() < end {
            let cut = make(self);
            if let Ok(c) = &cut {
                cuts += 1;
                std::thread::sleep(on.min(end.saturating_duration_since(Instant::now())));
                self.undo(c)?;
            }
            cut?;
            std::thread::sleep(off.min(end.saturating_duration_since(Instant::now())));
        }
        Ok(cuts)
    }
}

fn rule_args<'a>(op: &'a str, r: &'a Rule) -> Vec<&'a str> {
    let mut args = vec![op, r.chain];
    args.extend(r.spec.iter().map(String::as_str));
    args
}

/// `iptables -C`: exit 0 when the rule is there, 1 when not (anything else is an error).
fn rule_exists(r: &Rule) -> Result<bool, String> {
    match iptables(&r.ns, &rule_args("-C", r)) {
        Ok(_) => Ok(true),
        Err(e) if e.contains("exit status: 1)") => Ok(false),
        Err(e) => Err(e),
    }
}
