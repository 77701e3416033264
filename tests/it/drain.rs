//! Shutdown and load shedding spread their goodbyes: an API replica told to stop (SIGTERM), or past
//! its `SHED_ABOVE_CONNECTIONS`, closes its viewers (the excess ones) a few
//! at a time over its drain window (`SHUTDOWN_DRAIN_MS`), not all at once, so that they do not
//! all reconnect to the other replicas at the same instant.
//!
//! The assertions are bounds the schedule guarantees whatever the machine's load: a viewer is
//! never told to go before its turn, so by half the window at most about half have gone, and the
//! last go once the window is over; and every viewer does go.

use crate::support;

use std::time::Duration;

use futures_util::StreamExt;
use support::services::{Role, free_port};
use tokio::time::Instant;

const VIEWERS: usize = 200;
const WINDOW: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_told_to_stop_closes_its_viewers_over_its_drain_window() {
    let name = support::owned("drain");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut api = Role::start(
        "api",
        &[
            ("REDIS_URL", support::redis_url()),
            ("REDIS_PREFIX", name.to_string()),
            ("LISTEN", format!("127.0.0.1:{port}")),
            ("SHUTDOWN_DRAIN_MS", WINDOW.as_millis().to_string()),
            ("HTTP_SHARDS", "2".to_owned()),
        ],
    );
    let http = support::http_client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|response| response.status() == 200)
    {
        assert!(Instant::now() < deadline, "the replica never got ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Each viewer follows the games list: connected once its first event (the snapshot) came,
    // and then it waits for the end of its stream.
    let (connected_tx, mut connected) = tokio::sync::mpsc::channel(VIEWERS);
    let viewers: Vec<_> = (0..VIEWERS)
        .map(|_| {
            let (url, connected) = (format!("{base}/sse/games"), connected_tx.clone());
            tokio::spawn(async move {
                let response = reqwest::Client::new().get(url).send().await.ok()?;
                let mut body = response.bytes_stream();
                body.next().await?.ok()?;
                connected.send(()).await.ok()?;
                while let Some(Ok(_)) = body.next().await {}
                Some(Instant::now())
            })
        })
        .collect();
    for _ in 0..VIEWERS {
        tokio::time::timeout_at(deadline, connected.recv())
            .await
            .expect("every viewer connects")
            .expect("the viewers are running");
    }

    let signalled = Instant::now();
    let stopping = tokio::task::spawn_blocking(move || api.terminate());
    let mut ends = Vec::new();
    for viewer in viewers {
        let ended = tokio::time::timeout(WINDOW + Duration::from_secs(30), viewer)
            .await
            .expect("every viewer is told to go")
            .unwrap()
            .expect("every viewer connected and then saw its stream end");
        ends.push(ended.duration_since(signalled));
    }
    stopping.await.unwrap();
    ends.sort();
    eprintln!(
        "closed after the signal: first {:?}, half {:?}, last {:?}",
        ends[0],
        ends[VIEWERS / 2],
        ends[VIEWERS - 1]
    );

    let by_half_window = ends.iter().filter(|end| **end <= WINDOW / 2).count();
    assert!(
        by_half_window <= VIEWERS * 6 / 10,
        "{by_half_window} of {VIEWERS} viewers closed within half the window: not spread"
    );
    assert!(
        ends[VIEWERS - 1] >= WINDOW * 9 / 10,
        "the last viewer was closed {:?} after the signal, before the window ({WINDOW:?}) was over",
        ends[VIEWERS - 1]
    );
}

/// Load shedding: a replica past `SHED_ABOVE_CONNECTIONS` tells the excess (down to nine tenths
/// of the limit) to go, over the same window, and keeps the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_past_its_limit_sheds_the_excess_over_its_window_and_keeps_the_rest() {
    const LIMIT: usize = 100;
    let kept = LIMIT * 9 / 10;
    let name = support::owned("shed");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _api = Role::start(
        "api",
        &[
            ("REDIS_URL", support::redis_url()),
            ("REDIS_PREFIX", name.to_string()),
            ("LISTEN", format!("127.0.0.1:{port}")),
            ("SHUTDOWN_DRAIN_MS", WINDOW.as_millis().to_string()),
            ("SHED_ABOVE_CONNECTIONS", LIMIT.to_string()),
            // One shard: the limit is all its own.
            ("HTTP_SHARDS", "1".to_owned()),
        ],
    );
    let http = support::http_client();
    support::until("the replica ready", Duration::from_secs(30), || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|response| response.status() == 200)
    })
    .await;

    // Viewers that do not come back once told to go: what is left is what the replica kept.
    let (ended_tx, mut ended) = tokio::sync::mpsc::channel(VIEWERS);
    let _viewers: Vec<_> = (0..VIEWERS)
        .map(|_| {
            let (url, ended) = (format!("{base}/sse/games"), ended_tx.clone());
            tokio::spawn(async move {
                let response = reqwest::Client::new().get(url).send().await.ok()?;
                let mut body = response.bytes_stream();
                body.next().await?.ok()?;
                while let Some(Ok(_)) = body.next().await {}
                ended.send(Instant::now()).await.ok()
            })
        })
        .collect();
    let shed = VIEWERS - kept;
    let mut ends = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ends.len() < shed {
        let end = tokio::time::timeout_at(deadline, ended.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {shed} viewers were shed", ends.len()));
        ends.push(end.unwrap());
    }
    // The rest stay: nobody else is told to go, for a whole window and more.
    let more = tokio::time::timeout(WINDOW * 2, ended.recv()).await;
    assert!(more.is_err(), "a viewer under the limit was told to go");
    let spread = ends[shed - 1].duration_since(ends[0]);
    eprintln!("{shed} viewers shed over {spread:?}; {kept} kept");
    assert!(
        spread >= WINDOW / 2,
        "the {shed} viewers were shed within {spread:?}: not spread over the {WINDOW:?} window"
    );
    let metrics = support::scrape(&base).await;
    assert_eq!(
        support::metric(&metrics, "livescore_viewers_shed_total"),
        Some(shed as f64),
        "the replica counts whom it shed"
    );
}
