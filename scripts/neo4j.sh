#!/usr/bin/env bash
# Start, stop or check a throw-away Neo4j 5.x (community) on loopback for the kg tests and benchmarks.
#
# Maven Central does not carry the neo4j-community tarball for 5.x, but it does carry the engine itself
# (org.neo4j:neo4j, the same community kernel, Cypher runtime and Bolt server the tarball ships). So we
# fetch those jars with mvn and run them through a tiny launcher that enables the Bolt connector on
# 127.0.0.1 and sets the initial password. Drivers cannot tell the difference: it is a real Neo4j.
#
#   scripts/neo4j.sh start    fetch (first time), start, wait until Bolt accepts logins (bounded)
#   scripts/neo4j.sh stop     stop it (SIGTERM, then SIGKILL after a grace period)
#   scripts/neo4j.sh status   exit 0 when running and accepting connections, 1 otherwise
#   scripts/neo4j.sh wipe     stop and delete the database files (not the downloaded jars)
#
# Environment (all optional):
#   NEO4J_VERSION        engine version from Maven Central (default 5.26.0, the 5.x LTS line)
#   NEO4J_TEST_PORT      Bolt port on 127.0.0.1 (default 7687)
#   NEO4J_TEST_PASSWORD  password for user neo4j (default agentd-test-password; Neo4j wants >= 8 chars)
#   NEO4J_CACHE          where jars, data and logs live (default <repo>/.cache/neo4j, git-ignored)
#   NEO4J_HEAP           JVM heap (default 1g)
#   NEO4J_START_TIMEOUT  seconds to wait for Bolt (default 240: a JVM start on a busy 2-core machine is slow)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${NEO4J_VERSION:-5.26.0}"
PORT="${NEO4J_TEST_PORT:-7687}"
PASSWORD="${NEO4J_TEST_PASSWORD:-agentd-test-password}"
CACHE="${NEO4J_CACHE:-$ROOT/.cache/neo4j}"
HEAP="${NEO4J_HEAP:-1g}"
TIMEOUT="${NEO4J_START_TIMEOUT:-240}"
LIB="$CACHE/lib-$VERSION"
CLASSES="$CACHE/classes-$VERSION"
DATA="$CACHE/data-$PORT"
PIDFILE="$CACHE/neo4j-$PORT.pid"
LOG="$CACHE/neo4j-$PORT.log"

log() { echo "neo4j.sh: $*" >&2; }

