#!/usr/bin/env python3
"""The capacity model of docs/SCALING.md: what N concurrent viewers over M concurrent matches
need, computed from unit costs measured on the project machine (2 cores, loopback).

    loadtest/capacity.py                       # 10 million viewers, 1,000 matches
    loadtest/capacity.py --viewers 2e6 --matches 300 --cores-per-replica 8

Every input is a flag whose default is the measured figure, with where it was measured; change
one to see what moves. The output is the table docs/SCALING.md shows, and which resource runs
out first.

Inputs marked ASSUMED in --help are not measured here; DERIVED ones are computed from a
measurement (see their help).
"""

import argparse
import math

# Each default: (value, where it was measured).
MEASURED = {
    "cpu_us_per_delivery": (8.8, "BENCHMARKS.md, issue 20: livescore api, 10,000 viewers, one shard, SSE 8.6 / WS 8.8 us per delivered message"),
    "kb_per_connection": (2.9, "BENCHMARKS.md: busy SSE viewer 2.9 KB (WebSocket 1.9), process memory only"),
    "kernel_kb_per_connection": (4.0, "not measured here: Linux's per-socket memory (struct sock, buffers of an idle TCP socket), a conservative figure"),
    "updates_per_match": (240, "livescore fold --updates on the seven matches: 232-249"),
    "match_seconds": (6600, "two halves with stoppage time and the interval, about 110 minutes of wall time"),
    "records_per_match": (3500, "StatsBomb events per match, about 3,500 (data/events)"),
    "message_bytes": (430, "livescore fold --updates: 375-404 bytes of JSON, plus SSE/WebSocket framing and the cursor"),
    "summaries_per_match": (105, "games-feed entries per match: the headline changes with every clock minute (92), incident (9) and period (4) of livescore fold --updates 7471"),
    "summary_bytes": (800, "a games-feed entry in Redis: 765 bytes on average (XRANGE of a test run's feed), plus framing"),
    "projector_records_per_s": (20000, "BENCHMARKS.md: projector from a cold start, 20,484 records/s (52,130 on a rerun)"),
    "redis_base": (8.0, "loadtest/redis-fanout-cost.py at 200/s: 17.5 us at 10 subscribers, 87.5 at 100, 572 at 500; about 8 + 1.1 per subscriber"),
    "redis_per_subscriber": (1.1, "same fit"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=float, default=10e6)
    parser.add_argument("--matches", type=int, default=1000)
    parser.add_argument("--biggest-match-share", type=float, default=0.1,
                        help="the share of viewers on the most watched match (a final: 10%%)")
    parser.add_argument("--feed-share", type=float, default=0.2,
                        help="the share of viewers on the games list (the home page), which gets every match's summary")
    parser.add_argument("--nic-gbit", type=float, default=10.0,
                        help="egress one API replica's network can sustain")
    parser.add_argument("--cores-per-replica", type=int, default=8)
    parser.add_argument("--viewers-per-replica", type=float, default=100_000,
                        help="open sockets per API replica (the open-file limit, and drain time)")
    parser.add_argument("--replica-headroom", type=float, default=0.5,
                        help="the share of a replica's CPU the steady load may use")
    parser.add_argument("--redis-replica-subscribers", type=int, default=100,
                        help="API replicas one Redis replica serves")
    # From loadtest/storm.sh (BENCHMARKS.md, "A reconnect storm").
    parser.add_argument("--reconnect-cpu-us", type=float, default=500.0,
                        help="DERIVED: API CPU per reconnecting viewer, from the storm's 2,000 reconnects/s per core (an upper bound: those cores also served the viewers)")
    parser.add_argument("--store-reads-per-reconnect", type=float, default=0.2,
                        help="store reads per reconnecting viewer: 0.14 with jitter, 0.20 without (loadtest/storm.sh)")
    parser.add_argument("--redis-us-per-read", type=float, default=30.0,
                        help="ASSUMED: Redis CPU for one snapshot or catch-up read")
    parser.add_argument("--storm-seconds", type=float, default=30.0,
                        help="the window clients' full jitter spreads a reconnect storm over")
    for name, (value, _) in MEASURED.items():
        if value is not None:
            parser.add_argument("--" + name.replace("_", "-"), type=float, default=value)
    args = parser.parse_args()

    viewers, matches = args.viewers, args.matches
    rate_per_match = args.updates_per_match / args.match_seconds          # messages/s per match
    match_viewers = viewers * (1 - args.feed_share)
    feed_viewers = viewers * args.feed_share
    match_deliveries = match_viewers * rate_per_match                      # messages/s to viewers
    feed_rate = matches * args.summaries_per_match / args.match_seconds    # summaries/s on the feed
    feed_deliveries = feed_viewers * feed_rate
    deliveries = match_deliveries + feed_deliveries
    api_cores_steady = deliveries * args.cpu_us_per_delivery / 1e6
    egress_gbit = (match_deliveries * args.message_bytes + feed_deliveries * args.summary_bytes) * 8 / 1e9
    replicas_by_sockets = math.ceil(viewers / args.viewers_per_replica)
    replicas_by_cpu = math.ceil(api_cores_steady / (args.cores_per_replica * args.replica_headroom))
    replicas_by_egress = math.ceil(egress_gbit / (args.nic_gbit * args.replica_headroom))
    replicas = max(replicas_by_sockets, replicas_by_cpu, replicas_by_egress)
    memory_gb = viewers * (args.kb_per_connection + args.kernel_kb_per_connection) / 1e6
    per_replica = viewers / replicas
    # A goal in the biggest match: every one of its viewers on a replica gets one message; a
    # replica's shards share its viewers, one core each.
    biggest = viewers * args.biggest_match_share
    biggest_per_replica = biggest / replicas
    goal_seconds = biggest_per_replica * args.cpu_us_per_delivery / 1e6 / args.cores_per_replica
    goal_burst_gbit = biggest_per_replica * args.message_bytes * 8 / 1e9 / max(goal_seconds, 1e-6) * replicas
    # Redis: every replica subscribes once; each published entry goes to every replica.
    publishes = matches * rate_per_match + feed_rate   # each match entry, and each summary
    redis_replicas = math.ceil(replicas / args.redis_replica_subscribers)
    redis_us = args.redis_base + args.redis_per_subscriber * min(replicas, args.redis_replica_subscribers)
    redis_core_share = publishes * redis_us / 1e6
    # Kafka and the projector.
    records = matches * args.records_per_match / args.match_seconds
    projectors_needed = records / args.projector_records_per_s
    partitions = max(12, 2 * math.ceil(projectors_needed) * 3)
    # A full reconnect storm: every viewer reconnects once, spread by jitter over the window.
    storm_cpu_core_seconds = viewers * args.reconnect_cpu_us / 1e6
    storm_cores = storm_cpu_core_seconds / args.storm_seconds
    storm_reads = viewers * args.store_reads_per_reconnect
    storm_redis_core_seconds = storm_reads * args.redis_us_per_read / 1e6

    rows = [
        ("viewers / matches", f"{viewers:,.0f} / {matches:,}"),
        ("messages per match", f"{rate_per_match:.3f}/s ({args.updates_per_match:.0f} per match)"),
        ("deliveries to viewers", f"{deliveries:,.0f}/s: {match_deliveries:,.0f} to match pages, {feed_deliveries:,.0f} to the games list ({feed_viewers:,.0f} viewers x {feed_rate:.1f} summaries/s)"),
        ("API cores, steady", f"{api_cores_steady:,.1f}"),
        ("API replicas", f"{replicas:,} x {args.cores_per_replica} cores: {replicas_by_sockets:,} by sockets at {args.viewers_per_replica:,.0f} each, {replicas_by_cpu:,} by CPU, {replicas_by_egress:,} by egress ({args.replica_headroom:.0%} of each)"),
        ("viewers per replica", f"{per_replica:,.0f}"),
        ("memory for connections", f"{memory_gb:,.1f} GB in all, {memory_gb / replicas * 1000:,.0f} MB per replica"),
        ("goal in the biggest match", f"{biggest:,.0f} viewers, {biggest_per_replica:,.0f} per replica: the last gets it {goal_seconds * 1000:,.0f} ms after the first"),
        ("egress, steady", f"{egress_gbit:,.2f} Gbit/s"),
        ("egress, during that goal", f"{goal_burst_gbit:,.1f} Gbit/s across the replicas"),
        ("Redis publishes", f"{publishes:,.1f}/s, {redis_us:.0f} us each with {min(replicas, args.redis_replica_subscribers)} subscribers: {redis_core_share * 100:.2f}% of a core"),
        ("Redis replicas (for subscriptions)", f"{redis_replicas} (one per {args.redis_replica_subscribers} API replicas), plus the primary"),
        ("Kafka records", f"{records:,.0f}/s; {projectors_needed:.3f} of one projector"),
        ("projectors / partitions", f"2-3 (for failover) / {partitions}"),
        ("full reconnect storm", f"{storm_cpu_core_seconds:,.0f} core-seconds of API CPU: {storm_cores:,.0f} cores for {args.storm_seconds:.0f} s of jitter; {storm_reads:,.0f} store reads, {storm_redis_core_seconds:,.1f} Redis core-seconds"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")

    # What runs out first: the smallest margin over the steady need.
    limits = {
        "sockets per replica (open files, memory, drain time)": replicas_by_sockets,
        "API CPU": replicas_by_cpu,
        "egress bandwidth": replicas_by_egress,
    }
    first = max(limits, key=limits.get)
    print(f"\nruns out first: {first} ({limits[first]:,} replicas; " + ", ".join(
        f"{name}: {count:,}" for name, count in limits.items() if name != first) + ")")
    if goal_seconds > 1.0:
        print(f"the goal takes {goal_seconds:.1f} s to reach every viewer of the biggest match: more replicas or cores")


if __name__ == "__main__":
    main()
