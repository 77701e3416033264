#!/usr/bin/env bash
# A reconnect storm, measured. STORM_VIEWERS (10,000) viewers follow the match streams of four
# replays (speed 60) on one API replica, A; two more, B and C, run beside it with nobody on them.
# A is SIGKILLed mid-replay, and every viewer reconnects, with its cursor, to B or C (the
# loadtest client's --failover-url: a client with several endpoints). Then:
#   - peak accept rate: the fastest growth of B's and C's open connections over a 200 ms window
#     (`livescore_connections`, sampled every 100 ms);
#   - time until every viewer is back: from the kill until B and C hold them all;
#   - store reads per reconnect: the growth of B's and C's `livescore_store_reads_total` over
#     that of `livescore_joins_total` (shared reads keep it far below one);
#   - and the load test's own check: every viewer saw every entry once, in order.
# Once with the viewers' jitter (STORM_JITTER_MS, 800: each reconnects 200 ms plus up to 0.8 s
# after its break), once without (0: all of them 200 ms after the kill).
#
#   loadtest/storm.sh                 # both; reports in target/bench/storm/
#   STORM_VIEWERS=2000 loadtest/storm.sh
#
# Needs Redis on 6379 and tansu on 19092 (scripts/test's). One host: A, B and C are processes on
# loopback, each within this machine's 20,000 open files.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p livescore -p livescore-loadtest
out=target/bench/storm
mkdir -p "$out"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379} KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:19092}
export RUST_LOG=warn ADMIN_TOKEN=bench
viewers=${STORM_VIEWERS:-10000}
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
. loadtest/lib.sh
# A replica's metric (summed over its labels), 0 if it does not answer.
metric() {
  curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk -v name="$2" '$1 == name || index($1, name "{") == 1 { sum += $2 } END { print sum + 0 }'
}

for jitter in ${STORM_JITTER_MS:-800 0}; do
  prefix=storm-$jitter-$(date +%s)
  export REDIS_PREFIX=$prefix
  # The writer: producer and projector (and an API nobody uses) in one process.
  KAFKA_TOPIC=$prefix PROJECTOR_GROUP=$prefix LISTEN=127.0.0.1:18070 \
    target/release/livescore up >"$out/writer-$jitter.log" 2>&1 &
  pids+=($!)
  declare -A api=()
  for replica in a:18181 b:18182 c:18183; do
    HTTP_SHARDS=1 LISTEN=127.0.0.1:${replica#*:} \
      target/release/livescore api >"$out/api-${replica%%:*}-$jitter.log" 2>&1 &
    api[${replica%%:*}]=$!
    pids+=($!)
  done
  for port in 18070 18181 18182 18183; do wait_http "http://127.0.0.1:$port/readyz"; done

  target/release/loadtest --url http://127.0.0.1:18181 \
    --failover-url http://127.0.0.1:18182 --failover-url http://127.0.0.1:18183 \
    --admin-url http://127.0.0.1:18070 --token bench --clients "$viewers" --stream match \
    --games 4 --speed 60 --reconnect-jitter-ms "$jitter" --metrics-url http://127.0.0.1:18182 \
    --metrics-url http://127.0.0.1:18183 --quiet >"$out/loadtest-$jitter.txt" 2>&1 &
  loadtest=$!
  pids+=($loadtest)
  until [ "$(metric 18181 livescore_connections)" -ge "$viewers" ]; do sleep 0.2; done
  sleep 3
  reads0=$(( $(metric 18182 livescore_store_reads_total) + $(metric 18183 livescore_store_reads_total) ))
  joins0=$(( $(metric 18182 livescore_joins_total) + $(metric 18183 livescore_joins_total) ))
  kill -9 "${api[a]}"
  killed=$(date +%s%N)
  samples=$out/samples-$jitter.txt
  : >"$samples"
  back=""
  for _ in $(seq 1 600); do
    now=$(date +%s%N)
    held=$(( $(metric 18182 livescore_connections) + $(metric 18183 livescore_connections) ))
    echo "$(( (now - killed) / 1000000 )) $held" >>"$samples"
    if [ -z "$back" ] && [ "$held" -ge "$viewers" ]; then back=$(( (now - killed) / 1000000 )); break; fi
    sleep 0.1
  done
  reads=$(( $(metric 18182 livescore_store_reads_total) + $(metric 18183 livescore_store_reads_total) - reads0 ))
  joins=$(( $(metric 18182 livescore_joins_total) + $(metric 18183 livescore_joins_total) - joins0 ))
  # The fastest growth over two samples (about 200 ms), in connections a second.
  peak=$(awk 'NR > 2 && $1 > t2 { rate = ($2 - h2) * 1000 / ($1 - t2); if (rate > max) max = rate }
              { t2 = t1; h2 = h1; t1 = $1; h1 = $2 } END { printf "%d", max }' "$samples")
  wait "$loadtest" || true
  {
    echo "jitter ${jitter} ms, $viewers viewers on A, A SIGKILLed:"
    echo "  every viewer back on B and C after: ${back:-never (within 60 s)} ms"
    echo "  peak accept rate on B and C: $peak connections/s (over ~200 ms)"
    echo "  store reads per reconnect: $reads reads for $joins joins ($(awk -v r="$reads" -v j="$joins" 'BEGIN { printf "%.4f", (j ? r / j : 0) }'))"
    grep -E "reconnects|missing / duplicated|viewers checked|mismatched" "$out/loadtest-$jitter.txt" | sed 's/^/  loadtest: /'
  } | tee "$out/report-$jitter.txt"
  cleanup
  pids=()
  sleep 2
done