running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# Bolt answers once the port accepts TCP and the launcher has printed its ready line (the password is
# set before that line, so a login can no longer hit the "change password" state).
bolt_ready() {
  grep -q '^agentd-neo4j ready' "$LOG" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

fetch() {
  if [[ -f "$LIB/.complete" ]]; then return 0; fi
  command -v mvn >/dev/null || { log "mvn not found (apt-get install maven)"; exit 1; }
  command -v javac >/dev/null || { log "javac not found (apt-get install openjdk-17-jdk-headless)"; exit 1; }
  log "fetching org.neo4j:neo4j:$VERSION and its dependencies from Maven Central (first run only)"
  mkdir -p "$CACHE/pom-$VERSION"
  cat >"$CACHE/pom-$VERSION/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>agentd.test</groupId><artifactId>neo4j-test-server</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.neo4j</groupId><artifactId>neo4j</artifactId><version>$VERSION</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$LIB"
  (cd "$CACHE/pom-$VERSION" && mvn -B -q dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB") >&2
  touch "$LIB/.complete"
}

compile() {
  mkdir -p "$CLASSES"
  # Written to a temporary file first so an edited launcher is recompiled, an unchanged one is not.
  cat >"$CLASSES/AgentdNeo4j.java.new" <<'JAVA'
import java.nio.file.Path;
import java.util.Map;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.QueryExecutionException;

/** A Neo4j DBMS with the Bolt connector on loopback, auth on, and the neo4j user's password set. */
public final class AgentdNeo4j {
  public static void main(String[] args) {
    try {
      run(Path.of(args[0]), Integer.parseInt(args[1]), System.getenv("AGENTD_NEO4J_PASSWORD"));
    } catch (Throwable t) {
      t.printStackTrace();
      System.exit(1);
    }
  }

  private static void run(Path home, int port, String password) throws InterruptedException {
    DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
        .setConfig(BoltConnector.enabled, true)
        .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
        .setConfig(GraphDatabaseSettings.auth_enabled, true)
        // No phoning home (this machine reaches no one but registries), and a page cache sized for tests.
        .setConfig(GraphDatabaseSettings.udc_enabled, false)
        .setConfig(GraphDatabaseSettings.pagecache_memory, 256L * 1024 * 1024)
        .build();
    Runtime.getRuntime().addShutdownHook(new Thread(dbms::shutdown));
    try {
      dbms.database("system").executeTransactionally(
          "ALTER USER neo4j SET PASSWORD $p CHANGE NOT REQUIRED", Map.of("p", password));
    } catch (QueryExecutionException e) {
      // A restart over existing data: the password is already this one (Neo4j refuses to "change" it).
      if (!String.valueOf(e.getMessage()).contains("cannot be the same")) throw e;
    }
    System.out.println("agentd-neo4j ready on 127.0.0.1:" + port);
    Thread.currentThread().join();
  }
}
JAVA
  if [[ -f "$CLASSES/AgentdNeo4j.class" ]] && cmp -s "$CLASSES/AgentdNeo4j.java.new" "$CLASSES/AgentdNeo4j.java"; then
    rm -f "$CLASSES/AgentdNeo4j.java.new"
    return 0
  fi
  mv "$CLASSES/AgentdNeo4j.java.new" "$CLASSES/AgentdNeo4j.java"
  javac -cp "$LIB/*" -d "$CLASSES" "$CLASSES/AgentdNeo4j.java"
  javac -cp "$LIB/*" -d "$CLASSES" "$CLASSES/AgentdNeo4j.java"
}

start() {
  if pid="$(running_pid)"; then
    if bolt_ready; then log "already running (pid $pid) on bolt://127.0.0.1:$PORT"; return 0; fi
  else
    # Someone else on the port would make the tests talk to a stranger's database.
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      log "port $PORT is taken by another process; set NEO4J_TEST_PORT"; exit 1
    fi
    fetch
    compile
    mkdir -p "$DATA"
    : >"$LOG"
    AGENTD_NEO4J_PASSWORD="$PASSWORD" nohup java -Xms256m -Xmx"$HEAP" -XX:+UseG1GC \
      -cp "$CLASSES:$LIB/*" AgentdNeo4j "$DATA" "$PORT" >>"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
    log "started pid $pid, waiting for bolt://127.0.0.1:$PORT (at most ${TIMEOUT}s)"
  fi
  local deadline=$((SECONDS + TIMEOUT))
  until bolt_ready; do
    if ! kill -0 "$pid" 2>/dev/null; then log "neo4j exited during start; last log lines:"; tail -20 "$LOG" >&2; rm -f "$PIDFILE"; exit 1; fi
    if ((SECONDS >= deadline)); then log "not ready after ${TIMEOUT}s; stopping it"; stop; tail -20 "$LOG" >&2; exit 1; fi
    sleep 0.5
  done
  log "ready: bolt://127.0.0.1:$PORT user neo4j (pid $pid)"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then log "not running"; rm -f "$PIDFILE"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then log "still alive after 30s, killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$PIDFILE"
  log "stopped (pid $pid)"
}

status() {
  local pid
  if pid="$(running_pid)" && bolt_ready; then echo "running pid $pid bolt://127.0.0.1:$PORT"; return 0; fi
  echo "not running"; return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  wipe) stop; rm -rf "$DATA" "$LOG"; log "wiped $DATA" ;;
  *) echo "usage: $0 start|stop|status|wipe" >&2; exit 2 ;;
esac
