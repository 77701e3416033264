//! A shard: one thread with a single-threaded runtime and a listener of its own on the shared
//! port. Connections are spread by the kernel over the shards' listeners (`SO_REUSEPORT`); a
//! socket is only ever touched by the shard that accepted it, so a shard's fan-out engine owns
//! its viewers without a lock. Every shard shares the process's descriptor table, as every
//! thread of a process does: the open-file limit bounds the process's connections (see
//! `limits.rs`), and more processes on one port (`ServerConfig::reuse_port`) hold more.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::detach::{Detach, DetachableIo, Detached, Permit, Slot};
use crate::limits::{Limits, refuse};
use crate::{MAX_BODY, MakeApp, ServerError};

/// What an app sees of the shard it runs on.
#[derive(Clone)]
pub struct Shard {
    index: usize,
    count: usize,
    tracker: TaskTracker,
    shutdown: watch::Receiver<bool>,
}

impl Shard {
    /// A shard outside any server: for tests that drive an app's shard-local parts directly.
    /// Call it inside a `LocalSet`.
    pub fn standalone(shutdown: watch::Receiver<bool>) -> Shard {
        Shard {
            index: 0,
            count: 1,
            tracker: TaskTracker::new(),
            shutdown,
        }
    }

    pub fn index(&self) -> usize {
        self.index
    }

    /// How many shards the server has.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Turns true when the server shuts down.
    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Runs `task` on this shard's thread; shutdown waits for it (at most the server's drain).
    pub fn spawn_local<F>(&self, task: F)
    where
        F: Future<Output = ()> + 'static,
    {
        self.tracker.spawn_local(task);
    }
}

/// What a shard needs to start serving.
pub(crate) struct Go {
    pub make_app: MakeApp,
    pub shutdown: watch::Receiver<bool>,
    pub permits: Arc<Semaphore>,
    pub limits: Limits,
}

/// A shard whose listener is bound, waiting for its [`Go`].
pub(crate) struct Starting {
    pub local_addr: SocketAddr,
    go: std::sync::mpsc::SyncSender<Go>,
    done: oneshot::Receiver<()>,
}

/// The address the shards listen on, once the first has bound it (port 0 resolved).
#[derive(Default)]
struct SharedAddr {
    addr: Mutex<Option<Result<SocketAddr, ()>>>,
    bound: Condvar,
}

impl SharedAddr {
    fn set(&self, addr: Result<SocketAddr, ()>) {
        *self.addr.lock().unwrap_or_else(|p| p.into_inner()) = Some(addr);
        self.bound.notify_all();
    }

    fn wait(&self) -> Result<SocketAddr, ()> {
        let mut addr = self.addr.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(addr) = *addr {
                return addr;
            }
            addr = self.bound.wait(addr).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Starting {
    /// Starts `count` shards, each on its own thread with its own runtime and listener on
    /// `addr` (the first resolves port 0; the others join its port). With `reuse_port`, other
    /// processes that ask for it too may listen on the same port (the kernel spreads
    /// connections over all of them); without it, a port in use is an error.
    pub fn spawn_all(
        count: usize,
        addr: SocketAddr,
        reuse_port: bool,
    ) -> Result<Vec<Starting>, ServerError> {
        if !reuse_port && count > 1 && addr.port() != 0 {
            // The shards share the port with SO_REUSEPORT, which would let them share it with
            // another process that did the same (an old replica still running): a plain bind
            // first makes "address in use" an error, as it is for one listener.
            std::net::TcpListener::bind(addr)
                .map_err(|source| ServerError::Bind { addr, source })?;
        }
        let shared_port = reuse_port || count > 1;
        let shared = Arc::new(SharedAddr::default());
        let mut bound = Vec::with_capacity(count);
        let mut starting = Vec::with_capacity(count);
        for index in 0..count {
            let (bound_tx, bound_rx) = std::sync::mpsc::channel();
            let (go_tx, go_rx) = std::sync::mpsc::sync_channel::<Go>(1);
            let (done_tx, done_rx) = oneshot::channel();
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("http-shard-{index}"))
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|source| ServerError::Shard { index, source });
                    let listener = runtime.and_then(|runtime| {
                        let addr = if index == 0 { Ok(addr) } else { shared.wait() };
                        let addr = addr.map_err(|()| ServerError::ShardLost { index: 0 })?;
                        let listener = listen(addr, shared_port)
                            .map_err(|source| ServerError::Bind { addr, source });
                        if index == 0 {
                            let local = listener.as_ref().ok().and_then(|l| l.local_addr().ok());
                            shared.set(local.ok_or(()));
                        }
                        Ok((runtime, listener?))
                    });
                    let (runtime, listener) = match listener {
                        Ok(ready) => ready,
                        Err(err) => {
                            if index == 0 {
                                shared.set(Err(()));
                            }
                            let _ = bound_tx.send(Err(err));
                            return;
                        }
                    };
                    let local = listener.local_addr().unwrap_or(addr);
                    let _ = bound_tx.send(Ok(local));
                    // The server dropped without serving: nothing to do.
                    let Ok(go) = go_rx.recv() else { return };
                    run(index, count, &runtime, listener, go);
                    let _ = done_tx.send(());
                })
                .map_err(|source| ServerError::Shard { index, source })?;
            bound.push(bound_rx);
            starting.push((go_tx, done_rx));
        }
        let mut shards = Vec::with_capacity(count);
        for (index, (bound_rx, (go, done))) in bound.into_iter().zip(starting).enumerate() {
            let local_addr = bound_rx
                .recv()
                .map_err(|_| ServerError::ShardLost { index })??;
            shards.push(Starting {
                local_addr,
                go,
                done,
            });
        }
        Ok(shards)
    }

    /// Lets the shard serve; the receiver resolves when it has stopped.
    pub fn start(self, go: Go) -> oneshot::Receiver<()> {
        let _ = self.go.send(go);
        self.done
    }
}

