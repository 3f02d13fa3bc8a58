# Sourced by the benchmark scripts (memory.sh, report-vs-analyze.sh, analyze-vs-duckdb.sh) from the
# repo root, after they set RUNS and WAFTUNE; $1 names the scratch directory. Checks the settings,
# installs GNU time when missing, builds waftune unless told not to, and leaves TMP (removed on exit)
# holding a snapshot of the binary in WAFTUNE.
# shellcheck shell=bash

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, got '$RUNS'"

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

if [[ ! -x /usr/bin/time ]]; then
    log "installing GNU time (apt)"
    as_root apt-get update -qq
    as_root apt-get install -y -qq time >/dev/null
fi

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
