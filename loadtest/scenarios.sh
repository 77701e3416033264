#!/usr/bin/env bash
# The BENCHMARKS.md load-test scenarios, one after the other, on this machine:
#   loadtest/scenarios.sh [1|2|3|4|nchan|fifty ...]   (default: 1 to 4)
# `nchan` is loadtest/side-by-side.sh (livescore and nchan, side by side, every row), `fifty`
# loadtest/fifty-thousand.sh (50,000 viewers on one replica); each says more in its header.
# Needs Redis on 127.0.0.1:6379 and tansu on 127.0.0.1:19092 (scripts/test or scripts/cluster
# start them) and nginx for scenario 3. Results (JSON and SVG plots) go to target/bench/.
# SERVER_CPUS pins the one-replica scenarios' server, LOADTEST_CPUS the load generator, to cores
# of their own (taskset lists, e.g. 0 and 1), to see what each side costs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p livescore -p livescore-loadtest
out=target/bench
mkdir -p "$out"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379} KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:19092}
export ADMIN_TOKEN=bench RUST_LOG=warn
loadtest=target/release/loadtest

# CPU seconds (user + system) a process has used so far, from /proc: where the two cores went.
cpu_seconds() { # pid
  awk -v t="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}
# The services' pids (Redis, tansu), to report what they used during a run.
services() { pgrep -x redis-server | head -1; pgrep -x tansu | head -1; }
services_cpu() { for pid in $(services); do echo "$pid $(cpu_seconds "$pid")"; done; }
# What each service used since `services_cpu` printed $1.
services_used() { # services_cpu's output
  echo "$1" | while read -r pid was; do
    [ -n "$pid" ] && echo "$(cat "/proc/$pid/comm"): $(awk -v a="$(cpu_seconds "$pid")" -v b="$was" 'BEGIN { printf "%.1f", a - b }') CPU s"
  done
}

# Runs the load test (its arguments after the name), its report into $out/NAME.json; then writes
# $out/NAME-cpu.txt: the CPU seconds of the load test, of the livescore and nginx processes
# (all started for this run), and of Redis and tansu during it.
measure() { # name, then loadtest arguments
  local name=$1
  shift
  local before TIMEFORMAT="loadtest: %U s user + %S s system in %R s"
  before=$(services_cpu)
  { time ${LOADTEST_CPUS:+taskset -c "$LOADTEST_CPUS"} "$loadtest" --quiet --json \
    --plot "$out/$name" "$@" >"$out/$name.json" \
    || echo "scenario $name: the load test reported a problem (exit $?)"; } 2>"$out/$name-cpu.txt"
  {
    for pid in $(pgrep -f "livescore (up|api|producer|projector)") $(pgrep -x nginx); do
      echo "$(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-50): $(cpu_seconds "$pid") CPU s"
    done
    services_used "$before"
  } >>"$out/$name-cpu.txt"
  cat "$out/$name-cpu.txt"
}

# One replica: `livescore up` on Kafka and Redis, its own key prefix and topic.
one_replica() { # name, then loadtest arguments
  local name=$1
  shift
  local unique="bench-$name-$(date +%s)"
  REDIS_PREFIX=$unique KAFKA_TOPIC=$unique PROJECTOR_GROUP=$unique LISTEN=127.0.0.1:18080 \
    ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} target/release/livescore up >"$out/$name-server.log" 2>&1 &
  local server=$!
  until curl -fsS -o /dev/null http://127.0.0.1:18080/readyz; do sleep 0.2; done
  measure "$name" --url http://127.0.0.1:18080 "$@"
  kill "$server"
  wait "$server" || true
}

scenario() {
  case $1 in
    1) one_replica sse-10k --clients 10000 --transport sse --stream list --games 4 --speed 60 ;;
    2) one_replica ws-10k --clients 10000 --transport ws --stream list --games 4 --speed 60 ;;
    3)
      # Emptied here, not by the background job's redirection, so the wait below cannot see
      # the previous run's "cluster is up".
      : >"$out/cluster.log"
      CLUSTER_PORT=18180 REDIS_PREFIX=bench-cluster-$(date +%s) scripts/cluster >>"$out/cluster.log" 2>&1 &
      local cluster=$!
      until grep -q "cluster is up" "$out/cluster.log"; do
        kill -0 "$cluster" 2>/dev/null || { echo "scenario 3: the cluster did not start (see $out/cluster.log)"; return 1; }
        sleep 0.5
      done
      measure cluster-10k --url http://127.0.0.1:18180 \
        --metrics-url http://127.0.0.1:18181 --metrics-url http://127.0.0.1:18182 \
        --metrics-url http://127.0.0.1:18183 \
        --clients 10000 --transport mixed --stream both --games 4 --speed 60
      kill "$cluster"
      wait "$cluster" || true
      ;;
    4)
      one_replica idle-sse-10k --idle --hold 10 --clients 10000 --transport sse --stream list
      one_replica idle-ws-10k --idle --hold 10 --clients 10000 --transport ws --stream list
      ;;
    nchan) loadtest/side-by-side.sh ;;
    fifty) loadtest/fifty-thousand.sh ;;
    *) echo "no scenario $1" >&2; exit 2 ;;
  esac
}

for s in "${@:-1 2 3 4}"; do
  # shellcheck disable=SC2086
  for one in $s; do scenario "$one"; done
done
echo "results in $out/"
