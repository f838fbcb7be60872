# The hsc workers and command line, built the way the README builds them.
# deploy/compose/compose.yaml runs this image next to the official images of
# Kafka, PostgreSQL, Redis, Milvus and Neo4j; deploy/kubernetes uses it too.
#
#   docker build -t hsc:0.1.0 .

FROM debian:bookworm AS build
# The build dependencies: the -dev packages of deploy/local/lib.sh (a test keeps the lists equal).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      librdkafka-dev libpq-dev libhiredis-dev libcurl4-openssl-dev libmsgpack-dev libev-dev \
      libjansson-dev libinih-dev libcmocka-dev libyaml-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN rm -rf build build-* .local
# The README's "Building by hand", word for word (a test checks it).
RUN cmake -S . -B build -G Ninja && ninja -C build
RUN ctest --test-dir build -L unit

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librdkafka1 libpq5 libhiredis0.14 libcurl4 libmsgpackc2 libev4 libjansson4 libinih1 \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/hsc /src/build/hsc-ingest /src/build/hsc-enrich \
     /src/build/hsc-embed-index /src/build/hsc-query /src/build/hsc-migrate /usr/local/bin/
COPY --from=build /src/schemas /usr/local/share/hsc/schemas
# No root inside: the workers need only the network.
USER 65532:65532
ENV HSC_METRICS_PORT=9100 \
    HSC_PATHS_SCHEMAS=/usr/local/share/hsc/schemas
EXPOSE 9100
CMD ["hsc", "--help"]
