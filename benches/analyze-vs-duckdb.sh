#!/usr/bin/env bash
# Benchmark: `waftune analyze` (full analysis) vs DuckDB computing only per-client peak 5-minute
# counts with an explicit two-column schema, over the same generated day of WAF logs.
# See docs/benchmarks.md. Run from anywhere; paths are relative to the repo root.
#
# Environment (all optional):
#   BENCH_DATA        cache dir for the generated day            (default: bench-data/day)
#   BENCH_RUNS        timed runs of each, alternating             (default: 5)
#   BENCH_VENV        Python venv holding PyPI duckdb-cli         (default: benches/.venv)
#   BENCH_DUCKDB_PIP  pip requirement for the DuckDB CLI          (default: duckdb-cli==1.5.6)
#   BENCH_SKIP_BUILD  set to 1 to use the existing target/release/waftune as is
#   BENCH_WAFTUNE     time this waftune binary instead (implies no build; e.g. to compare two builds)
#   BENCH_BASELINE    also time this other waftune binary in every round (an older build, e.g. the one a target
#                     was first measured with): how both compare on this machine, whatever its speed
#   BENCH_WAIT_IDLE   wait up to this many seconds (default 0) before timing for a 5-second window in which
#                     the machine is at least 90% idle (other builds on a small machine distort timings)
#   BENCH_QUIET       set to 1 to keep timing pairs until BENCH_RUNS of them were quiet (other processes
#                     < 10% of the machine during both runs), at most 4 x BENCH_RUNS pairs
#
# Exit status: 0, or 2 when waftune and DuckDB disagree on per-client peak_5m (timings still printed).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DATA=${BENCH_DATA:-bench-data/day}
RUNS=${BENCH_RUNS:-5}
VENV=${BENCH_VENV:-benches/.venv}
DUCKDB_PIP=${BENCH_DUCKDB_PIP:-duckdb-cli==1.5.6}
WAFTUNE=${BENCH_WAFTUNE:-$ROOT/target/release/waftune}
BASELINE=${BENCH_BASELINE:-}
# generator defaults, spelled out so the cache is what this script expects
SEED=42
RECORDS=550000
MINUTES=1440

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
NPROC=$(nproc)

# --- tools -------------------------------------------------------------------------------
# shellcheck source=benches/common.sh
source benches/common.sh bench
if [[ -n $BASELINE ]]; then
    [[ -x $BASELINE ]] || die "BENCH_BASELINE \`$BASELINE\` is not an executable"
    # A snapshot too, as waftune's; the report names the original.
    BASELINE_NAME=$BASELINE
    cp "$BASELINE" "$TMP/baseline-bin"
    BASELINE=$TMP/baseline-bin
fi

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
    printf '%s\n' "$WANT_STAMP" >"$STAMP"
