//! The process's file-descriptor limit, raised at start to what the configured groups need:
//! two connections per node (the parked read and the poller), one more on a calm master
//! (its beat), one more while the leader acts on it, and room for ZooKeeper, HTTP and
//! Sentinel-protocol clients.

use rlimit::Resource;

/// Descriptors kept free for everything that is not a node connection.
const SPARE: u64 = 64;

/// How many descriptors a manager watching `nodes` nodes needs.
pub fn needed(nodes: usize) -> u64 {
    nodes as u64 * 4 + SPARE
}

/// Raises the soft limit on open files to [`needed`] when it is lower (never lowers it);
/// the error is one line saying what to change when the hard limit is too low.
pub fn raise_fd_limit(nodes: usize) -> Result<(), String> {
    let want = needed(nodes);
    let (soft, hard) = Resource::NOFILE
        .get()
        .map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    if soft >= want {
        return Ok(());
    }
    if hard < want {
        return Err(format!(
            "{nodes} nodes need {want} open files but the hard limit is {hard}; raise it \
             (ulimit -Hn {want}, or LimitNOFILE={want} in the systemd unit) or split the \
             groups between managers"
        ));
    }
    Resource::NOFILE
        .set(want, hard)
        .map_err(|e| format!("cannot raise the open-file limit from {soft} to {want}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_raised_to_what_the_nodes_need_and_never_lowered() {
        let (soft, hard) = Resource::NOFILE.get().expect("read the limit");
        // Nothing to do when the soft limit already covers it.
        raise_fd_limit(1).expect("a small need is met");
        assert_eq!(Resource::NOFILE.get().expect("read").0, soft.max(needed(1)));
        // Beyond the hard limit: refused, with what to do.
        if hard < u64::MAX / 4 {
            let nodes = (hard / 3 + 1) as usize;
            let e = raise_fd_limit(nodes).expect_err("beyond the hard limit");
            assert!(e.contains("raise it (ulimit -Hn"), "{e}");
            assert_eq!(Resource::NOFILE.get().expect("read").1, hard);
        }
    }
}
