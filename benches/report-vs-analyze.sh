#!/usr/bin/env bash
# Benchmark: CPU time of `waftune report` against `waftune analyze` on the benchmark day (issue 14:
# `report` within 1.3x of `analyze`'s time), with `propose` and report's HTML and markdown outputs
# beside them. Compares user CPU time, which the load of a shared machine disturbs far less than
# wall time; the commands run interleaved so that a change of load hits all of them alike.
# See docs/benchmarks.md. Run from anywhere; paths are relative to the repo root.
#
# Environment (all optional):
#   BENCH_RUNS        runs of each command; medians are compared (default: 3)
#   BENCH_DAY         the generated day (default: bench-data/day, shared with memory.sh and
#                     analyze-vs-duckdb.sh; generated here on first use)
#   BENCH_SKIP_BUILD  set to 1 to use the existing target/release/waftune as is
#   BENCH_WAFTUNE     time this waftune binary instead (implies no build; e.g. to compare two builds)
#
# Exit status: 0 when the target is met, 3 when it is not (the numbers are printed either way).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

RUNS=${BENCH_RUNS:-3}
DAY=${BENCH_DAY:-bench-data/day}
WAFTUNE=${BENCH_WAFTUNE:-$ROOT/target/release/waftune}
TARGET=1.3

# shellcheck source=benches/common.sh
source benches/common.sh report-bench

# The day as memory.sh and analyze-vs-duckdb.sh generate it (same stamp, so they share it).
if [[ $(head -n1 "$DAY/.bench-complete" 2>/dev/null) != "seed=42 records=550000 minutes=1440" ]]; then
    [[ ! -e $DAY || -z $(ls -A "$DAY") ]] || die "$DAY is not a complete benchmark day; remove it or set BENCH_DAY"
    log "generating the benchmark day into $DAY"
    "$WAFTUNE" generate --out "$DAY" --seed 42 --records 550000 --minutes 1440 >&2
    printf 'seed=42 records=550000 minutes=1440\n' >"$DAY/.bench-complete"
fi
logs=$DAY/AWSLogs
[[ $logs = /* ]] || logs=$ROOT/$logs
# The end of the generated period: the ledger's `now`.
now=$(sed -n 's/^ *"end": "\(.*\)",*$/\1/p' "$DAY/truth.json" | head -n1)

# report and propose read the shipped configuration, policies and ledger: a scratch copy.
cp -r "$ROOT/examples" "$ROOT/policies" "$TMP/"
c=(-c examples/waftune.toml --logs "$logs" --now "$now")
declare -A CMD=(
    [analyze]="analyze --logs $logs --format json"
    [report]="report ${c[*]} --format json"
    [report-html]="report ${c[*]} --html $TMP/report.html"
    [report-markdown]="report ${c[*]} --markdown $TMP/report.md"
    [propose]="propose ${c[*]} --dry-run --format json"
)
ORDER=(analyze report report-html report-markdown propose)

# Appends "user_s wall_s maxrss_kb" per run to $TMP/t.<label>. Each round starts one command
# later, so that none is always the one that meets a rise in the machine's load.
for ((i = 1; i <= RUNS; i++)); do
    for ((j = 0; j < ${#ORDER[@]}; j++)); do
        label=${ORDER[(i - 1 + j) % ${#ORDER[@]}]}
        # shellcheck disable=SC2086 # the command line is split on purpose (no spaces in its paths)
        if ! (cd "$TMP" && /usr/bin/time -f '%U %e %M' -o "$TMP/last" "$WAFTUNE" ${CMD[$label]} \
            >/dev/null 2>"$TMP/err"); then
            cat "$TMP/err" >&2
            die "$label failed"
        fi
        tail -n1 "$TMP/last" >>"$TMP/t.$label"
        log "$label run $i: $(awk '{printf "%.2f s user, %.2f s wall, %.1f MB", $1, $2, $3 / 1024}' "$TMP/last")"
    done
done

# $1 = file, $2 = column: the median.
median() { cut -d' ' -f"$2" "$1" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
rss_mb() { awk '$3 > m {m = $3} END {printf "%.1f", m / 1024}' "$1"; }
A_USER=$(median "$TMP/t.analyze" 1)
ratio() { awk -v a="$1" -v b="$A_USER" 'BEGIN {printf "%.2f", a / b}'; }
R_REPORT=$(ratio "$(median "$TMP/t.report" 1)")

cat <<EOF

waftune report against analyze ($(date -u +%Y-%m-%dT%H:%MZ), $RUNS runs each, nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg))
  waftune  $("$WAFTUNE" --version 2>/dev/null || echo waftune), tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)${BENCH_WAFTUNE:+, binary $BENCH_WAFTUNE}
  day      $DAY (seed 42, 550,000 records over 1,440 minutes), --now $now

  command                  median user   median wall   peak RSS   user / analyze
EOF
for label in "${ORDER[@]}"; do
    f=$TMP/t.$label
    printf '  %-22s %11.2f s %11.2f s %7s MB %8s\n' "$label" "$(median "$f" 1)" "$(median "$f" 2)" \
        "$(rss_mb "$f")" "$(ratio "$(median "$f" 1)")x"
done
met=$(awk -v v="$R_REPORT" -v t="$TARGET" 'BEGIN {print (v <= t) ? "met" : "NOT met"}')
printf '\n  report / analyze user time   %s (target <= %s: %s)\n' "$R_REPORT" "$TARGET" "$met"
[[ $met == met ]] || exit 3