fi
# memory.sh stamps the same day without the sizes: measure them once here.
if [[ -z $(sed -n 2p "$STAMP") ]]; then
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
# DuckDB's glob (a literal string here, expanded by DuckDB), absolute so it does not depend on DuckDB's cwd
if [[ $LOGS = /* ]]; then GLOB="$LOGS/**/*.log.gz"; else GLOB="$ROOT/$LOGS/**/*.log.gz"; fi

sql_for() { # $1 = output path
    sed -e "s|@GLOB@|${GLOB//|/\\|}|" -e "s|@OUT@|$1|" "$ROOT/benches/peak5m.sql.in"
}
sql_for /dev/null >"$TMP/time.sql"
sql_for "$TMP/duckdb.csv" >"$TMP/check.sql"

# stdout of both goes to /dev/null (see timed); -no-init ignores any ~/.duckdbrc
WAFTUNE_CMD=("$WAFTUNE" analyze --logs "$LOGS" --format json --top 20)
BASELINE_CMD=("$BASELINE" "${WAFTUNE_CMD[@]:1}")
DUCKDB_CMD=("$DUCKDB" -no-init -batch -bail -f "$TMP/time.sql")

# --- agreement (untimed; doubles as the warm-up run of each) ------------------------------
# $1 = binary, $2 = name: every client's statistics as JSON, in $TMP/$2.json
full_report() {
    "$1" analyze --logs "$LOGS" --format json --top 100000000 >"$TMP/$2.json" 2>"$TMP/$2.err" ||
        { cat "$TMP/$2.err" >&2; die "$2 analyze failed"; }
}
log "agreement check (also warms the page cache)"
full_report "$WAFTUNE" waftune
"$DUCKDB" -no-init -batch -bail -f "$TMP/check.sql" >/dev/null
AGREE=0
AGREEMENT=$("$VENV/bin/python" "$ROOT/benches/compare_peaks.py" "$TMP/waftune.json" "$TMP/duckdb.csv" 5) || AGREE=$?
WT_RECORDS=$("$VENV/bin/python" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["records"], r["malformed"])' "$TMP/waftune.json")
if [[ -n $BASELINE ]]; then
    # Also the baseline's warm-up: does it report what waftune does?
    full_report "$BASELINE" baseline
    if cmp -s "$TMP/waftune.json" "$TMP/baseline.json"; then
        BASELINE_SAME="the same report as waftune (every client, JSON byte for byte)"
    else
        BASELINE_SAME="a report that differs from waftune's (every client, JSON)"
    fi
fi

# --- timed runs, alternating ---------------------------------------------------------------
HZ=$(getconf CLK_TCK)
# CPU ticks spent by everything on the machine (user, nice, system, irq, softirq, steal)
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# $1 = name, $2 = run number, rest = command. Appends "wall_s maxrss_kb cpu_s other_cpu_s" to
# $TMP/times.$1, where other_cpu_s is CPU time other processes used on the machine during the run.
timed() {
    local name=$1 i=$2 b0 b1
    shift 2
    b0=$(busy_ticks)
    if ! /usr/bin/time -f '%e %M %U %S' -o "$TMP/last" "$@" >/dev/null 2>"$TMP/$name.err"; then
        cat "$TMP/$name.err" >&2
        die "$name run $i failed"
    fi
    b1=$(busy_ticks)
    tail -n1 "$TMP/last" | awk -v d=$((b1 - b0)) -v hz="$HZ" \
        '{cpu = $3 + $4; o = d / hz - cpu; print $1, $2, cpu, (o > 0 ? o : 0)}' >>"$TMP/times.$name"
    tail -n1 "$TMP/times.$name" | awk -v i="$i" -v n="$name" \
        '{printf "  run %d  %-8s %6.2fs wall  %6.2fs cpu  %6.1f MB   other processes: %5.2fs cpu\n", i, n, $1, $3, $2 / 1024, $4}' >&2
}
if ((${BENCH_WAIT_IDLE:-0} > 0)); then
    deadline=$((SECONDS + BENCH_WAIT_IDLE))
    while ((SECONDS < deadline)); do
        b0=$(busy_ticks)
        sleep 5
        b1=$(busy_ticks)
        busy=$(awk -v d=$((b1 - b0)) -v hz="$HZ" -v n="$NPROC" 'BEGIN {printf "%d", 100 * d / hz / 5 / n}')
        ((busy < 10)) && break
        log "machine ${busy}% busy, waiting for it to go idle"
    done
fi
LOAD_TIMING=$(cut -d' ' -f1-3 /proc/loadavg)
# A pair (one run of each; with a baseline, a round of three) is quiet when other processes used < 10%
# of the machine during every run of it.
NAMES=(waftune duckdb ${BASELINE:+baseline})
pair_quiet() {
    local name
    for name in "${NAMES[@]}"; do
        tail -n1 "$TMP/times.$name" | awk -v n="$NPROC" '{exit !($4 < 0.1 * n * $1)}' || return 1
    done
}
if [[ ${BENCH_QUIET:-0} == 1 ]]; then
    MAX_PAIRS=$((4 * RUNS))
    log "timing alternating runs until $RUNS quiet pairs, at most $MAX_PAIRS pairs (load average $LOAD_TIMING)"
else
    MAX_PAIRS=$RUNS
    log "timing $RUNS alternating runs of each (load average $LOAD_TIMING)"
fi
: >"$TMP/quiet"
QUIET=0
for ((i = 1; i <= MAX_PAIRS; i++)); do
    # The two builds take turns going first, so neither always runs right after DuckDB.
    if [[ -n $BASELINE ]] && ((i % 2 == 0)); then timed baseline "$i" "${BASELINE_CMD[@]}"; fi
    timed waftune "$i" "${WAFTUNE_CMD[@]}"
    if [[ -n $BASELINE ]] && ((i % 2 == 1)); then timed baseline "$i" "${BASELINE_CMD[@]}"; fi
    timed duckdb "$i" "${DUCKDB_CMD[@]}"
    if pair_quiet; then
        echo "$i" >>"$TMP/quiet"
        QUIET=$((QUIET + 1))
    else
        log "pair $i not quiet: other processes were busy"
    fi
    if [[ ${BENCH_QUIET:-0} == 1 ]] && ((QUIET >= RUNS)); then break; fi
done
PAIRS=$(wc -l <"$TMP/times.waftune")
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
# share of the machine's CPU capacity (nproc x wall) used by other processes during the timed runs
OTHER=$(for name in "${NAMES[@]}"; do cat "$TMP/times.$name"; done |
    awk -v n="$NPROC" '{w += $1; o += $4} END {printf "%.1f s of %.1f s available (%.0f%%)", o, w * n, 100 * o / (w * n)}')
for name in "${NAMES[@]}"; do
    awk 'NR == FNR {q[$1]; next} FNR in q' "$TMP/quiet" "$TMP/times.$name" >"$TMP/quiet.$name"
done

middle() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
median() { cut -d' ' -f"${2:-1}" "$1" | middle; }
# $1 = times | quiet, $2 = column: the median of each round's waftune/baseline ratio, so that the
# machine's speed drifting between rounds cancels out
paired() {
    paste -d' ' <(cut -d' ' -f"$2" "$TMP/$1.waftune") <(cut -d' ' -f"$2" "$TMP/$1.baseline") |
        awk '{print $1 / $2}' | middle | xargs printf '%.3f'
}
maxrss_mb() { awk '$2 > m {m = $2} END {printf "%.1f", m / 1024}' "$1"; }
runs_of() { cut -d' ' -f1 "$1" | paste -sd' '; }
ratio() { awk -v d="$1" -v w="$2" 'BEGIN {printf "%.2f", d / w}'; }
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {ok = (op == ">=") ? v >= t : v <= t; print ok ? "met" : "NOT met"}'; }

row() { # $1 = name, $2 = its times file, $3 = median wall, $4 = median CPU
    printf '  %-8s %9.2f s %10.2f s %12s MB   %s\n' "$1" "$3" "$4" "$(maxrss_mb "$2")" "$(runs_of "$2")"
}

table() { # $1 = times | quiet: the rows and the ratios
    local wm dm wc dc r
    wm=$(median "$TMP/$1.waftune")
    dm=$(median "$TMP/$1.duckdb")
    wc=$(median "$TMP/$1.waftune" 3)
    dc=$(median "$TMP/$1.duckdb" 3)
    r=$(ratio "$dm" "$wm")
    printf '  %-8s %11s %12s %15s   %s\n' "" "median wall" "median CPU" "peak RSS (max)" "wall per run (s)"
    row waftune "$TMP/$1.waftune" "$wm" "$wc"
    row duckdb "$TMP/$1.duckdb" "$dm" "$dc"
    printf '  ratio duckdb/waftune: median wall %s (target >= 1.5: %s), median CPU %s\n' \
        "$r" "$(verdict "$r" 1.5 '>=')" "$(ratio "$dc" "$wc")"
    if [[ -n $BASELINE ]]; then
        local bm bc
        bm=$(median "$TMP/$1.baseline")
        bc=$(median "$TMP/$1.baseline" 3)
        row baseline "$TMP/$1.baseline" "$bm" "$bc"
        printf '  ratio duckdb/baseline: median wall %s, median CPU %s\n' "$(ratio "$dm" "$bm")" "$(ratio "$dc" "$bc")"
        printf '  waftune/baseline, median of each round'"'"'s ratio: wall %s, CPU %s (below 1: waftune faster)\n' \
            "$(paired "$1" 1)" "$(paired "$1" 3)"
    fi
}
WT_RSS=$(maxrss_mb "$TMP/times.waftune")
if ((QUIET == PAIRS)); then
    QUIET_NOTE="all $PAIRS pairs quiet (other processes used < 10% of the machine during each run)"
elif ((QUIET == 0)); then
    QUIET_NOTE="no quiet pair: every pair ran beside busy processes, so these timings are distorted"
else
    QUIET_NOTE="quiet pairs only ($QUIET of $PAIRS: other processes used < 10% of the machine during both runs)
$(table quiet)"
fi

cat <<EOF

waftune analyze vs DuckDB ($(date -u +%Y-%m-%dT%H:%MZ))
  machine       nproc $NPROC, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  load average  script start $LOAD_START | timing start $LOAD_TIMING | end $LOAD_END
  other procs   CPU used by other processes during the timed runs: $OTHER
  waftune       $("$WAFTUNE" --version 2>/dev/null || echo waftune), tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)${BENCH_WAFTUNE:+, binary $BENCH_WAFTUNE}
  duckdb        $DUCKDB_VERSION, SET threads=2, read_json with explicit columns${BASELINE:+
  baseline      $("$BASELINE" --version 2>/dev/null || echo waftune), binary $BASELINE_NAME: $BASELINE_SAME}
  input         $files files, $gz_bytes bytes gzip, $raw_bytes bytes uncompressed, $lines lines
                (waftune: records/malformed $WT_RECORDS)

all $PAIRS pairs
$(table times)
$QUIET_NOTE
  waftune peak RSS $WT_RSS MB (max over all runs): target <= 64 MB $(verdict "$WT_RSS" 64 '<=')

agreement (waftune --top all vs DuckDB, peak_5m per client)
$AGREEMENT
EOF

if [[ $AGREE -ne 0 ]]; then
    exit 2
fi
