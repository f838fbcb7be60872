# Shared by deploy/local/up and down: where things live, and one start/stop
# pair per service. Every service keeps its data and logs under $HSC_RUN
# (default: .local/ at the top of the checkout, which git ignores) and
# listens on loopback only, on ports that default away from the usual ones so
# a system service on the same machine does not collide.
set -euo pipefail

HSC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HSC_RUN="${HSC_RUN:-$HSC_ROOT/.local}"
HSC_BUILD="${HSC_BUILD:-$HSC_ROOT/build}"
KAFKA_PORT="${KAFKA_PORT:-19092}"
# Neo4j's heap (-Xms = -Xmx). During hsc-enrich's writes (large transactions, seconds
# each) the JVM's GC threads used as much CPU as the statements with 768 MB, half as
# much with 2 GB (docs/performance.md, 2026-12-08).
NEO4J_HEAP="${NEO4J_HEAP:-2g}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
PG_PORT="${PG_PORT:-15432}"
REDIS_PORT="${REDIS_PORT:-16379}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

# A server started from here runs for long: it must not keep open what the
# caller had open beyond stdio (a test's lock file, a pipe its harness reads),
# or a lock is held, and a pipe left open, for as long as the server runs.
close_inherited_fds() {
  local fd
  for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2 && fd != 255)) && eval "exec $fd>&-" 2>/dev/null || true
  done
}
close_inherited_fds

say() { printf '[hsc-local] %s\n' "$*" >&2; }
die() { printf '[hsc-local] error: %s\n' "$*" >&2; exit 1; }

# wait_for NAME SECONDS COMMAND...: probes until COMMAND succeeds.
wait_for() {
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "$name did not become ready within ${secs}s (see $HSC_RUN/logs)"
    fi
    sleep 0.3
  done
}

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pid NAME PIDFILE: TERM, wait up to 30 s, then KILL.
stop_pid() {
  local name=$1 pidfile=$2
  if pid_alive "$pidfile"; then
    local pid; pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.3; done
    kill -9 "$pid" 2>/dev/null || true
    say "$name stopped"
  fi
  rm -f "$pidfile"
}

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# ---------------------------------------------------------------- packages

DEB_PACKAGES=(build-essential cmake ninja-build pkg-config git
  librdkafka-dev libpq-dev libhiredis-dev libcurl4-openssl-dev libmsgpack-dev libev-dev
  libjansson-dev libinih-dev libcmocka-dev libyaml-dev
  postgresql-15 postgresql-client-15 redis-server redis-tools
  openjdk-17-jre-headless maven python3-venv valgrind clang-format clang libclang-rt-14-dev curl iproute2)

