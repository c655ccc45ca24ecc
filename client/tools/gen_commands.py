#!/usr/bin/env python3
"""Regenerate the command table in client/src/commands/table.rs from a live Redis server.

The table sits between the `BEGIN GENERATED TABLE` / `END GENERATED TABLE` marker lines
of commands/table.rs; everything outside the markers is hand-written and left untouched.

By default the script starts a throw-away `redis-server` (found on PATH, or --redis-server)
listening only on a unix socket in a temporary directory (no TCP port, no persistence), runs
`INFO server` and `COMMAND`, then shuts it down. With --connect HOST:PORT it queries an
existing server instead. Only the standard library is used (RESP2 over a socket).

For every command and every container subcommand (named `container|sub`, as Redis 7 does) it
records the arity, the command flags, the legacy key range (first key, last key, step), whether
it is a container, and whether its "keys" are really shard channels (key specs flagged not_key).
It also generates the `Flags` constants from FLAGS below.

Usage:
    client/tools/gen_commands.py              # rewrite client/src/commands/table.rs
    client/tools/gen_commands.py --check      # exit 1 if the file is not up to date
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "src", "commands", "table.rs"))
BEGIN = "// BEGIN GENERATED TABLE"
END = "// END GENERATED TABLE"

# Flag names COMMAND can report (Redis 7 `replyFlagNames`; `may_replicate`, `sentinel`,
# `only_sentinel` and `protected` are hidden on purpose by the server), in bit order.
# The `Flags` constants of commands/table.rs are generated from this list. A flag the server reports
# that is not listed here is an error: add it (at the end, to keep the bit order).
FLAGS = [
    "write",
    "readonly",
    "denyoom",
    "module",
    "admin",
    "pubsub",
    "noscript",
    "blocking",
    "loading",
    "stale",
    "skip_monitor",
    "skip_slowlog",
    "asking",
    "fast",
    "no_auth",
    "no_mandatory_keys",
    "no_async_loading",
    "no_multi",
    "movablekeys",
    "allow_busy",
]


class Resp:
    """Minimal blocking RESP2 client."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("connection closed by redis")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("connection closed by redis")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis error: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError("unexpected RESP type %r" % kind)


