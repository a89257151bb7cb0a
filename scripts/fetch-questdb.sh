#!/usr/bin/env bash
# Fetch the pinned QuestDB jar from Maven Central into ~/.cache/steward (once).
set -euo pipefail
VERSION="${QUESTDB_VERSION:-9.3.4}"
DIR="$HOME/.cache/steward"
JAR="$DIR/questdb-$VERSION.jar"
if [[ -f "$JAR" ]]; then
  exit 0
fi
command -v mvn >/dev/null 2>&1 || { echo "mvn not found: install Maven (apt-get install maven)" >&2; exit 1; }
mkdir -p "$DIR"
STAGE="$(mktemp -d "$DIR/fetch-XXXXXX")"
mvn -q -B dependency:copy "-Dartifact=org.questdb:questdb:$VERSION" "-DoutputDirectory=$STAGE"
mv "$STAGE/questdb-$VERSION.jar" "$JAR"
rmdir "$STAGE"
echo "fetched $JAR"
