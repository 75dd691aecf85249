#!/usr/bin/env bash
# A reference Apache Kafka 4.x broker for tests and benchmarks (issue 13).
#
# Resolves the broker and Kafka's own command-line tools from Maven Central (kafka_2.13 and
# kafka-tools, with every runtime dependency) into a cache, then runs one single-node KRaft
# broker (process.roles=broker,controller) on free loopback ports, so that every test
# expectation can be proven on real Kafka before it is asserted against corelog, and so that
# `corelog bench --compare embedded <kafka address>` has something to compare with.
#
#   kafka.sh fetch                       resolve the jars into $KAFKA_HOME/libs (no-op when there)
#   kafka.sh start <data-dir>            format (first time) and start a broker; prints
#                                        BOOTSTRAP=127.0.0.1:<port> and PID=<pid>, also written
#                                        to <data-dir>/kafka.env
#   kafka.sh stop <data-dir>             stop the broker that `start` recorded in <data-dir>
#   kafka.sh tool <name|class> args...   run one of Kafka's CLI tools (kafka-topics,
#                                        kafka-console-producer, ...) with `java -cp`
#
# Environment:
#   CORELOG_KAFKA_VERSION   one version to use; unset: 4.4.0, falling back to 4.3.1
#   CORELOG_KAFKA_HOME      cache dir; default ~/.cache/corelog/kafka-<version>
#   CORELOG_KAFKA_JAVA      java binary (17+); default: java on PATH, else a newer JDK
#   CORELOG_KAFKA_HEAP_OPTS broker heap; default -Xmx512m -Xms512m
#   CORELOG_KAFKA_CPUS      CPU list for the broker's JVM (taskset -c), e.g. 0 to give it the
#                           same single core as corelog's embedded broker; default: all CPUs
#   CORELOG_KAFKA_TOOL_HEAP_OPTS  tools' heap; default -Xmx256m
#   CORELOG_KAFKA_START_TIMEOUT_S how long `start` waits for the broker; default 60
#   CORELOG_KAFKA_STOP_TIMEOUT_S  how long `stop` waits after TERM before KILL; default 30
#
# Everything but the two result lines of `start` goes to stderr.
set -euo pipefail

readonly DEFAULT_VERSIONS=(4.4.0 4.3.1)
# The Maven plugin is pinned so that a second run needs nothing new from the registry.
readonly DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
readonly BROKER_MAIN=kafka.Kafka
readonly STORAGE_TOOL_MAIN=kafka.tools.StorageTool

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

candidate_versions() {
    if [[ -n "${CORELOG_KAFKA_VERSION:-}" ]]; then
        echo "$CORELOG_KAFKA_VERSION"
    else
        echo "${DEFAULT_VERSIONS[@]}"
    fi
}

home_for() { echo "${CORELOG_KAFKA_HOME:-$HOME/.cache/corelog/kafka-$1}"; }

# A cache dir is usable once `fetch` finished it: libs/.complete names the version inside.
complete_version_in() {
    local home=$1
    [[ -f "$home/libs/.complete" ]] && cat "$home/libs/.complete"
}

# Sets KAFKA_HOME and KAFKA_VERSION to the first candidate version already fetched.
find_fetched() {
    local version home found
    for version in $(candidate_versions); do
        home=$(home_for "$version")
        found=$(complete_version_in "$home" || true)
        if [[ "$found" == "$version" ]]; then
            KAFKA_HOME=$home
            KAFKA_VERSION=$version
            return 0
        fi
    done
    return 1
}

java_major() {
    "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1
}

pick_java() {
    local candidate major
    for candidate in "${CORELOG_KAFKA_JAVA:-}" "${JAVA_HOME:+$JAVA_HOME/bin/java}" java \
        /usr/lib/jvm/temurin-25-jdk-amd64/bin/java; do
        [[ -n "$candidate" ]] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        major=$(java_major "$candidate")
        # Kafka 4.x brokers and tools need Java 17 or newer.
        if [[ -n "$major" && "$major" -ge 17 ]]; then
            JAVA=$candidate
            return 0
        fi
    done
    die "no Java 17+ found (set CORELOG_KAFKA_JAVA)"
}

