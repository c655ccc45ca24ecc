//! One Sentinel client connection: reads requests, answers them, and delivers the events
//! of its subscriptions. The connection-level commands (PING, AUTH, HELLO, CLIENT,
//! SUBSCRIBE and friends) are here; `SENTINEL ...` and INFO are in [`super::commands`].

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use redis_protocol::resp2::types::BytesFrame as Frame;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, OwnedSemaphorePermit};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::codec::{arity, bulk, error, int, ok, request_args, simple, unknown_command, Codec};
use super::commands::info;
use super::glob::glob;
use super::resp3;
use super::{Shared, COMMANDS, REDIS_VERSION, SUBSCRIBED_COMMANDS, WRITE_TIMEOUT};
use crate::core::event_names::SENTINEL_ERROR;
use crate::core::events::Event;

pub(super) struct Client {
    pub(super) id: u64,
    pub(super) peer: String,
    name: Option<String>,
    authed: bool,
    channels: BTreeSet<String>,
    patterns: BTreeSet<String>,
    events: Option<broadcast::Receiver<Event>>,
    /// The client asked for RESP3 (`HELLO 3`).
    resp3: bool,
}

/// What to send back, and whether to close the connection after it.
pub(super) struct Reply {
    frames: Vec<Frame>,
    close: bool,
}

impl From<Frame> for Reply {
    fn from(f: Frame) -> Self {
        Reply {
            frames: vec![f],
            close: false,
        }
    }
}

pub(super) async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    stream: S,
    peer: String,
    stop: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let mut framed = Framed::new(stream, Codec::default());
    let mut client = Client {
        id: shared.next_client_id.fetch_add(1, Ordering::Relaxed),
        peer,
        name: None,
        authed: shared.state.password.is_none(),
        channels: BTreeSet::new(),
        patterns: BTreeSet::new(),
        events: None,
        resp3: false,
    };
    loop {
        // Reading has no deadline: Sentinel clients keep idle connections open.
        let frames = tokio::select! {
            _ = stop.cancelled() => return,
            request = framed.next() => match request {
                None => return,
                Some(Err(e)) => {
                    let _ = send(&mut framed, vec![error(format!("ERR Protocol error: {e}"))], None).await;
                    return;
                }
                Some(Ok(frame)) => match request_args(frame) {
                    Err(e) => {
                        let _ = send(&mut framed, vec![error(e)], None).await;
                        return;
                    }
                    Ok(args) if args.is_empty() => continue,
                    Ok(args) => {
                        let shape = resp3::shape_of(&args);
                        let reply = client.handle(&shared, args).await;
                        let shape = client.resp3.then_some(shape);
                        if send(&mut framed, reply.frames, shape).await.is_err() || reply.close {
                            return;
                        }
                        continue;
                    }
                },
            },
            event = next_event(&mut client.events) => match event {
                Some(e) => client.deliver(&e),
                None => continue,
            },
        };
        let shape = client.resp3.then_some(resp3::Shape::Push);
        if send(&mut framed, frames, shape).await.is_err() {
            return;
        }
    }
}

