# livescore in a container: one image, every role (docker-compose.yaml runs it as the producer,
# the projector and three API replicas by changing the subcommand).
#
#   docker build -t livescore .
#   docker run --rm -p 8080:8080 livescore up        # everything in one process, in memory
#
# Stages: `chef` has the toolchain and cargo-chef; `planner` writes the dependency recipe;
# `builder` compiles the dependencies from the recipe alone (a layer that stays cached until
# Cargo.toml or Cargo.lock change), then livescore itself; `runtime` is Debian slim with the
# binary, the web UI and the StatsBomb data, run as an unprivileged user.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# librdkafka is compiled from source by rdkafka-sys (make, gcc, perl: all in the rust image).
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin livescore

FROM debian:bookworm-slim AS runtime
# curl: the health checks of docker-compose.yaml; ca-certificates: TLS to a managed Kafka/Redis.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin livescore
WORKDIR /app
COPY --from=builder /src/target/release/livescore /usr/local/bin/livescore
COPY web ./web
COPY data ./data
ENV DATA_DIR=/app/data \
    WEB_DIR=/app/web \
    LISTEN=0.0.0.0:8080
USER livescore
EXPOSE 8080
ENTRYPOINT ["livescore"]
CMD ["up"]