def start_server(binary, tmp):
    sock_path = os.path.join(tmp, "redis.sock")
    proc = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", sock_path, "--dir", tmp,
         "--save", "", "--appendonly", "no", "--daemonize", "no",
         "--logfile", os.path.join(tmp, "redis.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("redis-server exited early; see its log in " + tmp)
        if os.path.exists(sock_path):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(sock_path)
                return proc, s
            except OSError:
                s.close()
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not come up")


def fetch(args):
    """Return (redis_version, [command entries])."""
    if args.connect:
        host, _, port = args.connect.rpartition(":")
        s = socket.create_connection((host or "127.0.0.1", int(port)), timeout=10)
        try:
            r = Resp(s)
            return server_version(r), r.call("COMMAND")
        finally:
            s.close()
    binary = args.redis_server or shutil.which("redis-server")
    if not binary:
        raise RuntimeError("redis-server not found; pass --redis-server or --connect")
    tmp = tempfile.mkdtemp(prefix="gen_commands.")
    proc = None
    try:
        proc, s = start_server(binary, tmp)
        r = Resp(s)
        version, entries = server_version(r), r.call("COMMAND")
        s.close()
        return version, entries
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def server_version(r):
    for line in r.call("INFO", "server").splitlines():
        if line.startswith("redis_version:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError("no redis_version in INFO server")


def key_specs(entry):
    """The key specs of a COMMAND entry (element 9 in Redis 7) as dicts."""
    specs = entry[8] if len(entry) > 8 and entry[8] else []
    return [dict(zip(ks[::2], ks[1::2])) for ks in specs]


def flatten(entries):
    """Yield (name, arity, flags, first, last, step, has_subcommands, not_key) rows for every
    command and subcommand. not_key: the command has key specs and all are flagged not_key
    (shard channels of SPUBLISH / SSUBSCRIBE / SUNSUBSCRIBE)."""
    for e in entries:
        name, arity, flags, first, last, step = e[:6]
        specs = key_specs(e)
        not_key = bool(specs) and all("not_key" in ks.get("flags", []) for ks in specs)
        subs = e[9] if len(e) > 9 and e[9] else []
        yield name.lower(), arity, flags, first, last, step, bool(subs), not_key
        for sub in flatten(subs):
            yield sub


def rust_bool(b):
    return "true" if b else "false"


def rust_table(version, rows):
    out = [BEGIN]
    out.append("// Generated by client/tools/gen_commands.py from `COMMAND` of redis-server %s." % version)
    out.append("// Do not edit by hand: rerun the script (it starts its own throw-away redis-server).")
    out.append("")
    out.append("/// The Redis server the table was generated from.")
    out.append('pub const GENERATED_FROM: &str = "redis-server %s";' % version)
    out.append("")
    out.append("impl Flags {")
    for i, f in enumerate(FLAGS):
        out.append("    /// `%s`" % f)
        out.append("    pub const %s: Flags = Flags(1 << %d);" % (f.upper(), i))
    out.append("")
    out.append("    /// Every flag, with the name `COMMAND` gives it, in bit order.")
    out.append("    pub const ALL: &'static [(Flags, &'static str)] = &[")
    for f in FLAGS:
        out.append('        (Flags::%s, "%s"),' % (f.upper(), f))
    out.append("    ];")
    out.append("}")
    out.append("")
    out.append("/// Every command and container subcommand of that server, sorted by name (bytewise).")
    out.append("#[rustfmt::skip]")
    out.append("pub static COMMANDS: &[CommandSpec] = &[")
    out.append("    // name, arity, flags, first key, last key, step, has subcommands, not_key")
    for name, arity, flags, first, last, step, subs, not_key in rows:
        fl = ", ".join("F::" + f.upper() for f in FLAGS if f in flags)
        out.append('    c("%s", %d, &[%s], %d, %d, %d, %s, %s),' % (
            name, arity, fl, first, last, step, rust_bool(subs), rust_bool(not_key)))
    out.append("];")
    out.append(END)
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--redis-server", help="redis-server binary (default: from PATH)")
    ap.add_argument("--connect", metavar="HOST:PORT", help="query this running server instead")
    ap.add_argument("--out", default=DEFAULT_OUT, help="commands/table.rs to update (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 if out of date")
    args = ap.parse_args()

    version, entries = fetch(args)
    rows = sorted(flatten(entries), key=lambda r: r[0].encode())
    names = [r[0] for r in rows]
    if len(set(names)) != len(names):
        raise RuntimeError("duplicate command names in COMMAND output")
    for r in rows:
        unknown = [f for f in r[2] if f not in FLAGS]
        if unknown:
            raise RuntimeError("command %s has unknown flags %s: add them to FLAGS and to "
                               "`Flags` in commands/table.rs" % (r[0], unknown))
        if not r[0].isascii() or '"' in r[0] or "\\" in r[0]:
            raise RuntimeError("unexpected command name %r" % r[0])

    with open(args.out, encoding="utf-8") as f:
        text = f.read()
    # The markers are whole lines; they must each appear exactly once.
    lines = text.splitlines(keepends=True)
    begins = [i for i, l in enumerate(lines) if l.rstrip("\n") == BEGIN]
    ends = [i for i, l in enumerate(lines) if l.rstrip("\n") == END]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise RuntimeError("%s needs exactly one %r line followed by one %r line"
                           % (args.out, BEGIN, END))
    new = "".join(lines[: begins[0]]) + rust_table(version, rows) + "".join(lines[ends[0] + 1 :])

    if args.check:
        if new != text:
            print("%s is out of date (regenerate with %s)" % (args.out, sys.argv[0]), file=sys.stderr)
            return 1
        print("%s is up to date (%d commands, redis-server %s)" % (args.out, len(rows), version))
        return 0
    if new != text:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(new)
    print("wrote %d commands from redis-server %s to %s" % (len(rows), version, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
