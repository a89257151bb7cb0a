#!/usr/bin/env bash
# Run the whole test suite: unit tests of every crate and the end-to-end tests against a
# real QuestDB (started per test on ephemeral ports), broker and MQTT clients.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v java >/dev/null 2>&1 || { echo "java not found: install a JDK 17+ (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
scripts/fetch-questdb.sh
# Each end-to-end test runs its own QuestDB (a JVM); two at a time suits a 2-core machine.
cargo test --workspace --locked -- --test-threads="${STEWARD_TEST_THREADS:-2}"
