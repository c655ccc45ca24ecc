//! [`redis::aio::ConnectionLike`] for [`Client`]: every `redis::AsyncCommands` method and
//! `redis::pipe()` work on it unchanged. Each command gets its namespace, is checked
//! ([`check_supported`]), routed, tried once on the connection the handle holds, and handed
//! to the retrying path ([`Client::execute`]) only when that fails.

use std::borrow::Cow;

use redis::aio::ConnectionLike;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::client::Client;
use crate::error::client_error;
use crate::namespace::{namespaced, namespaced_pipeline, NamespaceError};
use crate::retry::{classify, Failure};
use crate::route::{self, Target};
use crate::send::{Reply, Request};

/// Refuses what a routing client cannot do on a shared, reconnecting connection.
pub(crate) fn check_supported(special: route::Special, cmd: &Cmd) -> RedisResult<()> {
    let why = match special {
        route::Special::PubSub => "needs a dedicated connection: use Client::master_connection() for pub/sub",
        route::Special::Select => "is not supported: the database is a client option (ClientBuilder::db)",
        route::Special::Transaction => "is not supported: use an atomic pipeline (redis::pipe().atomic())",
        route::Special::ConnectionState => "is not supported: it changes one connection's state, which is not kept across reconnects",
        route::Special::Blocking | route::Special::None => return Ok(()),
    };
    Err(client_error(format!("{} {why}", command_name(cmd))))
}

pub(crate) fn command_name(cmd: &Cmd) -> String {
    cmd.args_iter()
        .next()
        .and_then(|a| match a {
            redis::Arg::Simple(b) => Some(String::from_utf8_lossy(b).to_uppercase()),
            _ => None,
        })
        .unwrap_or_default()
}

/// `x` with its keys put into the client's namespace `ns` by `put`, or `x` itself (not
/// copied) without a namespace.
fn in_namespace<'a, T: Clone>(
    x: &'a T,
    ns: Option<&[u8]>,
    put: fn(&T, &[u8]) -> Result<T, NamespaceError>,
) -> RedisResult<Cow<'a, T>> {
    match ns {
        None => Ok(Cow::Borrowed(x)),
        Some(ns) => put(x, ns)
            .map(Cow::Owned)
            .map_err(|e| client_error(e.to_string())),
    }
}

impl ConnectionLike for Client {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let cmd = in_namespace(cmd, self.inner.cfg.namespace.as_deref(), namespaced)?;
            let cmd: &Cmd = &cmd;
            let plan = route::plan(cmd);
            check_supported(plan.special, cmd)?;
            let is_write = plan.target == Target::Master;
            let name = || command_name(cmd);
            let req = Request::One(cmd);
            let first = if plan.block.is_none() {
                match self.try_cached(plan.target, &req).await {
                    Some(Ok(Reply::One(v))) => return Ok(v),
                    Some(Err(e)) if classify(&e) == Failure::Final => return Err(e),
                    Some(r) => r.err(),
                    None => None,
                }
            } else {
                None
            };
            // The retrying path is a large future: boxed, so only the rare call pays for it.
            match Box::pin(self.execute(name, plan.target, is_write, plan.block, req, first))
                .await?
            {
                Reply::One(v) => Ok(v),
                Reply::Many(_) => Err(client_error(
                    "internal error: a pipeline reply to a single command".into(),
                )),
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            for cmd in pipeline.cmd_iter() {
                check_supported(route::classify(cmd), cmd)?;
            }
            let pipeline = in_namespace(
                pipeline,
                self.inner.cfg.namespace.as_deref(),
                namespaced_pipeline,
            )?;
            let pipeline: &Pipeline = &pipeline;
            let target = route::route_pipeline(pipeline);
            let is_write = target == Target::Master;
            let req = Request::Many(pipeline, offset, count);
            let first = match self.try_cached(target, &req).await {
                Some(Ok(Reply::Many(v))) => return Ok(v),
                Some(Err(e)) if classify(&e) == Failure::Final => return Err(e),
                Some(r) => r.err(),
                None => None,
            };
            match Box::pin(self.execute(
                || "pipeline".to_string(),
                target,
                is_write,
                None,
                req,
                first,
            ))
            .await?
            {
                Reply::Many(v) => Ok(v),
                Reply::One(_) => Err(client_error(
                    "internal error: a single reply to a pipeline".into(),
                )),
            }
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.cfg.db
    }
}
