# syntax=docker/dockerfile:1
#
# portcullis as a static binary in a distroless image (no shell, no package manager,
# runs as uid 65532). Build:  docker build -t portcullis .

FROM rust:1-bookworm AS builder
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
# ring (TLS) compiles a little C: use musl's compiler wrapper for the musl target.
ENV CC_x86_64_unknown_linux_musl=musl-gcc
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl \
 && cp target/x86_64-unknown-linux-musl/release/portcullis /portcullis

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /portcullis /usr/local/bin/portcullis
USER nonroot
EXPOSE 4180
# Asks the local instance's /healthz (port taken from LISTEN_ADDR, default 4180).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/portcullis", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/portcullis"]
