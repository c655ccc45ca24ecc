#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup helpers are only reached from the traps
# Local demo of redis_failover: a throwaway standalone ZooKeeper, one Redis master with two
# replicas (all on free loopback ports, all files in a mktemp -d directory) and the manager
# (redis_node_manager, with its HTTP and Sentinel-protocol endpoints) in the foreground. Play
# with it from another terminal (the commands are printed, with the real ports); ctrl-c stops
# everything this script started and removes the temp dir, also when the output is piped
# (`scripts/demo.sh 2>&1 | tee demo.log`: ctrl-c kills tee too, and the cleanup goes on).
#
# Usage (from anywhere):  scripts/demo.sh
# Environment:
#   DEMO_ZK_PORT        ZooKeeper client port               (default: first free from 22181)
#   DEMO_REDIS_PORT     Redis master port; replicas +1 +2    (default: first free trio from 26400)
#   DEMO_HTTP_PORT      manager's --http-addr port           (default: first free from 28080)
#   DEMO_SENTINEL_PORT  manager's --sentinel-addr port       (default: first free from 26379)
#   DEMO_PROFILE        cargo profile of the manager build: release or debug (default: release)
#   DEMO_INSTALL        "no": fail instead of installing missing packages with apt-get
#   DEMO_UNTIL          "ready": stop everything and exit 0 once the group is up and the
#                       commands are printed (a smoke test of the demo itself)
#   RUST_LOG            manager log filter                   (default: info)
# Needs redis-server, java and the Debian zookeeper package (installed with apt-get if missing),
# and cargo.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"

ZK_JAR=/usr/share/java/zookeeper.jar
SLF4J_SIMPLE=/usr/share/java/slf4j-simple.jar
ZKCLI_SH=/usr/share/zookeeper/bin/zkCli.sh
ZNODE_PATH=/redis_failover
GROUP_NAME=mymaster
DOWN_AFTER_MS=1000
ZK_JVM_OPTS=(-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k -Xms16m -Xmx256m -XX:-UsePerfData)

say() { printf 'demo: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------------------------------------
# 1. prerequisites
# ---------------------------------------------------------------------------------------------
have_deps() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 &&
    command -v java >/dev/null 2>&1 && [ -f "$ZK_JAR" ]
}

if ! have_deps; then
  [ "${DEMO_INSTALL:-yes}" != no ] || die "missing prerequisites (DEMO_INSTALL=no): apt-get install -y redis-server zookeeper"
  say "missing: $(
    command -v redis-server >/dev/null 2>&1 || printf 'redis-server '
    command -v redis-cli >/dev/null 2>&1 || printf 'redis-cli '
    command -v java >/dev/null 2>&1 || printf 'java '
    [ -f "$ZK_JAR" ] || printf '%s ' "$ZK_JAR"
  )"
  install_hint="apt-get update && apt-get install -y redis-server zookeeper"
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      SUDO=(sudo)
    else
      die "not root and no sudo: please install them as root:  $install_hint"
    fi
  fi
  command -v apt-get >/dev/null 2>&1 ||
    die "no apt-get here: please install redis-server (with redis-cli), a Java runtime and ZooKeeper 3.x (expected at $ZK_JAR)"
  say "installing with: ${SUDO[*]+${SUDO[*]} }$install_hint"
  ${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update
  ${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server zookeeper
  have_deps || die "still missing prerequisites after apt-get install (redis-server, redis-cli, java, $ZK_JAR)"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found: install a Rust toolchain (https://rustup.rs) first"

ZK_CP=$ZK_JAR
[ -f "$SLF4J_SIMPLE" ] && ZK_CP="$ZK_CP:$SLF4J_SIMPLE"

# ---------------------------------------------------------------------------------------------
# 2. build the manager first (fail fast, before anything is started)
# ---------------------------------------------------------------------------------------------
PROFILE=${DEMO_PROFILE:-release}
case $PROFILE in
  release) PROFILE_FLAGS=(--release) ;;
  debug) PROFILE_FLAGS=() ;;
  *) die "DEMO_PROFILE=$PROFILE: expected release or debug" ;;
