# Sourced by the benchmark scripts (memory.sh, report-vs-analyze.sh) from the repo root, after they
# set RUNS and WAFTUNE; $1 names the scratch directory. Checks the settings and GNU time, builds
# waftune unless told not to, and leaves TMP (removed on exit) holding a snapshot of the binary
# in WAFTUNE.
# shellcheck shell=bash

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, got '$RUNS'"
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) is needed: apt-get install time"

if [[ ${BENCH_SKIP_BUILD:-0} != 1 && -z ${BENCH_WAFTUNE:-} ]]; then
    log "cargo build --release"
    cargo build --release --quiet
fi
[[ -x $WAFTUNE ]] || die "$WAFTUNE not found or not executable"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/waftune-$1.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# Snapshot the binary: a concurrent `cargo build` elsewhere must not swap it between runs.
cp "$WAFTUNE" "$TMP/waftune-bin"
WAFTUNE=$TMP/waftune-bin