install_packages() {
  local missing=()
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

build_hsc() {
  if [[ ! -x $HSC_BUILD/hsc || ${HSC_REBUILD:-1} == 1 ]]; then
    say "building hsc in $HSC_BUILD"
    cmake -S "$HSC_ROOT" -B "$HSC_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    ninja -C "$HSC_BUILD" >/dev/null
  fi
}

java17() {
  local j
  for j in /usr/lib/jvm/java-17-openjdk-amd64/bin/java /usr/lib/jvm/java-17-openjdk*/bin/java; do
    [[ -x $j ]] && { echo "$j"; return; }
  done
  command -v java || die "no Java 17 found"
}

# ---------------------------------------------------------------- kafka

kafka_start() {
  local dir=$HSC_RUN/kafka
  mkdir -p "$dir" "$HSC_RUN/logs"
  if pid_alive "$dir/pid"; then say "kafka already running on $KAFKA_PORT"; return; fi
  if [[ ! -f $dir/libs/.complete ]]; then
    say "fetching the Kafka broker from Maven Central"
    (cd "$HSC_ROOT/deploy/local/kafka" &&
      mvn -q -B dependency:copy-dependencies -DoutputDirectory="$dir/libs" >"$HSC_RUN/logs/kafka-fetch.log" 2>&1) ||
      die "mvn could not fetch the Kafka jars (see $HSC_RUN/logs/kafka-fetch.log)"
    touch "$dir/libs/.complete"
  fi
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=168
PROPS
  cat >"$dir/log4j.properties" <<'PROPS'
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS
  local java; java=$(java17)
  local jopts=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
    -Dlog4j.configuration="file:$dir/log4j.properties")
  if [[ ! -f $dir/data/meta.properties ]]; then
    local id; id=$("$java" -cp "$dir/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
    "$java" "${jopts[@]}" -cp "$dir/libs/*" kafka.tools.StorageTool format -t "$id" \
      -c "$dir/server.properties" >"$HSC_RUN/logs/kafka-format.log" 2>&1 ||
      die "kafka storage format failed (see $HSC_RUN/logs/kafka-format.log)"
  fi
  say "starting kafka on 127.0.0.1:$KAFKA_PORT"
  setsid nohup "$java" "${jopts[@]}" -cp "$dir/libs/*" kafka.Kafka "$dir/server.properties" \
    >>"$HSC_RUN/logs/kafka.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  wait_for "kafka" 120 bash -c "exec 3<>/dev/tcp/127.0.0.1/$KAFKA_PORT"
}

kafka_stop() { stop_pid kafka "$HSC_RUN/kafka/pid"; }

# ---------------------------------------------------------------- postgresql

# PostgreSQL refuses to run as root: as root, the cluster belongs to the
# 'postgres' system user that the Debian package creates.
pg_as() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  local dir=$HSC_RUN/pg
  mkdir -p "$dir" "$HSC_RUN/logs" "$HSC_RUN/secrets"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
  chmod 700 "$HSC_RUN/secrets"
  if [[ ! -f $HSC_RUN/secrets/pg_password ]]; then
    head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$HSC_RUN/secrets/pg_password"
  fi
  if [[ ! -f $dir/data/PG_VERSION ]]; then
    say "creating a private PostgreSQL 15 cluster in $dir/data"
    local pw=$dir/.initpw
    head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pw"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$pw"
    pg_as "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
      --pwfile="$pw" -E UTF8 --locale=C.UTF-8 >"$HSC_RUN/logs/pg-initdb.log" 2>&1 ||
      die "initdb failed (see $HSC_RUN/logs/pg-initdb.log)"
    cp "$pw" "$HSC_RUN/secrets/pg_superuser_password"; rm -f "$pw"
    mkdir -p "$dir/run"; [[ $(id -u) -eq 0 ]] && chown postgres: "$dir/run"
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$dir/run'
max_connections = 200
shared_buffers = 256MB
synchronous_commit = on
fsync = on
logging_collector = off
CONF
  fi
  if pg_as "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    say "postgresql already running on $PG_PORT"
  else
    say "starting postgresql on 127.0.0.1:$PG_PORT"
    pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgresql.log" -w -t 60 start >/dev/null ||
      die "postgresql did not start (see $dir/postgresql.log)"
  fi
  wait_for postgresql 60 pg_isready -q -h 127.0.0.1 -p "$PG_PORT"
  # The application role and database (idempotent).
  local pass; pass=$(cat "$HSC_RUN/secrets/pg_password")
  pg_as psql -q -h "$dir/run" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT 'CREATE ROLE hsc LOGIN CREATEDB' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hsc') \gexec
ALTER ROLE hsc PASSWORD '$pass';
SELECT 'CREATE DATABASE hsc OWNER hsc' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'hsc') \gexec
SQL
}

pg_stop() {
  local dir=$HSC_RUN/pg
  if [[ -f $dir/data/PG_VERSION ]] && pg_as "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    say "postgresql stopped"
  fi
}

# ---------------------------------------------------------------- redis

redis_start() {
  local dir=$HSC_RUN/redis
  mkdir -p "$dir" "$HSC_RUN/logs"
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    say "redis already running on $REDIS_PORT"; return
  fi
  say "starting redis on 127.0.0.1:$REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$dir" --daemonize yes \
    --pidfile "$dir/pid" --logfile "$HSC_RUN/logs/redis.log" --save 60 1000 \
    --appendonly no --protected-mode yes
  wait_for redis 30 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping
}

redis_stop() {
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    say "redis stopped"
  fi
  rm -f "$HSC_RUN/redis/pid"
}

# ---------------------------------------------------------------- env file

write_env() {
  local pass; pass=$(cat "$HSC_RUN/secrets/pg_password")
  cat >"$HSC_RUN/stack.env" <<ENV
# Written by deploy/local/up: the addresses of the local stack. Source it.
export HSC_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export HSC_PG_URL=postgresql://hsc:$pass@127.0.0.1:$PG_PORT/hsc
export HSC_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
export HSC_MILVUS_URL=http://127.0.0.1:$MILVUS_PORT
export HSC_NEO4J_URL=http://127.0.0.1:$NEO4J_HTTP_PORT
export HSC_NEO4J_USER=neo4j
export HSC_NEO4J_PASSWORD=$(cat "$HSC_RUN/secrets/neo4j_password" 2>/dev/null)
export HSC_RUN=$HSC_RUN
export HSC_BIN=$HSC_BUILD
ENV
  chmod 600 "$HSC_RUN/stack.env"
}

# ---------------------------------------------------------------- workers

HSC_WORKERS=(hsc-ingest hsc-enrich hsc-embed-index hsc-query)

