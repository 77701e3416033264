#!/usr/bin/env bash
# What counting viewers costs: the CPU of one API replica holding PRESENCE_VIEWERS (10,000) idle
# SSE viewers of the games list for PRESENCE_HOLD seconds (60), five ways:
#   off          PRESENCE_INTERVAL_MS=3600000: one window an hour, nothing in practice;
#   stable       the default 2 s windows, the viewers staying put: counts added and read every
#                window, no presence message (the counts do not change);
#   churning     the default, and one more viewer comes and goes every 0.5 s: the counts change
#                every window, but not as shown (two significant figures), so no message;
#   crossing     the default, and 1,000 more viewers come (3 s) and go (3 s) over and over: the
#                site's count as shown flips between 10,000 and 11,000, so every viewer gets a
#                presence message at every push (every 5 s): the worst case;
#   crossing-off the same churn with presence off: what the churn alone costs, to subtract.
# The replica's CPU is read from /proc (utime + stime) over the hold; the load generators and
# Redis run on the same two cores. Reports in target/bench/presence/.
#
#   loadtest/presence.sh
#   PRESENCE_VIEWERS=2000 PRESENCE_HOLD=30 loadtest/presence.sh
#
# Needs Redis on 6379 (scripts/test's). No Kafka: the viewers follow the list, which needs no match.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p livescore -p livescore-loadtest
out=target/bench/presence
mkdir -p "$out"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379} RUST_LOG=warn
unset KAFKA_BROKERS
viewers=${PRESENCE_VIEWERS:-10000}
hold=${PRESENCE_HOLD:-60}
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
. loadtest/lib.sh
hz=$(getconf CLK_TCK)

printf '%-12s %8s %12s %14s %20s\n' way viewers "cpu seconds" "presence sent" "received (viewers)" | tee "$out/summary.txt"
for way in off stable churning crossing crossing-off; do
  interval=2000
  case $way in off | crossing-off) interval=3600000 ;; esac
  prefix=presence-$way-$(date +%s)
  REDIS_PREFIX=$prefix PRESENCE_INTERVAL_MS=$interval LISTEN=127.0.0.1:18190 \
    target/release/livescore api >"$out/api-$way.log" 2>&1 &
  api=$!
  pids+=($api)
  wait_http http://127.0.0.1:18190/readyz
  target/release/loadtest --url http://127.0.0.1:18190 --clients "$viewers" --stream list \
    --idle --hold "$((hold + 15))" --quiet >"$out/loadtest-$way.txt" 2>&1 &
  loadtest=$!
  pids+=($loadtest)
  # Every viewer connected, and a few windows for the counts to settle.
  until [ "$(curl -fsS http://127.0.0.1:18190/metrics | awk '$1 ~ /^livescore_connections[{]/ { s += $2 } END { print s + 0 }')" -ge "$viewers" ]; do sleep 0.5; done
  sleep 5
  churn=
  case $way in
    churning)
      setsid bash -c 'while :; do timeout 0.5 curl -sN -o /dev/null http://127.0.0.1:18190/sse/games 2>/dev/null; done' &
      churn=$! ;;
    crossing*)
      setsid bash -c 'while :; do
        target/release/loadtest --url http://127.0.0.1:18190 --clients 1000 --stream list \
          --idle --hold 3 --quiet >/dev/null 2>&1
        sleep 3
      done' &
      churn=$! ;;
  esac
  [ -n "$churn" ] && pids+=($churn)
  before=$(cpu_ticks "$api")
  sent_before=$(curl -fsS http://127.0.0.1:18190/metrics | awk '$1 == "livescore_presence_messages_total" { print $2 }')
  sleep "$hold"
  after=$(cpu_ticks "$api")
  sent_after=$(curl -fsS http://127.0.0.1:18190/metrics | awk '$1 == "livescore_presence_messages_total" { print $2 }')
  # The churn runs in a process group of its own (setsid), so that this stops all of it.
  [ -n "$churn" ] && kill -- "-$churn" 2>/dev/null || true
  cpu=$(awk -v t=$((after - before)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')
  wait "$loadtest" || true
  # Sent: messages published (one per topic per push); received: what the viewers got, over
  # the load test's whole run.
  received=$(awk -F'  +' '$2 == "presence messages" { print $3 }' "$out/loadtest-$way.txt")
  printf '%-12s %8d %12s %14s %20s\n' "$way" "$viewers" "$cpu" \
    "$((${sent_after%.*} - ${sent_before%.*}))" "${received:-?}" | tee -a "$out/summary.txt"
  kill "$api"; wait "$api" 2>/dev/null || true
  redis-cli -u "$REDIS_URL" --scan --pattern "$prefix*" | xargs -r redis-cli -u "$REDIS_URL" unlink >/dev/null
done
