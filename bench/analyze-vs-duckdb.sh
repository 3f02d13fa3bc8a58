#!/usr/bin/env bash
# Benchmark: `waftune analyze` (full analysis) vs DuckDB computing only per-client peak 5-minute
# counts with an explicit two-column schema, over the same generated day of WAF logs.
# See docs/benchmarks.md. Run from anywhere; paths are relative to the repo root.
#
# Environment (all optional):
#   BENCH_DATA        cache dir for the generated day            (default: bench-data/day)
#   BENCH_RUNS        timed runs of each, alternating             (default: 5)
#   BENCH_VENV        Python venv holding PyPI duckdb-cli         (default: bench/.venv)
#   BENCH_DUCKDB_PIP  pip requirement for the DuckDB CLI          (default: duckdb-cli==1.5.6)
#   BENCH_SKIP_BUILD  set to 1 to use the existing target/release/waftune as is
#
# Exit status: 0, or 2 when waftune and DuckDB disagree on per-client peak_5m (timings still printed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DATA=${BENCH_DATA:-bench-data/day}
RUNS=${BENCH_RUNS:-5}
VENV=${BENCH_VENV:-bench/.venv}
DUCKDB_PIP=${BENCH_DUCKDB_PIP:-duckdb-cli==1.5.6}
WAFTUNE=$ROOT/target/release/waftune
# generator defaults, spelled out so the cache is what this script expects
SEED=42
RECORDS=550000
MINUTES=1440

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, got '$RUNS'"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
NPROC=$(nproc)

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# --- tools -------------------------------------------------------------------------------
if [[ ! -x /usr/bin/time ]]; then
    log "installing GNU time (apt)"
    as_root apt-get update -qq
    as_root apt-get install -y -qq time >/dev/null
fi

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release"
    cargo build --release --quiet
fi
[[ -x $WAFTUNE ]] || die "$WAFTUNE not found (build failed or BENCH_SKIP_BUILD=1 without a build)"

if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import duckdb_cli' 2>/dev/null; then
    log "creating venv $VENV with $DUCKDB_PIP"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        log "python3 -m venv failed; installing python3-venv (apt)"
        as_root apt-get update -qq
        as_root apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$DUCKDB_PIP"
fi
# Call the native binary directly: the `duckdb` entry point is a Python wrapper that would add
# interpreter start-up and an extra process to every timed run. Fall back to it if the layout changes.
DUCKDB=$("$VENV/bin/python" -c 'import os, duckdb_cli; print(os.path.join(os.path.dirname(duckdb_cli.__file__), "duckdb"))')
if [[ ! -x $DUCKDB ]]; then
    DUCKDB=$VENV/bin/duckdb
    log "native duckdb binary not found in the package; using the wrapper $DUCKDB"
fi
DUCKDB_VERSION=$("$DUCKDB" --version)

