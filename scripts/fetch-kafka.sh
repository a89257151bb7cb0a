#!/usr/bin/env bash
# Fetch the pinned Apache Kafka broker (kafka_2.13 and its runtime dependencies) from Maven
# Central into ~/.cache/steward/kafka-VERSION/libs (once), with a log4j2 configuration that
# sends broker logs to a file. Cluster-mode tests, benchmarks and the cluster demo run a
# local KRaft cluster from these jars (steward-testbed).
set -euo pipefail
VERSION="${KAFKA_VERSION:-4.1.1}"
# The log4j-core version kafka_2.13 itself depends on, for the SLF4J binding below.
LOG4J_VERSION="${KAFKA_LOG4J_VERSION:-2.24.3}"
DIR="$HOME/.cache/steward"
HOME_DIR="$DIR/kafka-$VERSION"
if [[ -f "$HOME_DIR/libs/kafka_2.13-$VERSION.jar" && -f "$HOME_DIR/log4j2.yaml" ]]; then
  exit 0
fi
command -v mvn >/dev/null 2>&1 || { echo "mvn not found: install Maven (apt-get install maven)" >&2; exit 1; }
mkdir -p "$DIR"
# Stage everything, then rename: an interrupted fetch leaves a fetch-* directory, never a
# kafka-VERSION directory that looks complete.
STAGE="$(mktemp -d "$DIR/fetch-kafka-XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
cat >"$STAGE/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>steward</groupId>
  <artifactId>fetch-kafka</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$VERSION</version>
    </dependency>
    <!-- Kafka logs through SLF4J 1.7 and ships no binding on Maven Central: without this
         one every broker log line goes to SLF4J's no-op logger. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
      <exclusions>
        <exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion>
      </exclusions>
    </dependency>
  </dependencies>
</project>
POM
mkdir -p "$STAGE/kafka/libs"
mvn -q -B -f "$STAGE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
  "-DoutputDirectory=$STAGE/kafka/libs"
[[ -f "$STAGE/kafka/libs/kafka_2.13-$VERSION.jar" ]] || { echo "fetch-kafka: kafka_2.13-$VERSION.jar missing after mvn" >&2; exit 1; }
# For brokers run by hand (-Dlog4j2.configurationFile=...): log to kafka.log in
# -Dkafka.logs.dir, not stdout. steward-testbed writes the same configuration into each
# cluster's directory, so it also runs from jars elsewhere (STEWARD_KAFKA_LIBS).
cat >"$STAGE/kafka/log4j2.yaml" <<'LOG'
Configuration:
  Appenders:
    File:
      name: FILE
      fileName: "${sys:kafka.logs.dir:-.}/kafka.log"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: FILE
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: INFO
      - name: state.change.logger
        level: WARN
LOG
rm -rf "$HOME_DIR"
mv "$STAGE/kafka" "$HOME_DIR"
echo "fetched Kafka $VERSION into $HOME_DIR ($(ls "$HOME_DIR/libs" | wc -l) jars)"
