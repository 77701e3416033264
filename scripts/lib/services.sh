# Shared by scripts/test and scripts/cluster (sourced, not run): start what livescore needs on
# this machine, reusing what already answers, and remember what was started so that it can be
# stopped at the end.
#
#   ensure_redis HOST PORT     redis-server (installed from Debian's packages if missing)
#   ensure_redis_sentinels PORT DIR  a Redis primary on PORT, its replica on PORT+1 and three
#                              sentinels on PORT+2..PORT+4 (quorum 2, primary down after 2 s),
#                              on 127.0.0.1, data and logs under DIR; exports REDIS_SENTINELS
#                              and REDIS_SENTINEL_MASTER (redis_primary_port: where it is now)
#   start_redis_node PORT DIR [PRIMARY]  one Redis of such a group (again, after a kill)
#   ensure_tansu HOST PORT LOG [DIR]  the tansu Kafka-protocol broker (cargo install, once, ~15
#                              minutes): in memory, or keeping its data in SQLite under DIR
#   ensure_nginx               Debian's nginx (installed if missing; not started)
#   ensure_prometheus          Debian's prometheus (installed if missing; not started)
#   stop_started               stops, in reverse order, every process these functions started

export PATH="$HOME/.cargo/bin:$PATH"
started=()

step() { printf '\n== %s\n' "$*"; }
listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_for() { # host port what
  for _ in $(seq 1 100); do listening "$1" "$2" && return 0; sleep 0.1; done
  echo "$3 did not start listening on $1:$2" >&2
  return 1
}
# Installs Debian packages, unless NO_INSTALL=1 (the tests set it: scripts/test installs
# everything up front, so that no test runs a package manager or races another for its lock).
apt_install() {
  if [ "${NO_INSTALL:-0}" = 1 ]; then
    echo "missing: $* (NO_INSTALL=1: scripts/test installs it before the tests run)" >&2
    return 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}
stop_started() {
  local i
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do kill "${started[i]}" 2>/dev/null || true; done
  started=()
}

ensure_redis() { # host port logfile
  if listening "$1" "$2"; then
    echo "redis: already listening on $1:$2"
    return 0
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --bind "$1" --port "$2" --save "" --appendonly no --daemonize no >"$3" 2>&1 &
  started+=($!)
  wait_for "$1" "$2" redis-server
  echo "redis: started on $1:$2"
}

# One Redis of a group, on port, its data in dir/port, written on every command before the answer
# (appendfsync always, as production would); a replica of replicaof if given. Its pid is in
# redis_node_pid.
start_redis_node() { # port dir [replicaof-port]
  mkdir -p "$2/$1"
  redis-server --port "$1" --dir "$2/$1" --bind 127.0.0.1 --appendonly yes --appendfsync always \
    --save "" ${3:+--replicaof 127.0.0.1 "$3"} >>"$2/$1.log" 2>&1 &
  redis_node_pid=$!
  started+=($!)
  wait_for 127.0.0.1 "$1" "redis on $1"
}

redis_sentinel_master=livescore
ensure_redis_sentinels() { # port dir
  local base=$1 dir=$2 i p ready
  REDIS_SENTINELS=127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3)),127.0.0.1:$((base + 4))
  export REDIS_SENTINELS REDIS_SENTINEL_MASTER=$redis_sentinel_master
  if listening 127.0.0.1 "$((base + 2))"; then
    echo "redis sentinels: already listening on $REDIS_SENTINELS"
    return 0
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  for i in 0 1 2 3 4; do
    p=$((base + i))
    if listening 127.0.0.1 "$p"; then
      echo "port $p is taken: the Redis group needs $base-$((base + 4)) (set another port)" >&2
      return 1
    fi
  done
  start_redis_node "$base" "$dir"
  start_redis_node "$((base + 1))" "$dir" "$base"
  for i in 2 3 4; do
    p=$((base + i))
    mkdir -p "$dir/sentinel-$p"
    # A sentinel rewrites its file as it learns the group: a fresh one on each start.
    printf '%s\n' "port $p" "bind 127.0.0.1" "dir $dir/sentinel-$p" \
      "sentinel monitor $redis_sentinel_master 127.0.0.1 $base 2" \
      "sentinel down-after-milliseconds $redis_sentinel_master 2000" \
      "sentinel failover-timeout $redis_sentinel_master 10000" \
      "sentinel parallel-syncs $redis_sentinel_master 1" >"$dir/sentinel-$p/sentinel.conf"
    redis-server "$dir/sentinel-$p/sentinel.conf" --sentinel >"$dir/sentinel-$p.log" 2>&1 &
    started+=($!)
    wait_for 127.0.0.1 "$p" "redis sentinel"
  done
  # Ready for a failover once the replica is in sync and every sentinel knows it and the two
  # other sentinels.
  for _ in $(seq 1 300); do
    ready=yes
    redis-cli -p "$((base + 1))" info replication | grep -q master_link_status:up || ready=
    for i in 2 3 4; do
      redis-cli -p "$((base + i))" sentinel master "$redis_sentinel_master" 2>/dev/null |
        tr '\n' ' ' | grep -q "num-slaves 1 .*num-other-sentinels 2" || ready=
    done
    [ -n "$ready" ] && break
    sleep 0.1
  done
  if [ -z "$ready" ]; then
    echo "the sentinels did not find the replica and each other within 30 s (logs in $dir)" >&2
    return 1
  fi
  echo "redis: primary 127.0.0.1:$base, replica :$((base + 1)), sentinels $REDIS_SENTINELS"
}

# The primary's port now, as the sentinels name it.
redis_primary_port() {
  redis-cli -p "${REDIS_SENTINELS##*:}" sentinel get-master-addr-by-name "$redis_sentinel_master" | tail -n 1
}

# tansu with the engines livescore uses: memory (fast, for most tests) and SQLite (keeps its data
# across a restart: the local cluster, and the tests that kill the broker). An older install
# without SQLite is replaced.
install_tansu() {
  if command -v tansu >/dev/null && grep -qa sqlite3_open_v2 "$(command -v tansu)"; then
    return 0
  fi
  if [ "${NO_INSTALL:-0}" = 1 ]; then
    echo "missing: tansu with SQLite (NO_INSTALL=1: scripts/test installs it before the tests run)" >&2
    return 1
  fi
  echo "installing tansu 0.6.0 from crates.io, with its memory and SQLite engines (about 15 minutes, once)"
  cargo install tansu --version 0.6.0 --locked --force --features dynostore,libsql
}

ensure_tansu() { # host port logfile [sqlite-dir]: in memory, or in SQLite under sqlite-dir
  if listening "$1" "$2"; then
    echo "tansu: already listening on $1:$2"
    return 0
  fi
  install_tansu
  local storage=memory://tansu/ dir=.
  if [ -n "${4:-}" ]; then
    # sqlite://<file> is relative to tansu's working directory.
    dir=$4 storage=sqlite://tansu.db
    mkdir -p "$dir"
  fi
  (cd "$dir" && exec tansu broker --listener-url "tcp://$1:$2" --advertised-listener-url "tcp://$1:$2" \
    --storage-engine "$storage") >"$3" 2>&1 &
  started+=($!)
  wait_for "$1" "$2" tansu
  echo "tansu: started on $1:$2 ($storage${4:+ in $4})"
}

ensure_prometheus() {
  command -v prometheus >/dev/null || apt_install prometheus
}
ensure_nginx() {
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx
  export PATH="$PATH:/usr/sbin"
}