esac
say "building redis_node_manager ($PROFILE)..."
cargo build ${PROFILE_FLAGS[@]+"${PROFILE_FLAGS[@]}"} -p redis-failover-manager --bin redis_node_manager
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  grep -o '"target_directory":"[^"]*"' | head -n1 | cut -d'"' -f4 || true)
[ -n "$TARGET_DIR" ] || TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
MANAGER_BIN=$TARGET_DIR/$PROFILE/redis_node_manager
[ -x "$MANAGER_BIN" ] || die "built binary not found at $MANAGER_BIN"

# ---------------------------------------------------------------------------------------------
# cleanup: everything we start is tracked by pid and stopped on EXIT, INT, TERM, HUP and PIPE.
# It must survive its own output going nowhere: with `demo.sh 2>&1 | tee log`, ctrl-c kills tee
# too, and a plain write to the closed pipe would end this script (SIGPIPE, or set -e) before
# ZooKeeper (a background java, which ignores SIGINT) and a restarted master are stopped.
# ---------------------------------------------------------------------------------------------
DEMO_DIR=""
ZK_PID=""
MANAGER_PID=""
REDIS_PORTS=()
declare -A REDIS_PID=()
CLEANING=""
OUT="stderr" # where the cleanup's messages go: stderr, then the terminal, then nowhere

note() { # say, for the cleanup: never fails, never raises SIGPIPE (ignored there)
  if [ "$OUT" = stderr ]; then
    printf 'demo: %s\n' "$*" >&2 2>/dev/null && return 0
    OUT="tty" # stderr is gone (closed pipe, hung-up terminal): the terminal, if still there
  fi
  if [ "$OUT" = tty ]; then
    printf 'demo: %s\n' "$*" 2>/dev/null >/dev/tty && return 0
    OUT="none"
  fi
  return 0
}

pid_alive() { # a zombie (exited, not yet reaped) counts as gone
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

wait_pid_gone() { # pid timeout_ms
  local pid=$1 deadline=$(($(now_ms) + $2))
  while pid_alive "$pid"; do
    [ "$(now_ms)" -gt "$deadline" ] && return 1
    sleep 0.05
  done
}

stop_pid() { # pid name: SIGCONT (in case it was SIGSTOPped), SIGTERM, SIGKILL after 5 s
  local pid=$1 name=$2
  [ -n "$pid" ] || return 0
  if pid_alive "$pid"; then
    note "stopping $name (pid $pid)"
    kill -CONT "$pid" 2>/dev/null
    kill -TERM "$pid" 2>/dev/null
    if ! wait_pid_gone "$pid" 5000; then
      note "$name (pid $pid) did not stop in 5 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null
      wait_pid_gone "$pid" 2000
    fi
  fi
  wait "$pid" 2>/dev/null # reap it if it is our child
  return 0
}

is_redis_on_port() { # pid port: guards against a stale pid file / reused pid
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *redis-server* && $cmd == *":$2"* ]]
}

strays() { # redis-server / java processes still working in $DEMO_DIR (cwd or command line),
  # e.g. a master restarted by hand with other options; never a shell that cd'ed there
  local d pid comm
  [ -n "$DEMO_DIR" ] || return 0
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [ "$pid" != "$$" ] || continue
    read -r comm 2>/dev/null <"$d/comm" || continue
    case $comm in redis-server | redis-check-rdb | java) ;; *) continue ;; esac
    if [[ "$(readlink "$d/cwd" 2>/dev/null)" == "$DEMO_DIR"* ]] ||
      tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qF "$DEMO_DIR"; then
      printf '%s\n' "$pid"
    fi
  done
}

