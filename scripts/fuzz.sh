#!/usr/bin/env bash
# Build every cargo-fuzz target, replay each one's regression inputs, then fuzz each for N
# seconds (default 20), one process at a time (the 2-core machines are shared). A crash
# fails the script and leaves the input under fuzz/artifacts/<target>/.
#
# The repository holds only seeds (fuzz/seeds/<target>/) and inputs that once found a bug
# (fuzz/regressions/<target>/). The corpus a run grows lives outside git, in
# $FUZZ_CORPUS_DIR/<target> (default ~/.cache/steward/fuzz-corpus); seeds and regressions
# are copied into it before every run, so a cold cache starts from them and a warm one
# keeps what earlier runs found. docs/fuzzing.md says more.
#
# Needs a nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz --locked`). Usage: scripts/fuzz.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-20}"
shift || true
# Its own target dir: nightly with sanitizer flags shares nothing with the stable build.
target_dir="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/fuzz}"
corpus_root="${FUZZ_CORPUS_DIR:-$HOME/.cache/steward/fuzz-corpus}"
# A corpus that grew past this many files is minimised (cargo fuzz cmin) after its run.
corpus_max="${FUZZ_CORPUS_MAX:-5000}"
fuzz=(cargo +nightly fuzz)
opts=(--fuzz-dir fuzz -O --debug-assertions --target-dir "$target_dir")
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir fuzz)
fi

"${fuzz[@]}" build "${opts[@]}"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
fail() {
  tail -n 60 "$2" >&2
  echo "fuzz: $1" >&2
  exit 1
}
for t in "${targets[@]}"; do
  log="$logs/$t.log"
  # Inputs that once found a bug run every time, whatever the time budget: each file once.
  mapfile -t regressions < <(find "fuzz/regressions/$t" -type f 2>/dev/null | sort)
  if ((${#regressions[@]})); then
    echo "fuzz: $t replays ${#regressions[@]} regression inputs"
    "${fuzz[@]}" run "${opts[@]}" "$t" "${regressions[@]}" >"$log" 2>&1 ||
      fail "$t failed on a regression input (fuzz/regressions/$t/); the input is under fuzz/artifacts/$t/" "$log"
  fi

  corpus="$corpus_root/$t"
  mkdir -p "$corpus"
  for dir in "fuzz/seeds/$t" "fuzz/regressions/$t"; do
    if [[ -d "$dir" ]]; then
      cp -pR "$dir/." "$corpus/"
    fi
  done
  echo "fuzz: $t for ${secs}s on $corpus ($(find "$corpus" -type f | wc -l) files)"
  "${fuzz[@]}" run "${opts[@]}" "$t" "$corpus" -- \
    -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1 ||
    fail "$t failed; the input is under fuzz/artifacts/$t/" "$log"
  grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" | sed 's/^/  /' || true

  if (($(find "$corpus" -type f | wc -l) > corpus_max)); then
    echo "fuzz: minimising $corpus"
    "${fuzz[@]}" cmin "${opts[@]}" "$t" "$corpus" >"$log" 2>&1 ||
      fail "cmin of $t failed" "$log"
  fi
done
echo "fuzz: ${#targets[@]} targets ran ${secs}s each without a failure"
