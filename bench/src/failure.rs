//! The failures the benches inflict on the Redis master: a crash (`kill -9`) or a hang
//! (`SIGSTOP`), and the `--scenario` flag that picks them.

use std::fmt;

use clap::ValueEnum;

/// `--scenario`: which failure(s) to inflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScenarioArg {
    Crash,
    Hang,
    Both,
}

impl ScenarioArg {
    /// The scenarios to run, in order.
    pub fn scenarios(self) -> Vec<Scenario> {
        match self {
            ScenarioArg::Crash => vec![Scenario::Crash],
            ScenarioArg::Hang => vec![Scenario::Hang],
            ScenarioArg::Both => vec![Scenario::Crash, Scenario::Hang],
        }
    }
}

/// One failure of the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// `kill -9` the master.
    Crash,
    /// `SIGSTOP` the master (`SIGCONT` at the end of the run).
    Hang,
}

impl Scenario {
    /// `crash` or `hang`.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Crash => "crash",
            Scenario::Hang => "hang",
        }
    }

    /// `kill -9` or `SIGSTOP`.
    pub fn how(self) -> &'static str {
        match self {
            Scenario::Crash => "kill -9",
            Scenario::Hang => "SIGSTOP",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
