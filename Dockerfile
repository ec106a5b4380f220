# kpipe container image: build stage (compilers, -dev packages) + small runtime stage.
#
#   podman build --format docker -t kpipe .     (or docker build; see README.md "Container")
#   podman run --rm --stop-timeout 45 -p 127.0.0.1:9464:9464 kpipe   # demo, embedded broker
#
# BASE lets a build use a local Debian bookworm image instead of a registry's (the test,
# tests/integration/container_test.py, makes one with mmdebstrap). Both stages use it, so the
# runtime libraries are the very versions the binary was built against.
ARG BASE=debian:bookworm

FROM ${BASE} AS build
# The library -dev packages of deploy/setup.sh and the toolchain; not the test packages
# (gtest, rapidcheck, kcat, ...): KPIPE_BUILD_TESTS=OFF needs none of them. ccache: see below.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      cmake ninja-build g++ pkg-config ccache \
      librdkafka-dev libyaml-cpp-dev rapidjson-dev libvalijson-dev libboost-dev \
      prometheus-cpp-dev libhiredis-dev liblmdb-dev libsystemd-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the kpipe target is built from, so that a change to config/, tests/ or the docs
# does not invalidate the (slow) compile layer.
COPY CMakeLists.txt ./
COPY daemon/ daemon/
# RelWithDebInfo's code (-O2, NDEBUG: what the tests run) without -g: the binary is stripped,
# and debug info costs ~40% of the compile time (Boost.Beast/Asio templates).
# ccache in a cache mount (kept by podman/buildah in /var/tmp/buildah-cache, by docker in its
# build cache): a rebuild after a source change compiles only the files that changed.
# -j: the builder's cores (ninja's default, cores + 2, is too much memory for a small builder).
# The build tree goes in the same step, so the layer holds only the stripped binary.
RUN --mount=type=cache,target=/root/.cache/ccache,id=kpipe-ccache \
    export CCACHE_MAXSIZE=1G \
 && cmake -S . -B /tmp/build -G Ninja -DKPIPE_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
 && cmake --build /tmp/build --target kpipe -j "$(nproc)" \
 && ccache --show-stats \
 && strip /tmp/build/daemon/kpipe \
 && install -D -m 755 /tmp/build/daemon/kpipe /out/usr/bin/kpipe \
 && rm -rf /tmp/build
# The default config as one self-contained directory: the repo's pipelines name their schemas
# as ../schemas/ (relative to config/), which from /etc/kpipe would be /etc/schemas; here the
# schemas go to /etc/kpipe/schemas and the pipelines say schemas/. Then mounting one directory
# over /etc/kpipe replaces the whole config, and `kpipe check` proves this one loads.
COPY config/ /out/etc/kpipe/
COPY schemas/ /out/etc/kpipe/schemas/
RUN sed -i 's#\.\./schemas/#schemas/#g' /out/etc/kpipe/pipelines/*.yaml \
 && /out/usr/bin/kpipe check /out/etc/kpipe/kpipe.yaml

FROM ${BASE}
# Only the shared libraries kpipe links (ldd + dpkg -S); apt brings their own dependencies.
# ca-certificates: the system CA store, for https HTTP outputs and Kafka over TLS.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      librdkafka1 libyaml-cpp0.7 libhiredis0.14 liblmdb0 libssl3 libsystemd0 \
      libprometheus-cpp-core1.0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# A fixed uid/gid, so that volumes and mounted config can be owned by it on the host.
# /var/lib/kpipe is created (and owned) before VOLUME, so a new volume starts out writable
# by kpipe: lmdb dedup stores live there (stores: {type: lmdb, path: /var/lib/kpipe/...}).
RUN groupadd --system --gid 10001 kpipe \
 && useradd --system --uid 10001 --gid kpipe --home-dir /var/lib/kpipe --no-create-home \
      --shell /usr/sbin/nologin kpipe \
 && install -d -o kpipe -g kpipe -m 750 /var/lib/kpipe
COPY --from=build /out/ /
# No VOLUME for /etc/kpipe: an anonymous volume would be seeded once with this image's config
# and then hide the config of every newer image. Bring your own with a bind mount
# (-v "$PWD/myconfig:/etc/kpipe:ro"), which replaces the default whole.
VOLUME /var/lib/kpipe
# config/kpipe.yaml listens on ${KPIPE_HTTP_LISTEN:-127.0.0.1:9464}: in a container the
# loopback default would be unreachable through a published port.
ENV KPIPE_HTTP_LISTEN=0.0.0.0:9464
EXPOSE 9464
USER kpipe
WORKDIR /var/lib/kpipe
# No curl or wget in the image: bash's /dev/tcp speaks HTTP/1.0 (kpipe answers in the request's
# version and closes), the port taken from KPIPE_HTTP_LISTEN. /healthz is 200 while the event
# loop runs. start-period: the embedded broker and the first consumer group join take seconds.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "l=${KPIPE_HTTP_LISTEN:-:9464} && exec 3<>/dev/tcp/127.0.0.1/${l##*:} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '^HTTP/1.[01] 200 ' <&3"]
# kpipe drains on SIGTERM for up to shutdown.drain_timeout (30 s), more than the 10 s that
# `podman stop` / `docker stop` wait by default: run with --stop-timeout 45 (README.md).
STOPSIGNAL SIGTERM
ENTRYPOINT ["kpipe"]
CMD ["run", "/etc/kpipe/kpipe.yaml"]
