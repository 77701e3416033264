#!/usr/bin/env bash
# livescore and nchan, side by side in one run on this machine, read by the same lean client
# (loadtest/src/bin/lean.rs), at livescore's own rate and size (BENCHMARKS.md, "Fan-out").
#
#   loadtest/side-by-side.sh            every row: 2,000, 5,000 and 10,000 viewers, SSE and WS
#   SIDE_CLIENTS="2000" SIDE_TRANSPORTS="ws" loadtest/side-by-side.sh
#
# Three runs per row, each on freshly started servers:
# - nchan (Debian's libnginx-mod-nchan, one worker, loadtest/nchan/nginx.conf), published by
#   lean at livescore's rate and size (SIDE_RATE messages a second, SIDE_SIZE bytes);
# - `livescore api` over Redis fed the same way: lean writes each message to the replica's Redis
#   as its projector would (XADD + PUBLISH in one script): the two fan-outs, head to head;
# - `livescore api` under the real load: a separate `livescore up` on tansu and Redis replays
#   four matches at speed 60 into that Redis (its events come in bursts), latency counted from
#   the producer's emission, so the pipeline (Kafka, projector, Redis) is in it.
# The API's CPU is its own (the producer and projector are another process). It runs one shard
# (SIDE_SHARDS), as nchan runs one worker: the client shares the two cores, and a server that
# sweeps on both starves it. Needs Redis on 6379
# and tansu on 19092 (scripts/test starts them) and nginx with nchan (installed if missing).
# Reports (one JSON line per run) and a markdown table go to target/bench/side/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || apt_install libnginx-mod-nchan
export PATH="$PATH:/usr/sbin"
cargo build --release --locked -p livescore -p livescore-loadtest
out=target/bench/side
mkdir -p "$out"
: >"$out/runs.jsonl"
clients=${SIDE_CLIENTS:-2000 5000 10000}
transports=${SIDE_TRANSPORTS:-sse ws}
seconds=${SIDE_SECONDS:-30}
rate=${SIDE_RATE:-4.2}
size=${SIDE_SIZE:-582}
games="7471 3788741 7457 15986"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379} KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:19092}
export RUST_LOG=warn ADMIN_TOKEN=bench
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
. loadtest/lib.sh
pin() { # cpus, then the command
  local cpus=$1
  shift
  if [ -n "$cpus" ]; then taskset -c "$cpus" "$@"; else "$@"; fi
}

# Every row starts fresh servers, so that each one's memory per connection is measured from a
# process that has not grown before.
nchan_dir=$PWD/target/bench/side/nchan
mkdir -p "$nchan_dir/tmp"
nchan_pid=
start_nchan() {
  ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} nginx -p "$nchan_dir" -c "$PWD/loadtest/nchan/nginx.conf" \
    >"$out/nchan.log" 2>&1 &
  nchan_pid=$!
  pids+=("$nchan_pid")
  until curl -s -o /dev/null http://127.0.0.1:18090/pub; do sleep 0.2; done
  nchan_worker=$(pgrep -f "nginx: worker process" -P "$nchan_pid" | head -1)
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# livescore: the writer (producer and projector), and the measured API replica.
prefix=side-$(date +%s)
export REDIS_PREFIX=$prefix
KAFKA_TOPIC=$prefix PROJECTOR_GROUP=$prefix LISTEN=127.0.0.1:18070 \
  target/release/livescore up >"$out/writer.log" 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:18070/readyz
api=
start_api() {
  # Info: the log says which viewer was let go and why, if one was.
  RUST_LOG=info HTTP_SHARDS=${SIDE_SHARDS:-1} LISTEN=127.0.0.1:18080 \
    ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} target/release/livescore api \
    >>"$out/api.log" 2>&1 &
  api=$!
  pids+=("$api")
  wait_http http://127.0.0.1:18080/readyz
}

lean() { ${LOADTEST_CPUS:+taskset -c "$LOADTEST_CPUS"} target/release/lean "$@"; }
replays() { # start | stop: the four replays at speed 60 (a start restarts them)
  for game in $games; do
    if [ "$1" = start ]; then
      curl -fsS -o /dev/null -X POST -H "Authorization: Bearer bench" \
        "http://127.0.0.1:18070/games/$game?speed=60"
    else
      curl -fsS -o /dev/null -X POST -H "Authorization: Bearer bench" \
        "http://127.0.0.1:18070/replays/$game/stop" || true
    fi
  done
}
urls() { # transport: sets ls_url, nchan_url, subscribe
  if [ "$1" = ws ]; then
    ls_url=ws://127.0.0.1:18080/ws nchan_url=ws://127.0.0.1:18090/ws
    subscribe=(--subscribe '{"op":"subscribe","topic":"games"}')
  else
    ls_url=http://127.0.0.1:18080/sse/games nchan_url=http://127.0.0.1:18090/sse
    subscribe=()
  fi
}