# Each worker serves /metrics, /healthz and /readyz on its own port: 9101, 9102, ...
HSC_METRICS_BASE="${HSC_METRICS_BASE:-9101}"

workers_start() {
  mkdir -p "$HSC_RUN/workers" "$HSC_RUN/logs"
  local w port=$HSC_METRICS_BASE
  for w in "${HSC_WORKERS[@]}"; do
    if pid_alive "$HSC_RUN/workers/$w.pid"; then say "$w already running"; port=$((port + 1)); continue; fi
    HSC_METRICS_PORT=$port setsid nohup "$HSC_BUILD/$w" >>"$HSC_RUN/logs/$w.log" 2>&1 </dev/null &
    echo $! >"$HSC_RUN/workers/$w.pid"
    say "started $w (log: $HSC_RUN/logs/$w.log, metrics: http://127.0.0.1:$port/metrics)"
    port=$((port + 1))
  done
}

workers_stop() {
  local w
  for w in "${HSC_WORKERS[@]}"; do stop_pid "$w" "$HSC_RUN/workers/$w.pid"; done
}

# ---------------------------------------------------------------- milvus
# The PyPI package `milvus` is an embedded Milvus 2.3 standalone (etcd and
# local storage inside; REST v1 and gRPC on the proxy port). Every port is
# given explicitly: left alone, it silently moves to another port when one is
# taken. AUTOINDEX is set to the design's HNSW (M=16, efConstruction=200),
# because the v1 REST API cannot choose an index (see docs/milvus.md).

MILVUS_PORT="${MILVUS_PORT:-19530}"
MILVUS_VERSION="${MILVUS_VERSION:-2.3.5}"

milvus_running() { curl -sf "http://127.0.0.1:9091/healthz" >/dev/null 2>&1; }

milvus_start() {
  local dir=$HSC_RUN/milvus
  mkdir -p "$dir/data" "$HSC_RUN/logs"
  if milvus_running; then say "milvus already running on $MILVUS_PORT"; return; fi
  if [[ ! -x $dir/venv/bin/milvus-server ]]; then
    say "installing Milvus $MILVUS_VERSION (PyPI 'milvus') into $dir/venv"
    python3 -m venv "$dir/venv"
    "$dir/venv/bin/pip" install -q "milvus==$MILVUS_VERSION" >"$HSC_RUN/logs/milvus-install.log" 2>&1 ||
      die "pip could not install milvus (see $HSC_RUN/logs/milvus-install.log)"
  fi
  # The launcher moves a taken port elsewhere, and its embedded etcd always
  # wants 2379/2380, so a stale server would make this one wait forever.
  # Every port Milvus binds is fixed and below Linux's ephemeral range
  # (net.ipv4.ip_local_port_range, 32768-60999 by default): a port in that
  # range can be held by any outgoing connection at the moment Milvus starts,
  # and then its root coordinator panics ("bind: address already in use").
  local port
  for port in 2379 2380 9091 "$MILVUS_PORT" 19529 19531 19533 21121 21123 21124 22930 13333; do
    if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
      die "port $port is taken (a stale milvus? see: ss -ltnp 'sport = :$port')"
    fi
  done
  say "starting milvus on 127.0.0.1:$MILVUS_PORT"
  setsid nohup "$dir/venv/bin/python3" "$HSC_ROOT/deploy/local/milvus_launch.py" --data "$dir/data" \
    --proxy-port "$MILVUS_PORT" --proxy-internal-port 19529 --etcd-port 2379 \
    --root-coord-port 19533 --query-coord-port 19531 --query-node-port 21123 \
    --index-coord-port 22930 --index-node-port 21121 --data-coord-port 13333 --data-node-port 21124 \
    --extra-config "autoIndex.params.build='{\"M\": 16, \"efConstruction\": 200, \"index_type\": \"HNSW\", \"metric_type\": \"COSINE\"}'" \
    >>"$HSC_RUN/logs/milvus.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  wait_for milvus 180 milvus_running
  wait_for "milvus REST" 60 curl -sf "http://127.0.0.1:$MILVUS_PORT/v1/vector/collections"
}

milvus_stop() {
  local dir=$HSC_RUN/milvus
  if pid_alive "$dir/pid"; then
    # Stop the server itself first (the launcher would kill it after 1 s).
    local child; child=$(pgrep -P "$(cat "$dir/pid")" -f "milvus run" || true)
    if [[ -n $child ]]; then
      kill "$child" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$child" 2>/dev/null || break; sleep 0.3; done
      kill -9 "$child" 2>/dev/null || true
    fi
  fi
  stop_pid milvus "$dir/pid"
}

