//! The binary's integration tests, in one test binary (one link instead of ten): each module is
//! what was a file of its own. `support` holds what they share: the services, the clients and
//! the helpers that start a role in the test's process.

#![allow(clippy::unwrap_used)]

mod support;

mod api;
mod cli;
mod cluster;
mod drain;
mod failover;
mod fanout;
mod history;
mod hostile_clients;
mod http_limits;
mod outages;
mod pipeline;
mod presence;
mod processes;
mod projectors;
mod resync;
mod roles;
mod sentinel;
mod shared_reads;
mod streams;