fn listen(addr: SocketAddr, shared: bool) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if shared {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn run(
    index: usize,
    count: usize,
    runtime: &tokio::runtime::Runtime,
    listener: std::net::TcpListener,
    go: Go,
) {
    let local = tokio::task::LocalSet::new();
    local.block_on(runtime, async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(err) => {
                tracing::error!(shard = index, "cannot use the shard's listener: {err}");
                return;
            }
        };
        let tracker = TaskTracker::new();
        let shard = Shard {
            index,
            count,
            tracker: tracker.clone(),
            shutdown: go.shutdown.clone(),
        };
        // `with_state(())` once here builds the routes once: served as a plain `Router` per
        // connection, axum 0.8 would rebuild its routing tables for each (about 9 KB per open
        // connection, measured with heaptrack on 10,000 SSE viewers).
        let app = (go.make_app)(&shard)
            .layer(axum::middleware::map_response(crate::json_error_body))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .layer(axum::middleware::from_fn(crate::close_if_body_unread))
            .with_state(());
        let graceful = accept(listener, app, &go).await;
        tracker.close();
        let drain = go.limits.drain;
        let drained = tokio::time::timeout(drain, async {
            graceful.shutdown().await;
            tracker.wait().await;
        })
        .await;
        if drained.is_err() {
            tracing::info!(
                shard = index,
                "connections still busy {drain:?} after the signal: leaving them"
            );
        }
    });
}

/// Accepts and serves connections until the shutdown signal; returns what is still being served.
async fn accept(listener: tokio::net::TcpListener, app: axum::Router, go: &Go) -> GracefulShutdown {
    let mut shutdown = go.shutdown.clone();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(go.limits.header_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, most likely: wait for some to come back rather
                    // than spin on accept.
                    tracing::warn!("cannot accept a connection: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let Ok(permit) = Arc::clone(&go.permits).try_acquire_owned() else {
            tokio::spawn(refuse(stream, go.limits.max_connections));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let slot = Arc::new(Slot::default());
        let detach = Detach::new(Arc::clone(&slot));
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(detach.clone());
                request.map(Body::new)
            },
        ));
        let io = TokioIo::new(DetachableIo::new(stream, Arc::clone(&slot)));
        let connection = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            let mut connection = Box::pin(connection);
            let ended = tokio::select! {
                biased;
                () = slot.detached() => None,
                ended = &mut connection => Some(ended),
            };
            if let Some(Err(err)) = ended {
                // A header timeout, a reset or a malformed request: the connection is over.
                tracing::debug!("connection ended: {err}");
            }
            drop(connection);
            if let Some((stream, then)) = slot.take() {
                then(Detached {
                    stream,
                    permit: Permit::new(permit),
                });
            }
        });
    }
    graceful
}