cleanup() {
  local rc=$? port pid
  set +e
  [ -z "$CLEANING" ] || return 0
  CLEANING=1
  trap '' INT TERM HUP PIPE # a second ctrl-c must not cut the cleanup short; writes just fail
  trap - EXIT
  stop_pid "$MANAGER_PID" "redis_node_manager"
  for port in "${REDIS_PORTS[@]}"; do
    # the one we started, and whatever the printed "restart" command started (its pid file)
    for pid in "${REDIS_PID[$port]:-}" "$(cat "$DEMO_DIR/redis-$port.pid" 2>/dev/null)"; do
      [ -n "$pid" ] && pid_alive "$pid" && is_redis_on_port "$pid" "$port" &&
        stop_pid "$pid" "redis-server :$port"
      [ -n "$pid" ] && wait "$pid" 2>/dev/null
    done
  done
  stop_pid "$ZK_PID" "zookeeper"
  # whatever else: our children we did not record yet (a signal right after a start), and
  # Redis/ZooKeeper processes still using the temp dir
  for pid in $(pgrep -P "$$" 2>/dev/null) $(strays); do
    stop_pid "$pid" "$(cat "/proc/$pid/comm" 2>/dev/null || echo process)"
  done
  if [ -n "$DEMO_DIR" ] && [ -d "$DEMO_DIR" ]; then
    rm -rf "$DEMO_DIR"
    note "removed $DEMO_DIR"
  fi
  note "all stopped"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

DEMO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/redis-failover-demo.XXXXXX")

# ---------------------------------------------------------------------------------------------
# free loopback ports
# ---------------------------------------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -n "${DEMO_ZK_PORT:-}" ]; then
  ZK_PORT=$DEMO_ZK_PORT
  port_in_use "$ZK_PORT" && die "DEMO_ZK_PORT=$ZK_PORT is already in use"
else
  ZK_PORT=""
  for p in $(seq 22181 22281); do
    port_in_use "$p" || { ZK_PORT=$p; break; }
  done
  [ -n "$ZK_PORT" ] || die "no free ZooKeeper port in 22181-22281 (set DEMO_ZK_PORT)"
fi

trio_free() { ! port_in_use "$1" && ! port_in_use $(($1 + 1)) && ! port_in_use $(($1 + 2)); }
if [ -n "${DEMO_REDIS_PORT:-}" ]; then
  BASE=$DEMO_REDIS_PORT
  trio_free "$BASE" || die "one of DEMO_REDIS_PORT=$BASE, $((BASE + 1)), $((BASE + 2)) is already in use"
else
  BASE=""
  for p in $(seq 26400 3 26700); do
    trio_free "$p" && { BASE=$p; break; }
  done
  [ -n "$BASE" ] || die "no three free Redis ports in 26400-26702 (set DEMO_REDIS_PORT)"
fi
MASTER_PORT=$BASE
REDIS_PORTS=("$BASE" $((BASE + 1)) $((BASE + 2)))

pick_port() { # env_var first last what -> PICKED: the env var's port if free, else the first free
  local name=$1 v=${!1:-} p
  if [ -n "$v" ]; then
    port_in_use "$v" && die "$name=$v is already in use"
    PICKED=$v
    return 0
  fi
  for p in $(seq "$2" "$3"); do
    port_in_use "$p" || { PICKED=$p; return 0; }
  done
  die "no free $4 port in $2-$3 (set $name)"
}
pick_port DEMO_HTTP_PORT 28080 28179 HTTP
HTTP_PORT=$PICKED
pick_port DEMO_SENTINEL_PORT 26379 26399 Sentinel
SENTINEL_PORT=$PICKED

# ---------------------------------------------------------------------------------------------
# ZooKeeper (standalone)
# ---------------------------------------------------------------------------------------------
zk_ready() { # the 4-letter srvr reply says "Mode:" only once ZK really serves (ruok is too early)
  local out
  out=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && timeout 1 cat <&3) 2>/dev/null) || return 1
  [[ $out == *"Mode:"* ]]
}

mkdir -p "$DEMO_DIR/zk-data"
cat >"$DEMO_DIR/zoo.cfg" <<EOF
tickTime=500
dataDir=$DEMO_DIR/zk-data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
minSessionTimeout=1000
maxSessionTimeout=60000
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr,cons,dump,wchs,wchc,conf,envi,crst,srst
forceSync=no
EOF

say "starting ZooKeeper on 127.0.0.1:$ZK_PORT"
java "${ZK_JVM_OPTS[@]}" -cp "$ZK_CP" \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -Dzookeeper.jmx.log4j.disable=true \
  org.apache.zookeeper.server.ZooKeeperServerMain "$DEMO_DIR/zoo.cfg" \
  >>"$DEMO_DIR/zk.log" 2>&1 </dev/null &
