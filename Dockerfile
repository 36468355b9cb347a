# The meshplan image the CronJob from `meshplan cronjob` runs (`meshplan ramp ... --in-cluster`).
#   docker build -t registry.example.com/meshplan:0.1.0 .
# Build stage: the toolchain pinned in rust-toolchain.toml; no OpenSSL (rustls with aws-lc-rs,
# which builds its C code with the image's gcc).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin meshplan

# Run stage: a small Debian with CA certificates (for the API server and Prometheus over TLS),
# as an unprivileged user with a read-only root file system (the CronJob mounts the plan).
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/meshplan /usr/local/bin/meshplan
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/meshplan"]
