//! [`PauseInfo`], the content of `<root>/paused`: while that znode exists the leader makes
//! no automatic failover (probing, publishing and manual failovers go on). The leader also
//! copies it into the topology (`"paused"`) so that `zkCli.sh get <root>/nodes` shows it.
//! Pure.

use serde::{Deserialize, Serialize};

/// The content of `<root>/paused`: who paused automatic failover, when and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseInfo {
    /// When it was paused, ms since the Unix epoch.
    #[serde(default)]
    pub since_ms: u64,
    /// Why, in the operator's words (may be empty).
    #[serde(default)]
    pub reason: String,
    /// Who asked (`user@host` of the CLI, `http <peer>`, ...).
    #[serde(default)]
    pub by: String,
}

impl PauseInfo {
    /// A pause starting now ([`super::unix_ms`]).
    pub fn now(reason: impl Into<String>, by: impl Into<String>) -> Self {
        Self {
            since_ms: super::unix_ms(),
            reason: reason.into(),
            by: by.into(),
        }
    }

    /// Decodes the znode. Never fails: the znode's existence is what pauses, so a payload
    /// that is not this JSON (written by hand) still pauses, with the text as the reason.
    pub fn from_json(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes).unwrap_or_else(|_| PauseInfo {
            reason: String::from_utf8_lossy(bytes).trim().to_string(),
            ..Default::default()
        })
    }

    /// Encodes the pause for `<root>/paused`.
    pub fn to_json(&self) -> Vec<u8> {
        // Plain strings and integers: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pauses as the CLI and the HTTP endpoint write them today, byte for byte.
    #[test]
    fn todays_pauses_round_trip_byte_for_byte() {
        for json in [
            r#"{"since_ms":1767225600000,"reason":"upgrade","by":"ops@host-1"}"#,
            r#"{"since_ms":0,"reason":"","by":"http (m-1)"}"#,
        ] {
            let p = PauseInfo::from_json(json.as_bytes());
            assert_eq!(String::from_utf8(p.to_json()).expect("utf8"), json);
        }
    }

    #[test]
    fn a_hand_written_pause_still_pauses() {
        let p = PauseInfo::from_json(b" maintenance window\n");
        assert_eq!(
            p,
            PauseInfo {
                reason: "maintenance window".into(),
                ..PauseInfo::default()
            }
        );
        assert_eq!(PauseInfo::from_json(b"{}"), PauseInfo::default());
        let now = PauseInfo::now("r", "b");
        assert!(now.since_ms > 1_600_000_000_000 && now.reason == "r" && now.by == "b");
    }
}
