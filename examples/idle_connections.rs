//! Opens N idle connections to an API replica and holds them, for measuring the replica's memory
//! per connection (see BENCHMARKS.md): `idle_connections <base url> <sse|ws> <n>`. Each
//! connection follows the games list and waits after its snapshot. Prints "ready" when all hold.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (base, transport, n) = match args.as_slice() {
        [_, base, transport, n] => (base.clone(), transport.clone(), n.parse::<usize>()?),
        _ => anyhow::bail!("usage: idle_connections <base url> <sse|ws> <n>"),
    };
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let base = base.clone();
        let transport = transport.clone();
        held.push(tokio::spawn(async move {
            if transport == "ws" {
                use tokio_tungstenite::tungstenite::Message;
                let url = format!("{}/ws", base.replace("http://", "ws://"));
                let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
                let subscribe = livescore_wire::ClientRequest::Subscribe {
                    topic: livescore_wire::Topic::Feed,
                    cursor: None,
                };
                socket
                    .send(Message::text(serde_json::to_string(&subscribe)?))
                    .await?;
                socket.next().await;
                // Hold it, answering pings.
                while socket.next().await.is_some() {}
            } else {
                let path = livescore_wire::Topic::Feed.sse_path();
                let response = reqwest::get(format!("{base}{path}")).await?;
                let mut body = response.bytes_stream();
                body.next().await;
                while body.next().await.is_some() {}
            }
            anyhow::Ok(())
        }));
        if held.len() % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("ready");
    tokio::time::sleep(Duration::from_secs(3600)).await;
    Ok(())
}