ZK_PID=$!
t0=$(now_ms)
until zk_ready "$ZK_PORT"; do
  pid_alive "$ZK_PID" || { tail -n 20 "$DEMO_DIR/zk.log" >&2; die "ZooKeeper exited (log above)"; }
  [ $(($(now_ms) - t0)) -lt 30000 ] || { tail -n 20 "$DEMO_DIR/zk.log" >&2; die "ZooKeeper not serving after 30 s"; }
  sleep 0.1
done
say "ZooKeeper ready (pid $ZK_PID) in $(($(now_ms) - t0)) ms"

# ---------------------------------------------------------------------------------------------
# Redis: master + 2 replicas
# ---------------------------------------------------------------------------------------------
redis_args() { # port [master_port] -> prints nothing, fills REDIS_ARGS
  REDIS_ARGS=(--port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$DEMO_DIR"
    --dbfilename "dump-$1.rdb" --logfile "$DEMO_DIR/redis-$1.log"
    --pidfile "$DEMO_DIR/redis-$1.pid" --protected-mode no
    --repl-diskless-sync no --repl-diskless-load disabled)
  if [ -n "${2:-}" ]; then REDIS_ARGS+=(--replicaof 127.0.0.1 "$2"); fi
}

start_redis() { # port [master_port]
  local port=$1 t0
  redis_args "$@"
  redis-server "${REDIS_ARGS[@]}" --daemonize no </dev/null >/dev/null 2>&1 &
  REDIS_PID[$port]=$!
  t0=$(now_ms)
  until [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; do
    pid_alive "${REDIS_PID[$port]}" || { tail -n 20 "$DEMO_DIR/redis-$port.log" >&2; die "redis-server :$port exited"; }
    [ $(($(now_ms) - t0)) -lt 10000 ] || die "redis-server :$port not answering after 10 s"
    sleep 0.05
  done
  say "redis-server 127.0.0.1:$port ready (pid ${REDIS_PID[$port]})${2:+, replica of :$2}"
}

wait_link_up() { # replica_port
  local t0
  t0=$(now_ms)
  until redis-cli -p "$1" info replication 2>/dev/null | grep -q 'master_link_status:up'; do
    [ $(($(now_ms) - t0)) -lt 20000 ] || die "replica :$1 link to the master not up after 20 s"
    sleep 0.05
  done
}

start_redis "${REDIS_PORTS[0]}"
start_redis "${REDIS_PORTS[1]}" "$MASTER_PORT"
start_redis "${REDIS_PORTS[2]}" "$MASTER_PORT"
wait_link_up "${REDIS_PORTS[1]}"
wait_link_up "${REDIS_PORTS[2]}"
say "both replicas report master_link_status:up"

# ---------------------------------------------------------------------------------------------
# the manager, in the foreground of this terminal. It runs as a background job that we `wait`
# for, so that INT/TERM/HUP reach our trap at once and everything is stopped by pid. The
# commands are printed once it has published the topology, so that they all work at once.
# ---------------------------------------------------------------------------------------------
NODES="127.0.0.1:${REDIS_PORTS[0]},127.0.0.1:${REDIS_PORTS[1]},127.0.0.1:${REDIS_PORTS[2]}"
ZK_ADDR=127.0.0.1:$ZK_PORT
MANAGER_ARGS=(-n "$NODES" -z "$ZK_ADDR" --znode-path "$ZNODE_PATH" --group-name "$GROUP_NAME"
  --down-after-ms "$DOWN_AFTER_MS" --http-addr "127.0.0.1:$HTTP_PORT"
  --sentinel-addr "127.0.0.1:$SENTINEL_PORT")
say "starting redis_node_manager (RUST_LOG=${RUST_LOG:-info})"
RUST_LOG=${RUST_LOG:-info} "$MANAGER_BIN" "${MANAGER_ARGS[@]}" &
MANAGER_PID=$!

published_master() { # what Sentinel-aware clients get: "host port" once a master is published
  redis-cli -p "$SENTINEL_PORT" SENTINEL get-master-addr-by-name "$GROUP_NAME" 2>/dev/null |
    paste -sd' ' -
}
t0=$(now_ms)
until [ "$(published_master)" = "127.0.0.1 $MASTER_PORT" ]; do
  pid_alive "$MANAGER_PID" || die "redis_node_manager exited (its log is above)"
  [ $(($(now_ms) - t0)) -lt 30000 ] || die "redis_node_manager did not publish the master in 30 s"
  sleep 0.1
done

# ---------------------------------------------------------------------------------------------
# how to play
# ---------------------------------------------------------------------------------------------
MPID=${REDIS_PID[$MASTER_PORT]}
redis_args "$MASTER_PORT"
RESTART_CMD=$(printf '%q ' redis-server "${REDIS_ARGS[@]}" --daemonize yes)
ZK_GET_FAST="java -XX:TieredStopAtLevel=1 -cp $ZK_CP -Dorg.slf4j.simpleLogger.defaultLogLevel=error org.apache.zookeeper.ZooKeeperMain -server $ZK_ADDR get $ZNODE_PATH/nodes"
EXAMPLE_ARGS="--zk $ZK_ADDR --znode-path $ZNODE_PATH"
# the examples in the manager's profile: a release build reuses the dependencies built above
CARGO_RUN="cargo run${PROFILE_FLAGS[*]+ ${PROFILE_FLAGS[*]}} -p redis-failover-examples --bin"

cat <<EOF | tee "$DEMO_DIR/HOWTO.txt"

================================ redis_failover demo ================================
 ZooKeeper  $ZK_ADDR (pid $ZK_PID)
 Redis      master 127.0.0.1:${REDIS_PORTS[0]} (pid $MPID)
            replica 127.0.0.1:${REDIS_PORTS[1]} (pid ${REDIS_PID[${REDIS_PORTS[1]}]}), replica 127.0.0.1:${REDIS_PORTS[2]} (pid ${REDIS_PID[${REDIS_PORTS[2]}]})
 Manager    (pid $MANAGER_PID) $MANAGER_BIN ${MANAGER_ARGS[*]}
 Files      $DEMO_DIR  (zk.log, redis-PORT.log, this text in HOWTO.txt)

 Look at the group, from another terminal:
  * the group as the managers publish it in ZooKeeper (add --json for JSON):
      $MANAGER_BIN status -z $ZK_ADDR --znode-path $ZNODE_PATH
  * the same over the manager's HTTP endpoint, and its Prometheus metrics:
      curl -s http://127.0.0.1:$HTTP_PORT/status
      curl -s http://127.0.0.1:$HTTP_PORT/metrics
  * the master, asked the way Sentinel-aware clients ask (the manager answers as a Sentinel):
      redis-cli -p $SENTINEL_PORT SENTINEL get-master-addr-by-name $GROUP_NAME
  * the topology znode itself:
      $ZKCLI_SH -server $ZK_ADDR get $ZNODE_PATH/nodes
    faster and quieter:
      $ZK_GET_FAST
  * role of each Redis node:
      redis-cli -p ${REDIS_PORTS[0]} role; redis-cli -p ${REDIS_PORTS[1]} role; redis-cli -p ${REDIS_PORTS[2]} role

 Run a client, from $REPO_ROOT:
  * connect through ZooKeeper, write, read, print the topology:
      $CARGO_RUN basic -- $EXAMPLE_ARGS
  * write and read in a loop, printing each topology change and error (then kill the master):
      $CARGO_RUN survive_failover -- $EXAMPLE_ARGS --seconds 300
  * print the topology znode every time it changes:
      $CARGO_RUN watch_topology -- $EXAMPLE_ARGS

 Break it:
  * crash the master and watch a replica get promoted (new "master" in the znode, higher epoch):
      kill -9 $MPID
  * or freeze it instead (a hung node is declared down after ${DOWN_AFTER_MS} ms):
      kill -STOP $MPID        # thaw with: kill -CONT $MPID
  * restart the old master after the kill; the manager turns it into a replica of the new one:
      $RESTART_CMD
  * ctrl-c here stops everything (manager, the Redis nodes, ZooKeeper) and removes $DEMO_DIR
=====================================================================================

EOF

if [ "${DEMO_UNTIL:-}" = ready ]; then
  say "ready (DEMO_UNTIL=ready): stopping everything"
  exit 0
fi
say "ready: the manager's log follows; ctrl-c to stop everything"
rc=0
wait "$MANAGER_PID" || rc=$?
MANAGER_PID=""
say "redis_node_manager exited with status $rc"
exit "$rc"