/// Writes `frames`, bounded by [`WRITE_TIMEOUT`]; an error means the connection is done.
/// In RESP3 (`shape` given) when the client asked for it.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S, Codec>,
    frames: Vec<Frame>,
    shape: Option<resp3::Shape>,
) -> Result<(), ()> {
    let write = async {
        for f in frames {
            match shape {
                None => framed.feed(f).await?,
                Some(shape) => framed.feed(resp3::convert(f, shape)).await?,
            }
        }
        SinkExt::<Frame>::flush(framed).await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// The next event for a subscribed client; pending forever while not subscribed.
async fn next_event(rx: &mut Option<broadcast::Receiver<Event>>) -> Option<Event> {
    let Some(r) = rx.as_mut() else {
        return std::future::pending().await;
    };
    match r.recv().await {
        Ok(e) => Some(e),
        Err(broadcast::error::RecvError::Lagged(n)) => {
            warn!("{SENTINEL_ERROR}: a subscriber missed {n} events (too slow)");
            None
        }
        Err(broadcast::error::RecvError::Closed) => {
            *rx = None;
            None
        }
    }
}

pub(super) fn password_matches(expected: &str, given: &str) -> bool {
    // Same time whatever the first differing byte, so that timing does not reveal a prefix.
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

impl Client {
    fn subscriptions(&self) -> i64 {
        (self.channels.len() + self.patterns.len()) as i64
    }

    fn deliver(&self, e: &Event) -> Vec<Frame> {
        let mut out = Vec::new();
        if self.channels.contains(e.channel) {
            out.push(Frame::Array(vec![
                bulk("message"),
                bulk(e.channel),
                bulk(e.message.clone()),
            ]));
        }
        for p in &self.patterns {
            if glob(p.as_bytes(), e.channel.as_bytes(), false) {
                out.push(Frame::Array(vec![
                    bulk("pmessage"),
                    bulk(p.clone()),
                    bulk(e.channel),
                    bulk(e.message.clone()),
                ]));
            }
        }
        out
    }

    /// Checks `user`/`password` against the configured password; only Redis's `default`
    /// user exists here. Without a password, `default` takes any (Redis's `nopass`).
    fn authenticate(&mut self, shared: &Shared, user: &str, password: &str) -> bool {
        let ok = user == "default"
            && shared
                .state
                .password
                .as_deref()
                .is_none_or(|p| password_matches(p, password));
        if ok {
            self.authed = true;
        }
        ok
    }

    async fn handle(&mut self, shared: &Shared, args: Vec<String>) -> Reply {
        let cmd = args[0].to_ascii_lowercase();
        let known = COMMANDS.contains(&cmd.as_str());
        if !self.authed && !matches!(cmd.as_str(), "auth" | "hello" | "quit") {
            return error("NOAUTH Authentication required.").into();
        }
        if !known {
            return unknown_command(&args).into();
        }
        if self.subscriptions() > 0 && !SUBSCRIBED_COMMANDS.contains(&cmd.as_str()) {
            return error(format!(
                "ERR Can't execute '{cmd}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / \
                 QUIT / RESET are allowed in this context"
            ))
            .into();
        }
        match cmd.as_str() {
            "ping" => self.ping(&args).into(),
            "role" if args.len() == 1 => {
                let names = shared
                    .snapshots()
                    .into_iter()
                    .map(|s| bulk(s.name))
                    .collect();
                Frame::Array(vec![bulk("sentinel"), Frame::Array(names)]).into()
            }
            "role" => arity("role").into(),
            "quit" => Reply {
                frames: vec![ok()],
                close: true,
            },
            "auth" => self.auth(shared, &args).into(),
            "hello" => self.hello(shared, &args).into(),
            "client" => self.client_command(&args).into(),
            "info" => info(shared, &args).into(),
            "subscribe" | "psubscribe" => self.subscribe(shared, &cmd, &args),
            "unsubscribe" | "punsubscribe" => self.unsubscribe(&cmd, &args),
            _ => self.sentinel(shared, &args).await.into(),
        }
    }

    fn ping(&self, args: &[String]) -> Frame {
        if args.len() > 2 {
            return arity("ping");
        }
        if self.subscriptions() > 0 {
            let msg = args.get(1).cloned().unwrap_or_default();
            return Frame::Array(vec![bulk("pong"), bulk(msg)]);
        }
        match args.get(1) {
            Some(m) => bulk(m.clone()),
            None => simple("PONG"),
        }
    }

    fn auth(&mut self, shared: &Shared, args: &[String]) -> Frame {
        let (user, password) = match args.len() {
            2 => ("default", args[1].as_str()),
            3 => (args[1].as_str(), args[2].as_str()),
            1 => return arity("auth"),
            _ => return error("ERR syntax error"),
        };
        if shared.state.password.is_none() && args.len() == 2 {
            return error(
                "ERR AUTH <password> called without any password configured for the default \
                 user. Are you sure your configuration is correct?",
            );
        }
        if self.authenticate(shared, user, password) {
            ok()
        } else {
            error(WRONGPASS)
        }
    }

    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`; RESP3 is not spoken here.
    fn hello(&mut self, shared: &Shared, args: &[String]) -> Frame {
        if let Some(v) = args.get(1) {
            match v.parse::<i64>() {
                Ok(2 | 3) => {}
                Ok(_) => return error("NOPROTO unsupported protocol version"),
                Err(_) => return error("ERR Protocol version is not an integer or out of range"),
            }
        }
        let mut auth = None;
        let mut setname = None;
        let mut i = 2;
        while i < args.len() {
            let opt = args[i].to_ascii_lowercase();
            match opt.as_str() {
                "auth" if i + 2 < args.len() => {
                    auth = Some((args[i + 1].as_str(), args[i + 2].as_str()));
                    i += 3;
                }
                "setname" if i + 1 < args.len() => {
                    setname = Some(args[i + 1].clone());
                    i += 2;
                }
                _ => return error(format!("ERR Syntax error in HELLO option '{}'", args[i])),
            }
        }
        if let Some((user, password)) = auth {
            if !self.authenticate(shared, user, password) {
                return error(WRONGPASS);
            }
        }
        if !self.authed {
            return error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise \
                 the HELLO AUTH <user> <pass> option can be used to authenticate the client and \
                 select the RESP protocol version at the same time",
            );
        }
        if let Some(name) = setname {
            if let Err(e) = self.set_name(name) {
                return e;
            }
        }
        if let Some(v) = args.get(1) {
            self.resp3 = v == "3";
        }
        Frame::Array(vec![
            bulk("server"),
            bulk("redis"),
            bulk("version"),
            bulk(REDIS_VERSION),
            bulk("proto"),
            int(if self.resp3 { 3 } else { 2 }),
            bulk("id"),
            int(self.id as i64),
            bulk("mode"),
            bulk("sentinel"),
            bulk("modules"),
            Frame::Array(Vec::new()),
        ])
    }

    fn set_name(&mut self, name: String) -> Result<(), Frame> {
        if name.bytes().any(|b| !(b'!'..=b'~').contains(&b)) {
            return Err(error(
                "ERR Client names cannot contain spaces, newlines or special characters.",
            ));
        }
        self.name = (!name.is_empty()).then_some(name);
        Ok(())
    }

    fn client_command(&mut self, args: &[String]) -> Frame {
        let Some(sub) = args.get(1).map(|s| s.to_ascii_lowercase()) else {
            return arity("client");
        };
        match (sub.as_str(), args.len()) {
            ("setinfo", 4) => match args[2].to_ascii_lowercase().as_str() {
                "lib-name" | "lib-ver" => ok(),
                _ => error(format!("ERR Unrecognized option '{}'", args[2])),
            },
            ("setname", 3) => match self.set_name(args[2].clone()) {
                Ok(()) => ok(),
                Err(e) => e,
            },
            ("getname", 2) => self.name.clone().map_or(Frame::Null, bulk),
            ("id", 2) => int(self.id as i64),
            ("setinfo" | "setname" | "getname" | "id", _) => arity(&format!("client|{sub}")),
            _ => error(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                args[1]
            )),
        }
    }

    fn subscribe(&mut self, shared: &Shared, cmd: &str, args: &[String]) -> Reply {
        if args.len() < 2 {
            return arity(cmd).into();
        }
        let mut frames = Vec::new();
        for ch in &args[1..] {
            if cmd == "subscribe" {
                self.channels.insert(ch.clone());
            } else {
                self.patterns.insert(ch.clone());
            }
            frames.push(Frame::Array(vec![
                bulk(cmd),
                bulk(ch.clone()),
                int(self.subscriptions()),
            ]));
        }
        if self.events.is_none() {
            self.events = Some(shared.events.subscribe());
        }
        Reply {
            frames,
            close: false,
        }
    }

    fn unsubscribe(&mut self, cmd: &str, args: &[String]) -> Reply {
        let set = if cmd == "unsubscribe" {
            &mut self.channels
        } else {
            &mut self.patterns
        };
        let targets: Vec<String> = if args.len() == 1 {
            set.iter().cloned().collect()
        } else {
            args[1..].to_vec()
        };
        let mut frames = Vec::new();
        if targets.is_empty() {
            frames.push(Frame::Array(vec![
                bulk(cmd),
                Frame::Null,
                int(self.subscriptions()),
            ]));
        }
        for t in targets {
            let set = if cmd == "unsubscribe" {
                &mut self.channels
            } else {
                &mut self.patterns
            };
            set.remove(&t);
            frames.push(Frame::Array(vec![
                bulk(cmd),
                bulk(t),
                int(self.subscriptions()),
            ]));
        }
        if self.subscriptions() == 0 {
            self.events = None;
        }
        Reply {
            frames,
            close: false,
        }
    }
}
