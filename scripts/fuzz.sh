#!/usr/bin/env bash
# Build every cargo-fuzz target and run each for N seconds (default 20) on its committed
# corpus, in one process each (the 2-core machines are shared). A crash fails the script
# and leaves the input under fuzz/artifacts/<target>/. New corpus units go to a scratch
# folder, so a run never grows the committed corpus; docs/fuzzing.md says how to
# minimise and commit one.
#
# Needs a nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz --locked`). Usage: scripts/fuzz.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-20}"
shift || true
# Its own target dir: nightly with sanitizer flags shares nothing with the stable build.
target_dir="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/fuzz}"
fuzz=(cargo +nightly fuzz)
opts=(--fuzz-dir fuzz -O --debug-assertions --target-dir "$target_dir")
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir fuzz)
fi

"${fuzz[@]}" build "${opts[@]}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  echo "fuzz: $t for ${secs}s"
  if ! "${fuzz[@]}" run "${opts[@]}" "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $t failed; the input is under fuzz/artifacts/$t/" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" | sed 's/^/  /' || true
done
echo "fuzz: ${#targets[@]} targets ran ${secs}s each without a failure"
