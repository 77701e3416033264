//! Redis failover through Sentinel, mid-match, with viewers attached. The test runs its own
//! Redis primary, one replica and three sentinels (quorum 2), and `livescore` roles on the
//! shared test broker: a producer, a projector that writes the primary, and an API replica that
//! reads and subscribes from the Redis replica (`REDIS_READ_FROM=replica`). Each role knows only
//! the sentinels. SSE and WebSocket viewers follow 7471 on the API; at minute 30 the primary is
//! killed (SIGKILL). The sentinels promote the replica; the projector and the API find it by
//! themselves; the match ends at its fold, each update logged once, and every viewer's sequence
//! is exactly the log after its snapshot: no gap, no duplicate.

use crate::support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use livescore_domain::{ReplayStatus, fold_match};
use livescore_store::MatchStore;
use livescore_store::redis::{ReadFrom, RedisConfig, RedisServer, RedisStore, SentinelConfig};
use support::clients::{Transport, assert_exact, follow_to_the_end, logged_updates};
use support::services::{Role, Server, free_port};

const GAME: u64 = 7471;
const MASTER: &str = "livescore";
const TOKEN: &str = "sentinel-test-token";
/// 90 minutes in about 25 s: the kill comes mid-match whatever the machine's load, since the
/// test waits for minute 30 in the store, and the rest of the match is written after the
/// failover in any case (the projector catches up from Kafka).
const SPEED: u32 = 250;

/// A Redis answer as text: `INFO`, `CLIENT LIST`, or a sentinel's view of the primary.
async fn ask(port: u16, command: &[&str]) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cmd = redis::cmd(command[0]);
    for arg in &command[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut conn).await
}

/// What a sentinel knows of the primary (`SENTINEL MASTER`), field by field.
async fn sentinel_view(port: u16) -> HashMap<String, String> {
    ask(port, &["SENTINEL", "MASTER", MASTER])
        .await
        .ok()
        .and_then(|value| redis::from_redis_value::<HashMap<String, String>>(value).ok())
        .unwrap_or_default()
}

