#!/usr/bin/env bash
# The test command (README, .ci/run): on a fresh Debian machine with Rust installed, installs
# whatever the suites need and is missing, then runs every suite with `cargo test --release`.
# Arguments go to cargo test: `./test.sh --test java_client -- --nocapture`.
#
# Installs (each only when missing, so a second run changes nothing and needs no network):
#   - Debian packages for librdkafka (built from source by the rdkafka dev-dependency), kcat,
#     kafka-python's pip, a JDK 17+ with Maven (the Java suites) and Go (the Go suites);
#   - kafka-python, the pure-Python client of tests/kafka_python.rs;
#   - the Java client suite's Maven artifacts (kafka-clients, JUnit, plugins), the Spring
#     Kafka suite's (Spring Boot, Spring Kafka) and the Kafka Streams suite's (kafka-streams,
#     RocksDB) into ~/.m2;
#   - the Go client suites' modules (franz-go, sarama) into Go's module cache (go mod download);
#   - the reference Apache Kafka broker and its CLI tools (tests/reference_kafka/kafka.sh fetch)
#     into ~/.cache/corelog, for tests/java_client.rs and tests/kafka_cli_tools.rs.
# Installing Debian packages needs root (CI runs as root), or sudo.
set -euo pipefail

cd "$(dirname "$0")"

export DEBIAN_FRONTEND=noninteractive
export NEEDRESTART_MODE=a

log() { printf 'test.sh: %s\n' "$*" >&2; }

# kcat: the integration tests run it (librdkafka 2.0.2) as an old, strict client.
# build-essential, pkg-config, zlib1g-dev, python3: rdkafka-sys runs librdkafka's ./configure
# and make (zstd and lz4 are vendored). libssl-dev, cmake and perl are not needed by the
# current feature set (SSL off, mklove build) but are the README's documented list, kept in
# step. python3-pip installs kafka-python below.
packages=(kcat build-essential pkg-config zlib1g-dev libssl-dev cmake python3 python3-pip perl)

java_major() {
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1
}

# The Java suites (kafka-clients 4.x, Kafka's tools, the reference broker) need Java 17+ and
# Maven. A machine that already has them (any vendor, any newer JDK) keeps its own.
if ! command -v java >/dev/null 2>&1 || [[ "$(java_major)" -lt 17 ]]; then
    packages+=(openjdk-17-jdk-headless)
fi
command -v mvn >/dev/null 2>&1 || packages+=(maven)
# Go: the franz-go and Sarama suites. A Go toolchain already on PATH is kept.
command -v go >/dev/null 2>&1 || packages+=(golang-go)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if ((${#missing[@]} > 0)); then
    log "installing: ${missing[*]}"
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || { log "not root and no sudo: install ${missing[*]} by hand"; exit 1; }
        sudo=(sudo --preserve-env=DEBIAN_FRONTEND,NEEDRESTART_MODE)
    fi
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}"
fi

# kafka-python: the second, pure-Python client of tests/kafka_python.rs (consumer groups).
# Those tests fail without it. Debian's system python refuses a plain pip install
# (PEP 668, externally-managed-environment); a pyenv or venv python accepts it.
kafka_python='kafka-python==3.0.12'
if ! python3 -c 'import sys, kafka; sys.exit(not kafka.__version__.startswith("3."))' 2>/dev/null; then
    log "installing: $kafka_python"
    pip_install=(python3 -m pip install --quiet "$kafka_python")
    if ! pip_output=$("${pip_install[@]}" 2>&1); then
        if grep -q externally-managed-environment <<<"$pip_output"; then
            "${pip_install[@]}" --break-system-packages
        else
            echo "$pip_output" >&2
            exit 1
        fi
    fi
fi

# The Java client suite's artifacts, into ~/.m2: compiling the tests resolves kafka-clients,
# JUnit and the compiler plugin, and a Surefire run that selects no test resolves Surefire's
# JUnit Platform provider (which dependency:go-offline misses: Surefire picks it at run time).
# Tried offline first, so that a machine that has them all needs no network.
# The same for the Spring Kafka suite (Spring Boot 4.0.7's parent, Spring Kafka, Jackson) and
# the Kafka Streams suite (kafka-streams 4.4.0 and its RocksDB JNI jar).
for project in clients spring streams; do
    java_suite=(-B -q --no-transfer-progress -Dstyle.color=never -f "tests/java/$project/pom.xml"
        test -Dtest=NoSuchTest -Dsurefire.failIfNoSpecifiedTests=false)
    if ! mvn -o "${java_suite[@]}" >/dev/null 2>&1; then
        log "resolving the Maven artifacts of tests/java/$project into ~/.m2"
        mvn "${java_suite[@]}"
    fi
done

# The Go client suites' modules (franz-go, kadm, sarama; tests/go/go.sum pins them) into Go's
# module cache (~/go/pkg/mod): a no-op, with no network, once they are there. A Go older than
# go.mod's go line (1.26) fetches that toolchain into the same cache (GOTOOLCHAIN=auto).
(cd tests/go && go mod download)

# The reference Kafka broker and Kafka's CLI tools (a no-op once fetched).
tests/reference_kafka/kafka.sh fetch

cargo --version
kcat -V 2>&1 | head -n 2 || true
python3 -c 'import kafka; print("kafka-python", kafka.__version__)'
# Versions for the log only: `head` closing a pipe early must not fail the run (pipefail).
java -version 2>&1 | head -n 1 || true
mvn -B --version 2>/dev/null | head -n 1 | sed "s/\x1b\[[0-9;]*m//g" || true
go version || true

cargo test --release "$@"