write_pom() {
    local version=$1 pom=$2
    cat >"$pom" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>corelog.reference</groupId>
  <artifactId>kafka-libs</artifactId>
  <version>$version</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- the broker (kafka.Kafka, kafka.tools.StorageTool) -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$version</version>
    </dependency>
    <!-- the command-line tools (org.apache.kafka.tools.*) -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$version</version>
    </dependency>
  </dependencies>
</project>
EOF
}

# Runs Maven on $home/pom.xml with its output in $home/maven.log, shown only on failure.
# The local repository stays ~/.m2, so a second resolution needs no network.
maven() {
    local home=$1
    shift
    if ! mvn -B -f "$home/pom.xml" "$@" >>"$home/maven.log" 2>&1; then
        log "mvn $* failed; last lines of $home/maven.log:"
        tail -n 30 "$home/maven.log" >&2
        return 1
    fi
}

# Resolves one version into $home/libs; returns non-zero if Maven cannot resolve it.
fetch_version() {
    local version=$1 home=$2
    local staging="$home/libs.partial"
    rm -rf "$staging" "$home/maven.log"
    mkdir -p "$staging"
    write_pom "$version" "$home/pom.xml"
    log "resolving Kafka $version with Maven into $home/libs"
    if ! maven "$home" "$DEPENDENCY_PLUGIN:copy-dependencies" \
        -DincludeScope=runtime -DoutputDirectory="$staging"; then
        return 1
    fi
    # The published poms bring log4j-core but no SLF4J binding (the release tarball adds
    # one), so the broker's logs would go nowhere: add the binding of the same log4j version.
    local cores=("$staging"/log4j-core-*.jar) log4j_version
    [[ -f "${cores[0]}" ]] || { log "no log4j-core among the dependencies"; return 1; }
    log4j_version=${cores[0]##*/log4j-core-}
    log4j_version=${log4j_version%.jar}
    if ! maven "$home" "$DEPENDENCY_PLUGIN:copy" \
        -Dartifact="org.apache.logging.log4j:log4j-slf4j-impl:$log4j_version" \
        -DoutputDirectory="$staging"; then
        return 1
    fi
    local jar
    for jar in "kafka_2.13-$version.jar" "kafka-tools-$version.jar"; do
        [[ -f "$staging/$jar" ]] || { log "missing $jar after resolution"; return 1; }
    done
    rm -rf "$home/libs"
    mv "$staging" "$home/libs"
    echo "$version" >"$home/libs/.complete"
    write_log_configs "$home"
    local jars=("$home"/libs/*.jar)
    log "Kafka $version: ${#jars[@]} jars in $home/libs"
}

write_log_configs() {
    local home=$1
    mkdir -p "$home/config"
    # The broker logs INFO to stdout (redirected to <data-dir>/kafka.log by `start`).
    cat >"$home/config/broker-log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
    # The tools log WARN to stderr only, as Kafka's tools-log4j2.yaml does, so that their
    # stdout carries only their real output.
    cat >"$home/config/tools-log4j2.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
EOF
}

cmd_fetch() {
    if find_fetched; then
        log "Kafka $KAFKA_VERSION already in $KAFKA_HOME/libs"
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found (apt-get install maven)"
    local version home
    for version in $(candidate_versions); do
        home=$(home_for "$version")
        mkdir -p "$home"
        if fetch_version "$version" "$home"; then
            KAFKA_HOME=$home
            KAFKA_VERSION=$version
            return 0
        fi
        rm -rf "$home/libs.partial"
        log "Kafka $version did not resolve"
    done
    die "no Kafka version resolved (tried: $(candidate_versions))"
}

ensure_fetched() {
    find_fetched || cmd_fetch
    pick_java
}

# Two distinct free loopback ports, both held open while the second is chosen.
free_ports() {
    python3 - <<'EOF'
import socket
held = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
}

# A KRaft cluster id: 16 random bytes in URL-safe base64 without padding and without '-'
# (Kafka 4.x's Uuid.randomUuid rule, so that an id never reads as a command-line flag).
random_cluster_id() {
    python3 - <<'EOF'
import base64, os
while True:
    text = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if "-" not in text:
        print(text)
        break
EOF
}

write_server_properties() {
    local data_dir=$1 broker_port=$2 controller_port=$3
    cat >"$data_dir/server.properties" <<EOF
# Written by tests/reference_kafka/kafka.sh: one node that is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$broker_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$broker_port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data_dir/logs
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

property() { sed -n "s/^$1=//p" "$2" | tail -n 1; }

# The PID recorded in <data-dir>/kafka.env, if that process is still our broker.
running_pid() {
    local data_dir=$1 pid
    [[ -f "$data_dir/kafka.env" ]] || return 1
    pid=$(property PID "$data_dir/kafka.env")
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
    # The PID may have been reused: it must be a broker started on this data dir.
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$data_dir/server.properties" || return 1
    echo "$pid"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The java command line of a Kafka tool, in the array TOOL_JAVA.
set_tool_java() {
    # shellcheck disable=SC2206
    TOOL_JAVA=("$JAVA" ${CORELOG_KAFKA_TOOL_HEAP_OPTS:--Xmx256m}
        -Dlog4j2.configurationFile="$KAFKA_HOME/config/tools-log4j2.properties"
        -cp "$KAFKA_HOME/libs/*")
}

# Metadata answered: the broker is past start-up and serves clients.
metadata_works() {
    local data_dir=$1 bootstrap=$2
    set_tool_java
    timeout 30 "${TOOL_JAVA[@]}" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$bootstrap" --command-config "$data_dir/readiness-client.properties" \
        --list >/dev/null 2>>"$data_dir/readiness.log"
}

fail_start() {
    local data_dir=$1 pid=$2 reason=$3
    log "$reason"
    if [[ -f "$data_dir/kafka.log" ]]; then
        # A failing broker logs its cause first, then pages of errors from its shut-down:
        # show the first errors of this run, then the end of the log.
        log "first errors of this run in $data_dir/kafka.log:"
        tail -n +"$((LOG_LINES_BEFORE_START + 1))" "$data_dir/kafka.log" |
            grep -E '(ERROR|FATAL|Exception|Caused by)' | head -n 8 >&2 || true
        log "last lines of $data_dir/kafka.log:"
        tail -n 20 "$data_dir/kafka.log" >&2
    fi
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    exit 1
}

cmd_start() {
    [[ $# -eq 1 ]] || usage
    mkdir -p "$1"
    local data_dir pid
    data_dir=$(cd "$1" && pwd)
    ensure_fetched
    if pid=$(running_pid "$data_dir"); then
        die "a broker already runs on $data_dir (PID $pid); stop it first"
    fi

    local broker_port controller_port
    if [[ -f "$data_dir/server.properties" && -f "$data_dir/logs/meta.properties" ]]; then
        # A restart keeps the ports: the controller's address is part of the formatted quorum.
        broker_port=$(property listeners "$data_dir/server.properties" | sed 's/.*PLAINTEXT:\/\/127.0.0.1:\([0-9]*\).*/\1/')
        controller_port=$(property controller.quorum.bootstrap.servers "$data_dir/server.properties")
        controller_port=${controller_port##*:}
        log "restarting the broker formatted in $data_dir"
    else
        read -r broker_port controller_port < <(free_ports)
        write_server_properties "$data_dir" "$broker_port" "$controller_port"
        local cluster_id
        cluster_id=$(random_cluster_id)
        log "formatting $data_dir/logs (cluster id $cluster_id)"
        # --standalone: this node is the whole dynamic controller quorum (KIP-853).
        set_tool_java
        if ! "${TOOL_JAVA[@]}" "$STORAGE_TOOL_MAIN" format --standalone \
            --cluster-id "$cluster_id" --config "$data_dir/server.properties" \
            >"$data_dir/format.log" 2>&1; then
            cat "$data_dir/format.log" >&2
            die "formatting storage failed"
        fi
    fi
    printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=10000\n' \
        >"$data_dir/readiness-client.properties"

    LOG_LINES_BEFORE_START=0
    [[ -f "$data_dir/kafka.log" ]] && LOG_LINES_BEFORE_START=$(wc -l <"$data_dir/kafka.log")
    local bootstrap="127.0.0.1:$broker_port"
    log "starting Kafka $KAFKA_VERSION on $bootstrap (controller 127.0.0.1:$controller_port)"
    # Benchmarks pin the whole JVM (request handlers, network threads, GC, JIT) to the CPUs
    # corelog's broker gets, so both brokers are compared on the same cores; the JVM then
    # sizes its GC and compiler thread pools to those CPUs, as it would in a container.
    local pin=()
    if [[ -n "${CORELOG_KAFKA_CPUS:-}" ]]; then
        command -v taskset >/dev/null 2>&1 || die "CORELOG_KAFKA_CPUS needs taskset (util-linux)"
        pin=(taskset -c "$CORELOG_KAFKA_CPUS")
        log "pinning the broker to CPUs $CORELOG_KAFKA_CPUS"
    fi
    # Kafka's own JVM flags (kafka-run-class.sh) with a small heap for a 2-core test machine.
    # shellcheck disable=SC2086
    nohup "${pin[@]}" "$JAVA" ${CORELOG_KAFKA_HEAP_OPTS:--Xmx512m -Xms512m} \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_HOME/config/broker-log4j2.properties" \
        -Dkafka.logs.dir="$data_dir" \
        -cp "$KAFKA_HOME/libs/*" "$BROKER_MAIN" "$data_dir/server.properties" \
        </dev/null >>"$data_dir/kafka.log" 2>&1 &
    pid=$!

    local timeout_s=${CORELOG_KAFKA_START_TIMEOUT_S:-60}
    local deadline=$((SECONDS + timeout_s))
    until port_open "$broker_port"; do
        kill -0 "$pid" 2>/dev/null || fail_start "$data_dir" "" "the broker exited during start-up"
        ((SECONDS < deadline)) || fail_start "$data_dir" "$pid" "port $broker_port not open after ${timeout_s}s"
        sleep 0.2
    done
    until metadata_works "$data_dir" "$bootstrap"; do
        kill -0 "$pid" 2>/dev/null || fail_start "$data_dir" "" "the broker exited during start-up"
        ((SECONDS < deadline)) || fail_start "$data_dir" "$pid" "no metadata answer after ${timeout_s}s (see $data_dir/readiness.log)"
        sleep 0.5
    done

    printf 'BOOTSTRAP=%s\nPID=%s\nKAFKA_VERSION=%s\n' "$bootstrap" "$pid" "$KAFKA_VERSION" \
        >"$data_dir/kafka.env"
    log "Kafka $KAFKA_VERSION ready after ${SECONDS}s"
    printf 'BOOTSTRAP=%s\nPID=%s\n' "$bootstrap" "$pid"
}

cmd_stop() {
    [[ $# -eq 1 ]] || usage
    [[ -d "$1" ]] || die "no such data dir: $1"
    local data_dir pid
    data_dir=$(cd "$1" && pwd)
    if ! pid=$(running_pid "$data_dir"); then
        log "no broker running on $data_dir"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local timeout_s=${CORELOG_KAFKA_STOP_TIMEOUT_S:-30}
    local deadline=$((SECONDS + timeout_s))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "PID $pid still alive ${timeout_s}s after TERM: KILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped PID $pid"
}

# Kafka's script names (bin/*.sh of the 4.x tarball) to their main classes.
tool_class() {
    case "${1%.sh}" in
        kafka-topics) echo org.apache.kafka.tools.TopicCommand ;;
        kafka-console-producer) echo org.apache.kafka.tools.ConsoleProducer ;;
        kafka-console-consumer) echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
        kafka-console-share-consumer) echo org.apache.kafka.tools.consumer.ConsoleShareConsumer ;;
        kafka-consumer-groups) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
        kafka-share-groups) echo org.apache.kafka.tools.consumer.group.ShareGroupCommand ;;
        kafka-streams-groups) echo org.apache.kafka.tools.streams.StreamsGroupCommand ;;
        kafka-groups) echo org.apache.kafka.tools.GroupsCommand ;;
        kafka-configs) echo org.apache.kafka.tools.ConfigCommand ;;
        kafka-acls) echo org.apache.kafka.tools.AclCommand ;;
        kafka-broker-api-versions) echo org.apache.kafka.tools.BrokerApiVersionsCommand ;;
        kafka-cluster) echo org.apache.kafka.tools.ClusterTool ;;
        kafka-metadata-quorum) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
        kafka-features) echo org.apache.kafka.tools.FeatureCommand ;;
        kafka-get-offsets) echo org.apache.kafka.tools.GetOffsetShell ;;
        kafka-delete-records) echo org.apache.kafka.tools.DeleteRecordsCommand ;;
        kafka-leader-election) echo org.apache.kafka.tools.LeaderElectionCommand ;;
        kafka-reassign-partitions) echo org.apache.kafka.tools.reassign.ReassignPartitionsCommand ;;
        kafka-log-dirs) echo org.apache.kafka.tools.LogDirsCommand ;;
        kafka-dump-log) echo org.apache.kafka.tools.DumpLogSegments ;;
        kafka-transactions) echo org.apache.kafka.tools.TransactionsCommand ;;
        kafka-client-metrics) echo org.apache.kafka.tools.ClientMetricsCommand ;;
        kafka-delegation-tokens) echo org.apache.kafka.tools.DelegationTokenCommand ;;
        kafka-producer-perf-test) echo org.apache.kafka.tools.ProducerPerformance ;;
        kafka-consumer-perf-test) echo org.apache.kafka.tools.ConsumerPerformance ;;
        kafka-share-consumer-perf-test) echo org.apache.kafka.tools.ShareConsumerPerformance ;;
        kafka-e2e-latency) echo org.apache.kafka.tools.EndToEndLatency ;;
        kafka-verifiable-producer) echo org.apache.kafka.tools.VerifiableProducer ;;
        kafka-verifiable-consumer) echo org.apache.kafka.tools.VerifiableConsumer ;;
        kafka-verifiable-share-consumer) echo org.apache.kafka.tools.VerifiableShareConsumer ;;
        kafka-streams-application-reset) echo org.apache.kafka.tools.StreamsResetter ;;
        kafka-replica-verification) echo org.apache.kafka.tools.ReplicaVerificationTool ;;
        kafka-jmx) echo org.apache.kafka.tools.JmxTool ;;
        kafka-storage) echo "$STORAGE_TOOL_MAIN" ;;
        kafka-server-start) echo "$BROKER_MAIN" ;;
        *.*) echo "$1" ;; # a fully qualified class name
        *) return 1 ;;
    esac
}

cmd_tool() {
    [[ $# -ge 1 ]] || usage
    local class
    class=$(tool_class "$1") || die "unknown tool '$1': give a kafka-* script name or a main class"
    shift
    ensure_fetched
    set_tool_java
    # exec: the tool's stdin, stdout, stderr and exit code are the caller's.
    exec "${TOOL_JAVA[@]}" "$class" "$@"
}

main() {
    [[ $# -ge 1 ]] || usage
    local command=$1
    shift
    case "$command" in
        fetch) [[ $# -eq 0 ]] || usage; cmd_fetch ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        tool) cmd_tool "$@" ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
