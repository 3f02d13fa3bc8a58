#!/usr/bin/env bash
# Long fuzzing run (not part of the default test time): the mutation fuzzer of tests/it/hostile_input.rs
# with many cases, in a release build. Prints the inputs tried per property and any failure, with
# the shrunk input that shows it. See docs/input-formats.md.
#
#   benches/fuzz.sh [CASES]     cases per property (default 200000; `cargo test` runs 64)
#   FUZZ_RELEASE=0              use the debug build (no release build of the tests; ~5x slower per case)
#
# Exit status: 0 when nothing failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CASES=${1:-200000}
[[ $CASES =~ ^[1-9][0-9]*$ ]] || { echo "error: CASES must be a positive integer, got '$CASES'" >&2; exit 1; }
start=$SECONDS
status=0
profile=(--release)
[[ ${FUZZ_RELEASE:-1} == 0 ]] && profile=()
WAFTUNE_FUZZ_CASES=$CASES cargo test "${profile[@]}" --test it hostile_input::fuzz -- --nocapture --test-threads 2 2>&1 |
    grep -E '^fuzz |^test result|panicked|minimal failing input' || status=$?
echo "fuzz: $CASES cases per property in $((SECONDS - start)) s"
# grep's status 1 (no match) is not a failure of the run; cargo's is carried by the summary line.
exit $((status > 1 ? status : 0))