# ---------------------------------------------------------------- neo4j
# Neo4j Community 5.26 from Maven Central (see deploy/local/neo4j/pom.xml), run
# through the server's own entry point with a neo4j.conf written here, so its
# data persists under $HSC_RUN/neo4j. Authentication is on; the password is
# generated once into $HSC_RUN/secrets/neo4j_password and set through the
# HTTP API on first start (Neo4j requires the default one to be changed).

NEO4J_HTTP_PORT="${NEO4J_HTTP_PORT:-17474}"
NEO4J_BOLT_PORT="${NEO4J_BOLT_PORT:-17687}"

neo4j_running() { curl -sf "http://127.0.0.1:$NEO4J_HTTP_PORT/" >/dev/null 2>&1; }

neo4j_start() {
  local dir=$HSC_RUN/neo4j
  mkdir -p "$dir/conf" "$dir/data" "$dir/logs" "$HSC_RUN/logs" "$HSC_RUN/secrets"
  if pid_alive "$dir/pid" && neo4j_running; then say "neo4j already running on $NEO4J_HTTP_PORT"; return; fi
  if [[ ! -f $dir/libs/.complete ]]; then
    say "fetching Neo4j Community 5.26 from Maven Central"
    (cd "$HSC_ROOT/deploy/local/neo4j" &&
      mvn -q -B dependency:copy-dependencies -DoutputDirectory="$dir/libs" >"$HSC_RUN/logs/neo4j-fetch.log" 2>&1) ||
      die "mvn could not fetch the Neo4j jars (see $HSC_RUN/logs/neo4j-fetch.log)"
    touch "$dir/libs/.complete"
  fi
  cat >"$dir/conf/neo4j.conf" <<CONF
server.directories.data=$dir/data
server.directories.logs=$dir/logs
server.default_listen_address=127.0.0.1
server.default_advertised_address=127.0.0.1
server.http.enabled=true
server.http.listen_address=127.0.0.1:$NEO4J_HTTP_PORT
server.https.enabled=false
server.bolt.enabled=true
server.bolt.listen_address=127.0.0.1:$NEO4J_BOLT_PORT
server.bolt.advertised_address=127.0.0.1:$NEO4J_BOLT_PORT
# The graph of a 1,000,000-title catalogue (docs/performance.md) is ~1.5 GB on disk:
# 256 MB of page cache made its writes read the store back from disk.
server.memory.pagecache.size=1g
# Benchmarks rewrite the whole graph many times a day: a day of transaction logs
# reached 18 GB on a 254 MB store. Recovery needs only what follows the last checkpoint.
db.tx_log.rotation.retention_policy=1G size
# A statement the client gave up on must not keep running: the server aborts it
# first (neo4j.timeout_ms, 120 s, is longer), so a retry never races the original.
db.transaction.timeout=60s
dbms.memory.transaction.total.max=600m
dbms.security.auth_enabled=true
dbms.usage_report.enabled=false
CONF
  local java; java=$(java17)
  say "starting neo4j on 127.0.0.1:$NEO4J_HTTP_PORT (HTTP), $NEO4J_BOLT_PORT (Bolt)"
  setsid nohup "$java" -Xms"$NEO4J_HEAP" -Xmx"$NEO4J_HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
    -cp "$dir/libs/*" org.neo4j.server.CommunityEntryPoint \
    --home-dir="$dir" --config-dir="$dir/conf" >>"$HSC_RUN/logs/neo4j.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  wait_for neo4j 180 neo4j_running
  local pw=$HSC_RUN/secrets/neo4j_password
  if [[ ! -s $pw ]]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$pw")
  fi
  if ! neo4j_auth_ok "$(cat "$pw")"; then
    say "setting the neo4j password"
    curl -sf -u neo4j:neo4j -H 'Content-Type: application/json' \
      -X POST "http://127.0.0.1:$NEO4J_HTTP_PORT/db/system/tx/commit" \
      -d "{\"statements\":[{\"statement\":\"ALTER CURRENT USER SET PASSWORD FROM 'neo4j' TO \$new\",\"parameters\":{\"new\":\"$(cat "$pw")\"}}]}" \
      >/dev/null || die "could not set the neo4j password"
    neo4j_auth_ok "$(cat "$pw")" || die "neo4j does not accept the generated password"
  fi
}

# neo4j_auth_ok PASSWORD: true if a query as neo4j with it succeeds.
neo4j_auth_ok() {
  curl -sf -u "neo4j:$1" -H 'Content-Type: application/json' \
    -X POST "http://127.0.0.1:$NEO4J_HTTP_PORT/db/neo4j/tx/commit" \
    -d '{"statements":[{"statement":"RETURN 1"}]}' 2>/dev/null | grep -q '"errors":\[\]'
}

neo4j_stop() { stop_pid neo4j "$HSC_RUN/neo4j/pid"; }
