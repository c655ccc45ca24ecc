//! Who may do what in ZooKeeper: this process's identity (digest `user:password`, from a
//! file or `REDIS_FAILOVER_ZK_AUTH`, never a flag) and the ACL ids of readers and operators.

use std::path::Path;

use base64::Engine;

use super::{ConfigError, Secret};

/// A ZooKeeper ACL id: `scheme:id`, as ZooKeeper's `setAcl` takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclId {
    pub scheme: String,
    pub id: String,
}

impl std::fmt::Display for AclId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.scheme, self.id)
    }
}

/// The ACL settings of a manager or an operator's subcommand.
#[derive(Clone, Debug, Default)]
pub struct ZkAccess {
    /// `user:password`; `None`: no identity, and every znode open to all (as before).
    pub identity: Option<Secret>,
    /// Who may read (when there is an identity): `world:anyone` unless configured.
    pub readers: Vec<AclId>,
    /// Who may create and delete requests (manual failover, pause) under a group's root.
    pub operators: Vec<AclId>,
    /// `--zk-tls-ca-file` and its client certificate: TLS to every ZooKeeper server.
    pub tls: Option<redis_failover_client::Tls>,
}

impl ZkAccess {
    /// From the sources in order of precedence; `env` is `REDIS_FAILOVER_ZK_AUTH`.
    pub fn new(
        env: Option<Secret>,
        file: Option<&Path>,
        readers: Option<&str>,
        operators: Option<&str>,
    ) -> Result<ZkAccess, ConfigError> {
        let identity = match (env, file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError(
                    "give the ZooKeeper identity once: REDIS_FAILOVER_ZK_AUTH or --zk-auth-file, not both"
                        .into(),
                ))
            }
            (Some(s), None) => Some(s),
            (None, Some(p)) => Some(Secret::from_file(p, "--zk-auth-file")?),
            (None, None) => None,
        };
        if let Some(s) = &identity {
            match s.expose().split_once(':') {
                Some((user, pass)) if !user.is_empty() && !pass.is_empty() => {}
                _ => {
                    return Err(ConfigError(
                        "the ZooKeeper identity must be user:password (digest), both non-empty"
                            .into(),
                    ))
                }
            }
        }
        let readers = match readers {
            Some(r) => parse_ids(r, "--zk-read-acl")?,
            None => vec![AclId {
                scheme: "world".into(),
                id: "anyone".into(),
            }],
        };
        let operators = match operators {
            Some(o) => parse_ids(o, "--zk-operator-acl")?,
            None => Vec::new(),
        };
        if identity.is_none() && !operators.is_empty() {
            return Err(ConfigError(
                "--zk-operator-acl needs the managers' ZooKeeper identity \
                 (--zk-auth-file or REDIS_FAILOVER_ZK_AUTH): without one every znode is open to all"
                    .into(),
            ));
        }
        Ok(ZkAccess {
            identity,
            readers,
            operators,
            tls: None,
        })
    }

    /// How a session logs in (`addAuth` digest) and whether over TLS.
    pub fn session(&self) -> redis_failover_client::session::Options<'_> {
        redis_failover_client::session::Options {
            auth: self
                .identity
                .as_ref()
                .map(|s| ("digest", s.expose().as_bytes())),
            tls: self.tls.as_ref(),
        }
    }
}

/// `scheme:id,...`; each scheme one ZooKeeper knows, `world` only as `world:anyone`.
pub fn parse_ids(text: &str, what: &str) -> Result<Vec<AclId>, ConfigError> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |why: &str| ConfigError(format!("{what}: {part:?} {why}"));
        let (scheme, id) = part
            .split_once(':')
            .ok_or_else(|| bad("is not scheme:id"))?;
        match scheme {
            "world" if id == "anyone" => {}
            "world" => return Err(bad("is not world:anyone, the only world id")),
            "digest"
                if id
                    .split_once(':')
                    .is_some_and(|(u, h)| !u.is_empty() && !h.is_empty()) => {}
            "digest" => {
                return Err(bad(
                    "is not digest:USER:HASH (see the zk-digest subcommand)",
                ))
            }
            "ip" | "sasl" | "x509" if !id.is_empty() => {}
            _ => {
                return Err(bad(
                    "has a scheme ZooKeeper does not know (world, digest, ip, sasl, x509)",
                ))
            }
        }
        out.push(AclId {
            scheme: scheme.into(),
            id: id.into(),
        });
    }
    if out.is_empty() {
        return Err(ConfigError(format!("{what}: no ACL id given")));
    }
    Ok(out)
}

/// The ACL id of the digest identity `user:password`: `digest:user:base64(sha1(user:password))`,
/// as ZooKeeper's `DigestAuthenticationProvider` computes it.
pub fn digest_id(identity: &str) -> Option<String> {
    let (user, _) = identity.split_once(':')?;
    let hash = sha1_smol::Sha1::from(identity.as_bytes()).digest().bytes();
    Some(format!(
        "digest:{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_zookeepers() {
        // What ZooKeeper's own tool prints: `java ... DigestAuthenticationProvider super:secret`.
        assert_eq!(
            digest_id("super:secret").as_deref(),
            Some("digest:super:lK75jTNcA+U9vtVEw5vB51mj/w4=")
        );
    }

    #[test]
    fn ids_are_checked() {
        let table: &[(&str, Result<usize, &str>)] = &[
            ("world:anyone", Ok(1)),
            ("digest:ops:abc=,ip:10.0.0.0/8", Ok(2)),
            ("world:someone", Err("the only world id")),
            ("digest:ops", Err("digest:USER:HASH")),
            ("anyone", Err("is not scheme:id")),
            ("foo:bar", Err("does not know")),
            (" , ", Err("no ACL id given")),
        ];
        for (text, want) in table {
            match (parse_ids(text, "--x"), want) {
                (Ok(ids), Ok(n)) => assert_eq!(ids.len(), *n, "{text}"),
                (Err(e), Err(part)) => assert!(e.0.contains(part), "{text}: {}", e.0),
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
    }

    #[test]
    fn the_identity_is_user_colon_password_from_one_place() {
        let s = |v: &str| Some(Secret::from(v));
        assert!(ZkAccess::new(s("m:pw"), None, None, None).is_ok());
        for bad in ["m", ":pw", "m:"] {
            let e = ZkAccess::new(s(bad), None, None, None).expect_err(bad);
            assert!(e.0.contains("user:password"), "{}", e.0);
        }
        let e = ZkAccess::new(None, None, None, Some("digest:o:h")).expect_err("no identity");
        assert!(
            e.0.contains("needs the managers' ZooKeeper identity"),
            "{}",
            e.0
        );
        let open = ZkAccess::new(None, None, None, None).expect("open");
        assert!(open.session().auth.is_none());
        assert_eq!(open.readers[0].to_string(), "world:anyone");
    }
}
