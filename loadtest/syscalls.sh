#!/usr/bin/env bash
# What one `livescore api` replica (one shard) spends per delivered message, measured under the
# side-by-side feed (loadtest/side-by-side.sh's "uniform" run: lean publishes into Redis as the
# projector would): system calls per message with `strace -c` (io_uring writer, then one
# `sendmsg` per socket), and where the CPU goes with `perf record -e cpu-clock`.
#
#   loadtest/syscalls.sh [viewers] [ws|sse]      (default: 10000 ws)
#
# strace slows the traced process, so its figures are counts, not speed. Needs Redis on 6379,
# strace and perf. Output goes to target/bench/syscalls/.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
t=${2:-ws}
seconds=${SYSCALLS_SECONDS:-10}
cargo build --release --locked -p livescore -p livescore-loadtest
out=target/bench/syscalls
mkdir -p "$out"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379} RUST_LOG=warn
prefix=syscalls-$(date +%s)
pids=()
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done' EXIT
if [ "$t" = ws ]; then
  url=ws://127.0.0.1:18080/ws subscribe=(--subscribe '{"op":"subscribe","topic":"games"}')
else
  url=http://127.0.0.1:18080/sse/games subscribe=()
fi
# A metric of the replica, summed over its labels.
metric() { curl -fsS http://127.0.0.1:18080/metrics | awk -v m="$1" '$1 ~ "^" m "({|$)" { s += $2 } END { print s + 0 }'; }

for uring in true false; do
  FANOUT_IO_URING=$uring HTTP_SHARDS=1 LISTEN=127.0.0.1:18080 REDIS_PREFIX=$prefix \
    target/release/livescore api >>"$out/api.log" 2>&1 &
  api=$!
  pids+=("$api")
  until curl -fsS -o /dev/null http://127.0.0.1:18080/readyz; do sleep 0.2; done
  target/release/lean --name "syscalls-$t-$n" --url "$url" "${subscribe[@]}" --clients "$n" \
    --seconds $((seconds * 3 + 10)) --publish-redis 127.0.0.1:6379 --redis-prefix "$prefix" \
    --rate 4.2 --size 582 >"$out/lean-$uring.json" &
  lean=$!
  # Until every viewer is connected and messages flow.
  until [ "$(metric livescore_connections)" -ge "$n" ]; do sleep 0.5; done
  sleep 3
  before=$(metric livescore_messages_sent_total)
  strace -c -f -p "$api" -o "$out/strace-$uring.txt" &
  tracer=$!
  sleep "$seconds"
  kill -INT "$tracer"
  wait "$tracer" || true
  after=$(metric livescore_messages_sent_total)
  calls=$(awk '$NF == "total" { print $4 }' "$out/strace-$uring.txt")
  echo "io_uring=$uring: $calls system calls for $((after - before)) messages delivered:" \
    "$(awk -v c="$calls" -v m="$((after - before))" 'BEGIN { printf "%.3f", c / m }') per message"
  if [ "$uring" = true ]; then
    perf record -q -e cpu-clock -g -p "$api" -o "$out/perf.data" -- sleep "$seconds" 2>/dev/null
    perf report -i "$out/perf.data" --no-children --percent-limit 2 --stdio 2>/dev/null \
      | grep -E '^ +[0-9.]+%' >"$out/perf-top.txt" || true
    echo "where the CPU went (perf, cpu-clock, self time): $out/perf-top.txt"
    head -15 "$out/perf-top.txt"
  fi
  wait "$lean" || true
  kill "$api"
  wait "$api" 2>/dev/null || true
done
