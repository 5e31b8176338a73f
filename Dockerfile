# Thunderhelm runner image: `cerebros-runner` (the HTTP service) and `cerebros-bridge` (the Thunderline
# bridge CLI, copied into Thunderline's pods by the chart's init container).
#
#   docker build -t ghcr.io/thunderline/cerebros-runner:0.1.0 --build-arg VERSION=0.1.0 .
#   podman build -t ghcr.io/thunderline/cerebros-runner:0.1.0 --build-arg VERSION=0.1.0 .
#
# Stages:
#   skeleton  the workspace's manifests and lock, every .rs file replaced by an empty `fn main() {}`
#   build     compiles the dependencies from the skeleton (a layer that only changes with the
#             manifests or the lock), then the real sources: `cargo build --release --locked`
#   runtime   Debian 12 slim, both binaries in /usr/local/bin, UID/GID 10001, data on /data
#
# The runtime stage only needs `/out/` (the two binaries) and the CA bundle from the stage named
# `build`, so that stage can be replaced by a directory of prebuilt binaries:
#   podman build --target runtime --build-context build=DIR ...   (see scripts/test-image.sh)

ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS skeleton
WORKDIR /src
COPY . .
# Keep only what decides the dependency graph: manifests, the lock, and the paths of the Rust files.
RUN find . -type f ! -name Cargo.toml ! -name Cargo.lock ! -name '*.rs' -delete \
    && echo 'fn main() {}' > /tmp/stub.rs \
    && find . -type f -name '*.rs' -exec cp /tmp/stub.rs {} \;

FROM ${RUST_IMAGE} AS build
WORKDIR /src
ENV CARGO_TARGET_DIR=/src/target CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
# Dependency layer: rebuilt only when a manifest, the lock or the set of source files changes.
COPY --from=skeleton /src/ /src/
RUN cargo build --release --locked -p runner -p bridge
COPY . .
# COPY keeps the sources' mtimes, which may be older than the skeleton's build: touch them so cargo
# rebuilds the workspace crates instead of keeping the stubs.
RUN find . -path ./target -prune -o -type f -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p runner -p bridge \
    && install -D -m 0755 target/release/cerebros-runner /out/cerebros-runner \
    && install -D -m 0755 target/release/cerebros-bridge /out/cerebros-bridge

FROM ${RUNTIME_IMAGE} AS runtime
# The fixed non-root user the chart's securityContext names (runAsUser/runAsGroup/fsGroup 10001).
RUN groupadd --gid 10001 cerebros \
    && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home --home-dir /data \
       --shell /usr/sbin/nologin cerebros \
    && mkdir -p /data \
    && chown 10001:10001 /data \
    && chmod 0750 /data

COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/cerebros-runner /out/cerebros-bridge /usr/local/bin/

ENV PORT=8088 \
    RUNNER_DATA_DIR=/data \
    HOME=/data \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8088
STOPSIGNAL SIGTERM
ENTRYPOINT ["cerebros-runner"]

# Last, so a new revision or date does not invalidate the layers above.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=https://github.com/thunderline/thunderhelm
ARG RUNTIME_IMAGE
LABEL org.opencontainers.image.title="cerebros-runner" \
      org.opencontainers.image.description="Thunderhelm Cerebros runner (TPE proposals, NAS training, Thunderline bridge endpoints) and cerebros-bridge" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Thunderline" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
