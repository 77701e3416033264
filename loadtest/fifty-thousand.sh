#!/usr/bin/env bash
# 50,000 viewers on one host's API, all following the games list (the scoreboard) while one match
# is paused. The match then runs at maximum speed for a moment (until FIFTY_BURST entries, 20 by
# default, are in the list's stream: a burst to every viewer at once) and pauses again. Passes
# when every viewer saw the same entries, ending on the stream's last one, none twice and none
# out of order. (The games list, not the match: a match's snapshot is 12 KB, and 50,000 of them
# at once in both ends' socket buffers on loopback pass this machine's TCP memory pressure
# threshold, net.ipv4.tcp_mem, after which the kernel drops what new connections send.)
#
# A process holds as many sockets as its open-file limit allows, which here is 20,000 and cannot
# be raised (production raises it: see the README). So the API runs as FIFTY_REPLICAS `livescore
# api` processes (3 by default, one shard each) on one port, HTTP_REUSE_PORT=true, the kernel
# spreading the connections over them, as nginx's workers share a port. Several processes on one
# host, not one replica.
#
#   loadtest/fifty-thousand.sh [sse|ws]     (default: both)
#
# The viewers are three `lean` processes (for the same reason). Needs Redis on 6379 and tansu on
# 19092. Reports go to target/bench/fifty/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p livescore -p livescore-loadtest
out=target/bench/fifty
mkdir -p "$out"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379} KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:19092}
export RUST_LOG=warn ADMIN_TOKEN=bench
viewers=${FIFTY_VIEWERS:-50000}
viewer_processes=3
replicas=${FIFTY_REPLICAS:-3}
game=7471
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
. loadtest/lib.sh
admin() { curl -fsS -o /dev/null -X "$1" -H "Authorization: Bearer bench" "http://127.0.0.1:18070$2"; }
# The API processes' sockets: listening, and viewers held (established, on the API's port).
listeners() { ss -Hltn 'sport = :18080' | wc -l; }
held() { ss -Htn state established '( sport = :18080 )' | wc -l; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# How many entries the games list's stream holds after the entry id $1.
feed_entries_after() { redis-cli --raw XRANGE "$prefix:feed" "($1" + | grep -cE '^[0-9]+-[0-9]+$'; }

transports=("$@")
[ ${#transports[@]} -gt 0 ] || transports=(sse ws)
for transport in "${transports[@]}"; do
  prefix=fifty-$transport-$(date +%s)
  export REDIS_PREFIX=$prefix
  KAFKA_TOPIC=$prefix PROJECTOR_GROUP=$prefix LISTEN=127.0.0.1:18070 \
    target/release/livescore up >"$out/writer-$transport.log" 2>&1 &
  writer=$!
  pids+=("$writer")
  apis=()
  for r in $(seq 1 "$replicas"); do
    RUST_LOG=warn HTTP_REUSE_PORT=true HTTP_SHARDS=1 LISTEN=127.0.0.1:18080 \
      target/release/livescore api >"$out/api-$transport-$r.log" 2>&1 &
    apis+=($!)
    pids+=($!)
  done
  wait_http http://127.0.0.1:18070/readyz
  until [ "$(listeners)" -eq "$replicas" ]; do sleep 0.2; done
  wait_http http://127.0.0.1:18080/readyz
  # The match, paused at kick-off, while the viewers connect.
  admin POST "/games/$game?speed=1"
  until [ "$(redis-cli --raw XLEN "$prefix:feed")" -gt 0 ]; do sleep 0.2; done
  admin POST "/replays/$game/pause"
  # The pause changes the match's line in the list too: viewers join after that entry.
  until redis-cli --raw XREVRANGE "$prefix:feed" + - COUNT 1 | grep -q '"status":"paused"'; do sleep 0.1; done
  if [ "$transport" = ws ]; then
    url=ws://127.0.0.1:18080/ws subscribe=(--subscribe '{"op":"subscribe","topic":"games"}')
  else
    url=http://127.0.0.1:18080/sse/games subscribe=()
  fi
  rm -f "$out"/ready-*
  leans=()
  per=$(( (viewers + viewer_processes - 1) / viewer_processes ))
  # Source addresses of their own for this run: a rerun from the same ones would meet the last
  # run's connections still in TIME_WAIT (a minute), and some of its connections would stall.
  net=$(( RANDOM % 250 + 2 ))
  for i in $(seq 1 $viewer_processes); do
    target/release/lean --name "fifty-$transport-$i" --url "$url" "${subscribe[@]}" --clients "$per" \
      --connect-rate "${FIFTY_CONNECT_RATE:-500}" --settle 1 --seconds "${FIFTY_SECONDS:-60}" \
      --source "127.$net.0.$((i + 1))" --ready-file "$out/ready-$i" >"$out/$transport-$i.json" 2>"$out/$transport-$i.log" &
    leans+=($!)
    pids+=($!)
  done
  until [ "$(ls "$out"/ready-* 2>/dev/null | wc -l)" -eq $viewer_processes ]; do
    for pid in "${leans[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "a viewer process died: see $out/$transport-*.log"; exit 1; }; done
    sleep 1
  done
  held=$(held)
  rss=0 each=()
  for api in "${apis[@]}"; do
    kb=$(rss_kb "$api")
    rss=$((rss + kb))
    each+=("$(ls "/proc/$api/fd" | wc -l) descriptors, $((kb / 1024)) MB")
  done
  snapshot=$(redis-cli --raw XREVRANGE "$prefix:feed" + - COUNT 1 | head -1)
  echo "$transport: $held viewers held by $replicas API processes on one port (RSS $((rss / 1024)) MB in all; each: $(IFS=';'; echo "${each[*]}")); the match runs from $snapshot"
  curl -fsS -o /dev/null -X PUT -H "Authorization: Bearer bench" -H 'content-type: application/json' \
    -d '{"speed":"max"}' "http://127.0.0.1:18070/replays/$game/speed"
  admin POST "/replays/$game/resume"
  until [ "$(feed_entries_after "$snapshot")" -ge "${FIFTY_BURST:-20}" ]; do
    sleep 0.01
  done
  admin POST "/replays/$game/pause"
  for pid in "${leans[@]}"; do wait "$pid" || echo "a viewer process reported a problem"; done
  expected=$(( $(feed_entries_after "$snapshot") + 1 ))
  last=$(redis-cli --raw XREVRANGE "$prefix:feed" + - COUNT 1 | head -1)
  python3 - "$transport" "$held" "$expected" "$last" "$out/$transport"-*.json <<'PY' | tee "$out/$transport.txt"
import json, sys
transport, held, expected, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
runs = [json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[5:]]
viewers = sum(r["connected"] for r in runs)
failed = sum(r["failed"] for r in runs)
lo = min(r["viewer_cursors_min"] for r in runs)  # failed viewers count 0: they fail the run
hi = max(r["viewer_cursors_max"] for r in runs)
at_last = sum(r["viewers_at_last_cursor"] for r in runs if r["last_cursor"] == last)
bad = sum(r["duplicates"] + r["out_of_order"] for r in runs)
delivered = sum(r["delivered"] for r in runs)
p99 = max(r["latency_p99_ms"] for r in runs)
ok = failed == 0 and viewers == held and lo == hi == expected and at_last == viewers and bad == 0
print(f"{transport}: {viewers} viewers ({failed} failed), the API processes held {held}; each saw "
      f"{lo}..{hi} entries (the log: {expected}), {at_last} ended on the log's last entry {last}; "
      f"{bad} duplicated or reordered; {delivered} messages delivered in the window, "
      f"{f'p99 {p99:.0f} ms from emission' if delivered else 'no latency (the burst came before the window)'}: "
      f"{'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
  kill "${apis[@]}" "$writer" 2>/dev/null || true
  wait "${apis[@]}" "$writer" 2>/dev/null || true
done
