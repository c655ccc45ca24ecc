//! [`FailoverRecord`], one entry of `<root>/failover_history` (a JSON array, oldest first,
//! bounded by the leader), and [`FailoverKind`]. Pure.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::NodeAddr;

/// What kind of master change a [`FailoverRecord`] is. Serialized as today's strings:
/// `"failover"`, `"manual"`, `"switchover"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FailoverKind {
    /// The master was down; the leader promoted a replica on its own.
    Failover,
    /// An operator asked, with the master down.
    Manual,
    /// An operator asked, with the master healthy: `FAILOVER TO`, no write lost.
    Switchover,
    /// A kind this version does not know (written by a newer manager); kept as written so
    /// that the history survives a rolling upgrade.
    Other(String),
}

impl FailoverKind {
    /// As written in the history: `failover`, `manual`, `switchover`, or an unknown kind
    /// as it was read.
    pub fn as_str(&self) -> &str {
        match self {
            FailoverKind::Failover => "failover",
            FailoverKind::Manual => "manual",
            FailoverKind::Switchover => "switchover",
            FailoverKind::Other(s) => s,
        }
    }
}

impl From<&str> for FailoverKind {
    fn from(s: &str) -> Self {
        match s {
            "failover" => FailoverKind::Failover,
            "manual" => FailoverKind::Manual,
            "switchover" => FailoverKind::Switchover,
            other => FailoverKind::Other(other.to_string()),
        }
    }
}

impl fmt::Display for FailoverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`: widths such as `{:<10}` apply.
        f.pad(self.as_str())
    }
}

impl Serialize for FailoverKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FailoverKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(FailoverKind::from(String::deserialize(d)?.as_str()))
    }
}

/// One entry of `<root>/failover_history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRecord {
    /// When the new master was published, ms since the Unix epoch.
    pub at_ms: u64,
    /// `failover` (master down), `manual` (operator, master down) or `switchover`
    /// (operator, master healthy: `FAILOVER TO`, no write lost).
    pub kind: FailoverKind,
    /// Why: the decision's sentence (failure seen, candidates ranked).
    pub reason: String,
    /// The master before.
    pub from: NodeAddr,
    /// The master after.
    pub to: NodeAddr,
    /// From the decision to the new master published.
    pub duration_ms: u64,
    /// How the managers voted on the old master (empty for a switchover).
    #[serde(default)]
    pub votes: String,
    /// The epoch the new master was published with.
    pub epoch: u64,
    /// The manager that did it.
    pub manager: String,
    /// What `--on-switch-master` said: its exit and the start of its output (absent without
    /// one, and until it ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<String>,
}

impl FailoverRecord {
    /// Decodes the whole history. A corrupt history reads as empty: it is replaced by the
    /// next record rather than blocking it.
    pub fn list_from_json(bytes: &[u8]) -> Vec<FailoverRecord> {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// Encodes the whole history (the leader keeps it bounded).
    pub fn list_to_json(history: &[FailoverRecord]) -> Vec<u8> {
        // Plain strings and integers: serializing cannot fail.
        serde_json::to_vec(history).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history as managers write it today, byte for byte: decoded and encoded back
    /// unchanged, every kind included.
    #[test]
    fn todays_history_round_trips_byte_for_byte() {
        let json = concat!(
            r#"[{"at_ms":1767225600000,"kind":"failover","reason":"master down (connection refused); ranking h:3 (priority 100, offset 100) > h:2 (priority 100, offset 90)","from":"h:1","to":"h:3","duration_ms":412,"votes":"2/3 managers see it down","epoch":2,"manager":"m-1"},"#,
            r#"{"at_ms":1767225601000,"kind":"manual","reason":"manual request h:2: master down, promoting h:2","from":"h:3","to":"h:2","duration_ms":90,"votes":"this manager's probes alone","epoch":3,"manager":"m-2"},"#,
            r#"{"at_ms":1767225602000,"kind":"switchover","reason":"manual request ANY_SLAVE: switchover from h:2 to h:1","from":"h:2","to":"[::1]:6379","duration_ms":35,"votes":"","epoch":4,"manager":"m-2"}]"#
        );
        let history = FailoverRecord::list_from_json(json.as_bytes());
        let kinds: Vec<&FailoverKind> = history.iter().map(|r| &r.kind).collect();
        assert_eq!(
            kinds,
            [
                &FailoverKind::Failover,
                &FailoverKind::Manual,
                &FailoverKind::Switchover
            ]
        );
        assert_eq!(
            String::from_utf8(FailoverRecord::list_to_json(&history)).expect("utf8"),
            json
        );
    }

    #[test]
    fn kinds_print_as_written_and_unknown_ones_survive() {
        assert_eq!(format!("{:<10}|", FailoverKind::Manual), "manual    |");
        let json = r#"[{"at_ms":1,"kind":"fenced","reason":"","from":"h:1","to":"h:2","duration_ms":0,"votes":"","epoch":1,"manager":"m"}]"#;
        let history = FailoverRecord::list_from_json(json.as_bytes());
        assert_eq!(history[0].kind, FailoverKind::Other("fenced".into()));
        assert_eq!(
            String::from_utf8(FailoverRecord::list_to_json(&history)).expect("utf8"),
            json
        );
        // Votes were added later: older records read without them.
        let old = r#"[{"at_ms":1,"kind":"failover","reason":"r","from":"h:1","to":"h:2","duration_ms":0,"epoch":1,"manager":"m"}]"#;
        assert_eq!(FailoverRecord::list_from_json(old.as_bytes())[0].votes, "");
        assert!(FailoverRecord::list_from_json(b"garbage").is_empty());
    }
}
