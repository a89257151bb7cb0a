#!/usr/bin/env bash
# Run the whole test suite: unit tests of every crate and the end-to-end tests against a
# real QuestDB (started per test on ephemeral ports), broker and MQTT clients.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v java >/dev/null 2>&1 || { echo "java not found: install a JDK 17+ (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
if ! command -v mosquitto_pub >/dev/null 2>&1; then
  # The third-party client check publishes with Mosquitto's client.
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto-clients >/dev/null
  else
    echo "mosquitto_pub not found: install mosquitto-clients (apt-get install mosquitto-clients)" >&2
    exit 1
  fi
fi
if ! pkg-config --exists openssl 2>/dev/null; then
  # Notifications reach HTTPS endpoints (WeCom, DingTalk, SMS gateways) through the
  # system OpenSSL, so building needs its headers.
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkg-config libssl-dev >/dev/null
  else
    echo "OpenSSL headers not found: install them (apt-get install pkg-config libssl-dev)" >&2
    exit 1
  fi
fi
if ! command -v chromium >/dev/null 2>&1; then
  # The dashboard test drives a headless Chromium; without one it skips (unless
  # STEWARD_REQUIRE_BROWSER is set, as in CI).
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium not found: the dashboard test will skip (apt-get install chromium)" >&2
  fi
fi
if ! command -v stress-ng >/dev/null 2>&1; then
  # The SIGKILL tests saturate every core with stress-ng while they kill the hub, to prove
  # zero loss on a busy machine; without it they run on whatever load there is.
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null
  else
    echo "stress-ng not found: the SIGKILL tests run without saturating the cores (apt-get install stress-ng)" >&2
  fi
fi
if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  # The notification email test sends to a real SMTP server, Debian's aiosmtpd; without it
  # the test skips (unless STEWARD_REQUIRE_SMTP is set, as in CI).
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-aiosmtpd >/dev/null
  else
    echo "aiosmtpd not found: the notification email test will skip (apt-get install python3-aiosmtpd)" >&2
  fi
fi
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  # The cluster-mode tests run a real PostgreSQL from Debian's binaries.
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "initdb not found: install PostgreSQL (apt-get install postgresql)" >&2
    exit 1
  fi
fi
scripts/fetch-questdb.sh
# The cluster-mode tests run a local 3-broker Kafka cluster (KRaft) from these jars.
scripts/fetch-kafka.sh
# The crash and shutdown tests run the hub binary as its own process.
cargo build --locked --bin steward
# Each end-to-end test runs its own QuestDB (a JVM); two at a time suits a 2-core machine.
cargo test --workspace --locked -- --test-threads="${STEWARD_TEST_THREADS:-2}"
