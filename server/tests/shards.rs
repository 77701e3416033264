//! Shards under concurrency: many servers starting, serving and stopping at once in one
//! process, as the API tests do, and as a replica's own shards do when it starts.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use livescore_server::{MakeApp, Server, ServerConfig, Shard};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Servers of several shards each, started and stopped together in one process: each answers
/// from its own shards, and each stops cleanly (a debug build aborts on a descriptor closed
/// twice, "IO Safety violation", which a shard that closed what it did not own once caused).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_starting_and_stopping_together_keep_their_descriptors_apart() {
    for _round in 0..4 {
        let servers: Vec<_> = (0..6).map(|_| tokio::spawn(one_server())).collect();
        for server in servers {
            server.await.expect("a server task panicked");
        }
    }
}

async fn one_server() {
    let config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        shards: 2,
        ..ServerConfig::default()
    };
    let server = Server::bind(&config).expect("bind");
    let addr = server.local_addr();
    let app: MakeApp = Arc::new(|shard: &Shard| {
        let index = shard.index();
        Router::new().route("/", get(move || async move { format!("shard {index}") }))
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(server.serve(app, stopped));
    for _ in 0..4 {
        let answer = get_root(addr).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("shard "), "{answer}");
    }
    stop.send(true).expect("the server is serving");
    serving
        .await
        .expect("the serving task panicked")
        .expect("the server stopped with an error");
}

async fn get_root(addr: SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
}