for n in $clients; do
  for t in $transports; do
    urls "$t"
    echo "== $n viewers over $t"
    start_api
    lean --name "uniform-$t-$n" --url "$ls_url" "${subscribe[@]}" --clients "$n" \
      --seconds "$seconds" --publish-redis 127.0.0.1:6379 --redis-prefix "$prefix" \
      --rate "$rate" --size "$size" --server-pid "$api" | tee -a "$out/runs.jsonl"
    stop "$api"
    replays start
    start_api
    lean --name "livescore-$t-$n" --url "$ls_url" "${subscribe[@]}" --clients "$n" \
      --seconds "$seconds" --server-pid "$api" | tee -a "$out/runs.jsonl"
    stop "$api"
    # The other runs have the machine to themselves.
    replays stop
    start_nchan
    lean --name "nchan-$t-$n" --url "$nchan_url" --clients "$n" --seconds "$seconds" \
      --publish http://127.0.0.1:18090/pub --rate "$rate" --size "$size" \
      --server-pid "$nchan_worker" | tee -a "$out/runs.jsonl"
    stop "$nchan_pid"
  done
done

# Idle memory: viewers that receive nothing (no replay running, nothing published).
idle=${SIDE_IDLE:-5000}
for t in $transports; do
  urls "$t"
  echo "== $idle idle viewers over $t"
  start_api
  lean --name "livescore-$t-idle" --url "$ls_url" "${subscribe[@]}" --clients "$idle" \
    --seconds 1 --settle 5 --server-pid "$api" | tee -a "$out/runs.jsonl"
  stop "$api"
  start_nchan
  lean --name "nchan-$t-idle" --url "$nchan_url" --clients "$idle" --seconds 1 --settle 5 \
    --server-pid "$nchan_worker" | tee -a "$out/runs.jsonl"
  stop "$nchan_pid"
done

python3 - "$out/runs.jsonl" >"$out/table.md" <<'PY'
import json, sys
runs = {r["name"]: r for r in map(json.loads, open(sys.argv[1]))}
ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
print("| viewers | transport | CPU µs per delivered message: nchan / livescore (ratio) / livescore, replays | p50 / p99 ms: nchan / livescore (p99 ratio) / livescore, replays | busy KB per connection: nchan / livescore | context switches per message: nchan / livescore | duplicated or reordered |")
print("|---|---|---|---|---|---|---|")
for name, nc in runs.items():
    if not name.startswith("nchan-") or name.endswith("-idle"):
        continue
    _, t, n = name.split("-")
    ls, real = runs.get(f"uniform-{t}-{n}"), runs.get(f"livescore-{t}-{n}")
    if not (ls and real):
        continue
    cpu = [r["server_cpu_us_per_message"] or 0 for r in (nc, ls, real)]
    bad = sum(r["duplicates"] + r["out_of_order"] for r in (nc, ls, real))
    lost = sum(r["failed"] + r["closed"] for r in (nc, ls, real))
    if lost:
        bad = f"{bad}; {lost} viewers failed or were closed"
    print(f"| {int(n):,} | {t} | {cpu[0]:.1f} / **{cpu[1]:.1f}** ({ratio(cpu[1], cpu[0])}) / {cpu[2]:.1f} "
          f"| {nc['latency_p50_ms']:.0f} / {nc['latency_p99_ms']:.0f} ; **{ls['latency_p50_ms']:.0f} / {ls['latency_p99_ms']:.0f}** "
          f"({ratio(ls['latency_p99_ms'], nc['latency_p99_ms'])}) ; {real['latency_p50_ms']:.0f} / {real['latency_p99_ms']:.0f} "
          f"| {nc['server_busy_kb_per_connection']:.1f} / **{ls['server_busy_kb_per_connection']:.1f}** "
          f"| {nc['server_switches_per_message']:.3f} / {ls['server_switches_per_message']:.3f} | {bad} |")
for t in ("sse", "ws"):
    ls, nc = runs.get(f"livescore-{t}-idle"), runs.get(f"nchan-{t}-idle")
    if ls and nc:
        print(f"| {ls['clients']:,} idle | {t} | | | {nc['server_idle_kb_per_connection']:.1f} / **{ls['server_idle_kb_per_connection']:.1f}** | | |")
PY
cat "$out/table.md"
python3 loadtest/side_plot.py "$out/runs.jsonl" "$out"
