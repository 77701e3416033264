# Shared by scripts/test and scripts/cluster (sourced, not run): start what livescore needs on
# this machine, reusing what already answers, and remember what was started so that it can be
# stopped at the end.
#
#   ensure_redis HOST PORT     redis-server (installed from Debian's packages if missing)
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
apt_install() {
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

# tansu with the engines livescore uses: memory (fast, for most tests) and SQLite (keeps its data
# across a restart: the local cluster, and the tests that kill the broker). An older install
# without SQLite is replaced.
install_tansu() {
  if command -v tansu >/dev/null && grep -qa sqlite3_open_v2 "$(command -v tansu)"; then
    return 0
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