# --- data --------------------------------------------------------------------------------
# .bench-complete is written last; it also caches the input sizes (measuring them costs a full gunzip).
STAMP=$DATA/.bench-complete
WANT_STAMP="seed=$SEED records=$RECORDS minutes=$MINUTES"
if [[ ! -f $STAMP ]] || [[ $(head -n1 "$STAMP") != "$WANT_STAMP" ]]; then
    if [[ -e $DATA ]]; then
        if [[ -z $(ls -A "$DATA") || -f $DATA/truth.json ]]; then
            log "removing incomplete or stale data in $DATA"
            rm -rf "$DATA"
        else
            die "$DATA exists and does not look like generated bench data; remove it or set BENCH_DATA"
        fi
    fi
    log "generating $RECORDS records over $MINUTES minutes (seed $SEED) into $DATA"
    "$WAFTUNE" generate --out "$DATA" --seed "$SEED" --records "$RECORDS" --minutes "$MINUTES" >&2
    [[ -d $DATA/AWSLogs ]] || die "generator did not write $DATA/AWSLogs"
    log "measuring input size"
    files=$(find "$DATA/AWSLogs" -type f -name '*.log.gz' | wc -l)
    gz_bytes=$(find "$DATA/AWSLogs" -type f -name '*.log.gz' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    read -r lines raw_bytes < <(find "$DATA/AWSLogs" -type f -name '*.log.gz' -print0 | sort -z |
        xargs -0 gzip -dc | wc -lc)
    printf '%s\nfiles=%s gz_bytes=%s raw_bytes=%s lines=%s\n' \
        "$WANT_STAMP" "$files" "$gz_bytes" "$raw_bytes" "$lines" >"$STAMP"
fi
eval "$(sed -n 2p "$STAMP")" # files= gz_bytes= raw_bytes= lines=
# Point waftune at AWSLogs/, not $DATA: truth.json sits beside it and is not log input.
LOGS=$DATA/AWSLogs
GLOB=$ROOT/$LOGS/**/*.log.gz
[[ $LOGS = /* ]] && GLOB=$LOGS/**/*.log.gz

TMP=$(mktemp -d "${TMPDIR:-/tmp}/waftune-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

sql_for() { # $1 = output path
    sed -e "s|@GLOB@|${GLOB//|/\\|}|" -e "s|@OUT@|$1|" "$ROOT/bench/peak5m.sql.in"
}
sql_for /dev/null >"$TMP/time.sql"
sql_for "$TMP/duckdb.csv" >"$TMP/check.sql"

run_waftune() { "$WAFTUNE" analyze --logs "$LOGS" --format json --top 20 >/dev/null; }
run_duckdb() { "$DUCKDB" -batch -bail <"$TMP/time.sql" >/dev/null; }

# --- agreement (untimed; doubles as the warm-up run of each) ------------------------------
log "agreement check (also warms the page cache)"
"$WAFTUNE" analyze --logs "$LOGS" --format json --top 100000000 >"$TMP/waftune.json" 2>"$TMP/waftune.err" ||
    { cat "$TMP/waftune.err" >&2; die "waftune analyze failed"; }
"$DUCKDB" -batch -bail <"$TMP/check.sql" >/dev/null
AGREE=0
AGREEMENT=$("$VENV/bin/python" "$ROOT/bench/compare_peaks.py" "$TMP/waftune.json" "$TMP/duckdb.csv" 5) || AGREE=$?
WT_RECORDS=$("$VENV/bin/python" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["records"], r["malformed"])' "$TMP/waftune.json")

# --- timed runs, alternating ---------------------------------------------------------------
timed() { # $1 = name, $2 = run number, rest = command; appends "wall_s maxrss_kb" to $TMP/$1
    local name=$1 i=$2
    shift 2
    if ! /usr/bin/time -f '%e %M' -o "$TMP/last" "$@" 2>"$TMP/$name.err"; then
        cat "$TMP/$name.err" >&2
        die "$name run $i failed"
    fi
    tail -n1 "$TMP/last" >>"$TMP/$name"
    printf '  run %d  %-8s %6ss  %6.1f MB\n' "$i" "$name" $(tail -n1 "$TMP/last" | awk '{print $1, $2 / 1024}') >&2
}
log "timing $RUNS alternating runs of each"
for ((i = 1; i <= RUNS; i++)); do
    timed waftune "$i" run_waftune
    timed duckdb "$i" run_duckdb
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

median() { cut -d' ' -f1 "$1" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
maxrss_mb() { awk '$2 > m {m = $2} END {printf "%.1f", m / 1024}' "$1"; }
runs_of() { cut -d' ' -f1 "$1" | paste -sd' '; }

WT_MED=$(median "$TMP/waftune")
DK_MED=$(median "$TMP/duckdb")
WT_RSS=$(maxrss_mb "$TMP/waftune")
DK_RSS=$(maxrss_mb "$TMP/duckdb")
RATIO=$(awk -v d="$DK_MED" -v w="$WT_MED" 'BEGIN {printf "%.2f", d / w}')
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {ok = (op == ">=") ? v >= t : v <= t; print ok ? "met" : "NOT met"}'; }

cat <<EOF

waftune analyze vs DuckDB ($(date -u +%Y-%m-%dT%H:%MZ))
  machine       nproc $NPROC, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  load average  start $LOAD_START | end $LOAD_END
  waftune       $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
  duckdb        $DUCKDB_VERSION, SET threads=2, read_json with explicit columns
  input         $files files, $gz_bytes bytes gzip, $raw_bytes bytes uncompressed, $lines lines
                (waftune: records/malformed $WT_RECORDS)

                 median wall   peak RSS (max)   runs (s)
  waftune        $(printf '%9.2f s   %9s MB' "$WT_MED" "$WT_RSS")     $(runs_of "$TMP/waftune")
  duckdb         $(printf '%9.2f s   %9s MB' "$DK_MED" "$DK_RSS")     $(runs_of "$TMP/duckdb")
  ratio duckdb/waftune = $RATIO  (target >= 1.5: $(verdict "$RATIO" 1.5 '>='));  waftune peak RSS target <= 64 MB: $(verdict "$WT_RSS" 64 '<=')

agreement (waftune --top all vs DuckDB, peak_5m per client)
$AGREEMENT
EOF

if [[ $AGREE -ne 0 ]]; then
    exit 2
fi