/// The connections subscribed on a server, sentinels' own left out.
async fn subscribers(port: u16) -> usize {
    let list = ask(port, &["CLIENT", "LIST"])
        .await
        .ok()
        .and_then(|value| redis::from_redis_value::<String>(value).ok())
        .unwrap_or_default();
    list.lines()
        .filter(|line| line.contains(" sub=1 ") && !line.contains(" name=sentinel-"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_primary_killed_mid_match_fails_over_and_no_viewer_misses_an_entry() {
    let mut primary = Server::redis().await;
    let replica = Server::redis_replica_of(primary.port).await;
    let sentinels = [
        Server::redis_sentinel(MASTER, primary.port).await,
        Server::redis_sentinel(MASTER, primary.port).await,
        Server::redis_sentinel(MASTER, primary.port).await,
    ];
    // A failover needs the replica in sync and the sentinels aware of it and of each other.
    support::until(
        "the replica in sync, and every sentinel aware of it and of the two others",
        Duration::from_secs(30),
        || async {
            let info = ask(replica.port, &["INFO", "replication"])
                .await
                .ok()
                .and_then(|value| redis::from_redis_value::<String>(value).ok())
                .unwrap_or_default();
            if !info.contains("master_link_status:up") {
                return false;
            }
            for sentinel in &sentinels {
                let view = sentinel_view(sentinel.port).await;
                if view.get("num-slaves").map(String::as_str) != Some("1")
                    || view.get("num-other-sentinels").map(String::as_str) != Some("2")
                {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let addresses: Vec<String> = sentinels
        .iter()
        .map(|sentinel| format!("127.0.0.1:{}", sentinel.port))
        .collect();

    let name = support::owned("sentinel");
    let repo = env!("CARGO_MANIFEST_DIR");
    let (producer_port, api_port, projector_port) = (free_port(), free_port(), free_port());
    let env = |extra: &[(&'static str, String)]| {
        let mut env = vec![
            ("KAFKA_BROKERS", support::kafka_brokers()),
            ("KAFKA_TOPIC", name.to_string()),
            ("PROJECTOR_GROUP", name.to_string()),
            ("REDIS_SENTINELS", addresses.join(",")),
            ("REDIS_SENTINEL_MASTER", MASTER.to_owned()),
            ("REDIS_PREFIX", name.to_string()),
            ("ADMIN_TOKEN", TOKEN.to_owned()),
            ("DATA_DIR", format!("{repo}/data")),
        ];
        env.extend(extra.iter().cloned());
        env
    };
    let _producer = Role::start(
        "producer",
        &env(&[("LISTEN", format!("127.0.0.1:{producer_port}"))]),
    );
    let _projector = Role::start(
        "projector",
        &env(&[("PROJECTOR_LISTEN", format!("127.0.0.1:{projector_port}"))]),
    );
    let _api = Role::start(
        "api",
        &env(&[
            ("LISTEN", format!("127.0.0.1:{api_port}")),
            ("REDIS_READ_FROM", "replica".to_owned()),
        ]),
    );
    let store: Arc<dyn MatchStore> = Arc::new(
        RedisStore::connect(RedisConfig {
            server: RedisServer::Sentinel(SentinelConfig {
                sentinels: addresses.clone(),
                master: MASTER.to_owned(),
                read_from: ReadFrom::Primary,
            }),
            prefix: name.to_string(),
        })
        .await
        .unwrap(),
    );
    let http = support::http_client();
    let api = format!("http://127.0.0.1:{api_port}");
    support::until("the API replica ready", Duration::from_secs(30), || async {
        http.get(format!("{api}/readyz"))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    })
    .await;
    support::until(
        "the producer to start the replay",
        Duration::from_secs(30),
        || async {
            http.post(format!(
                "http://127.0.0.1:{producer_port}/games/{GAME}?speed={SPEED}"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .is_ok_and(|response| response.status().as_u16() == 202)
        },
    )
    .await;
    support::until(
        "the match in the store",
        Duration::from_secs(30),
        || async { store.load(GAME).await.is_ok_and(|stored| stored.is_some()) },
    )
    .await;

    // The API reads from the replica: its subscription is there, not on the primary.
    assert!(
        subscribers(replica.port).await >= 1,
        "the API subscribed on the replica"
    );
    assert_eq!(
        subscribers(primary.port).await,
        0,
        "nobody but the sentinels subscribed on the primary"
    );

    let viewers: Vec<_> = [Transport::Sse, Transport::WebSocket]
        .into_iter()
        .flat_map(|transport| std::iter::repeat_n(transport, 3))
        .map(|transport| {
            let api = api.clone();
            tokio::spawn(async move {
                let followed =
                    follow_to_the_end(&api, GAME, transport, Duration::from_secs(180)).await;
                (transport, followed)
            })
        })
        .collect();

    support::until("minute 30", Duration::from_secs(60), || async {
        store
            .load(GAME)
            .await
            .ok()
            .flatten()
            .is_some_and(|stored| stored.fold.state.clock.minute >= 30)
    })
    .await;
    assert!(
        store
            .load(GAME)
            .await
            .unwrap()
            .is_some_and(|stored| stored.replay.status != ReplayStatus::Finished),
        "killed mid-match"
    );
    let killed = tokio::time::Instant::now();
    primary.kill();

    let new_primary = replica.port.to_string();
    support::until(
        "the sentinels to promote the replica",
        Duration::from_secs(60),
        || async {
            let named = ask(
                sentinels[0].port,
                &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER],
            )
            .await
            .ok()
            .and_then(|value| redis::from_redis_value::<Vec<String>>(value).ok());
            named.is_some_and(|named| named.get(1) == Some(&new_primary))
        },
    )
    .await;
    let promoted = killed.elapsed();

    let (fold, updates) = {
        let loaded = support::catalog().load(&GAME.to_string()).unwrap();
        fold_match(loaded.info, &loaded.events)
    };
    support::until(
        "the match to finish after the failover",
        Duration::from_secs(120),
        || async {
            store
                .load(GAME)
                .await
                .ok()
                .flatten()
                .is_some_and(|stored| stored.replay.status == ReplayStatus::Finished)
        },
    )
    .await;
    let finished = killed.elapsed();
    let stored = store.load(GAME).await.unwrap().unwrap();
    assert_eq!(stored.fold, fold, "the match ends at its fold");
    assert_eq!(stored.replay.lost_records, 0, "nothing lost");
    let logged = logged_updates(store.as_ref(), GAME).await;
    assert_eq!(logged, updates, "every update once, in order");

    for viewer in viewers {
        let (transport, followed) = tokio::time::timeout(Duration::from_secs(200), viewer)
            .await
            .expect("every viewer reaches the end of the match")
            .unwrap();
        assert!(
            followed.seen.len() > 10,
            "{transport:?}: saw the match ({} events)",
            followed.seen.len()
        );
        assert_exact(store.as_ref(), GAME, &followed.seen).await;
        eprintln!(
            "{transport:?} viewer: {} events, {} reconnects",
            followed.seen.len(),
            followed.reconnects
        );
    }
    eprintln!(
        "primary killed; replica promoted after {promoted:?}; the match finished {finished:?} \
         after the kill"
    );
    store.clear().await.unwrap();
}
