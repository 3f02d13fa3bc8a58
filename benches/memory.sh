#!/usr/bin/env bash
# Benchmark: time and peak RSS of `waftune analyze` and `waftune propose` on a generated day and a
# generated week of WAF logs, and whether memory stays flat in time (issue 17): analyze on the week
# within 2x of the day's peak RSS, propose within 1.5x of analyze on the same input.
# See docs/benchmarks.md. Run from anywhere; paths are relative to the repo root.
#
# Environment (all optional):
#   BENCH_RUNS        runs of each command; the median wall time and the largest peak RSS are shown (default: 3)
#   BENCH_DAY         cache dir for the generated day   (default: bench-data/day, shared with analyze-vs-duckdb.sh)
#   BENCH_WEEK        cache dir for the generated week  (default: bench-data/week, ~400 MB gzip)
#   BENCH_SKIP_BUILD  set to 1 to use the existing target/release/waftune as is
#   BENCH_WAFTUNE     time this waftune binary instead (implies no build; e.g. to compare two builds)
#
# Exit status: 0 when both targets are met, 3 when one is not (the numbers are printed either way).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

RUNS=${BENCH_RUNS:-3}
DAY=${BENCH_DAY:-bench-data/day}
WEEK=${BENCH_WEEK:-bench-data/week}
WAFTUNE=${BENCH_WAFTUNE:-$ROOT/target/release/waftune}

# shellcheck source=benches/common.sh
source benches/common.sh memory

# $1 = dir, $2 = seed, $3 = records, $4 = minutes, $5 = start (empty: the generator's default).
# The stamp is written last, so an interrupted generation is redone. The day's stamp is the one
# analyze-vs-duckdb.sh writes, so both scripts share it.
generate() {
    local dir=$1 seed=$2 records=$3 minutes=$4 start=$5 want stamp
    want="seed=$2 records=$3 minutes=$4"
    stamp=$dir/.bench-complete
    if [[ -f $stamp ]] && [[ $(head -n1 "$stamp") == "$want" ]]; then
        return
    fi
    if [[ -e $dir ]]; then
        if [[ -z $(ls -A "$dir") || -f $dir/truth.json ]]; then
            rm -rf "$dir"
        else
            die "$dir exists and does not look like generated bench data; remove it or set BENCH_DAY/BENCH_WEEK"
        fi
    fi
    log "generating $records records over $minutes minutes (seed $seed) into $dir"
    "$WAFTUNE" generate --out "$dir" --seed "$seed" --records "$records" --minutes "$minutes" \
        ${start:+--start "$start"} >&2
    printf '%s\n' "$want" >"$stamp"
}
generate "$DAY" 42 550000 1440 ""
generate "$WEEK" 777 3850000 10080 2026-10-05T00:00:00Z

# propose needs a configuration, policies and a ledger: the shipped examples, in a scratch copy
# (`--dry-run` writes nothing, but the examples stay untouched either way).
cp -r "$ROOT/examples" "$ROOT/policies" "$TMP/"

# $1 = label, rest = command. Appends "wall_s maxrss_kb" per run to $TMP/t.<label>.
timed() {
    local label=$1 i
    shift
    for ((i = 1; i <= RUNS; i++)); do
        if ! (cd "$TMP" && /usr/bin/time -f '%e %M' -o "$TMP/last" "$@" >/dev/null 2>"$TMP/err"); then
            cat "$TMP/err" >&2
            die "$label failed"
        fi
        tail -n1 "$TMP/last" >>"$TMP/t.$label"
        log "$label run $i: $(awk '{printf "%.2f s, %.1f MB", $1, $2 / 1024}' "$TMP/last")"
    done
}
for input in day week; do
    dir=$DAY
    [[ $input == week ]] && dir=$WEEK
    logs=$dir/AWSLogs
    [[ $logs = /* ]] || logs=$ROOT/$logs
    # The end of the generated period: the ledger's `now`.
    now=$(sed -n 's/^ *"end": "\(.*\)",*$/\1/p' "$dir/truth.json" | head -n1)
    timed "analyze-$input" "$WAFTUNE" analyze --logs "$logs" --format json --top 20
    timed "propose-$input" "$WAFTUNE" propose -c examples/waftune.toml --logs "$logs" --now "$now" \
        --dry-run --format json
done

median() { cut -d' ' -f1 "$1" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
rss_mb() { awk '$2 > m {m = $2} END {printf "%.1f", m / 1024}' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN {print (v <= t) ? "met" : "NOT met"}'; }

A_DAY=$(rss_mb "$TMP/t.analyze-day")
A_WEEK=$(rss_mb "$TMP/t.analyze-week")
P_DAY=$(rss_mb "$TMP/t.propose-day")
P_WEEK=$(rss_mb "$TMP/t.propose-week")
R_TIME=$(ratio "$A_WEEK" "$A_DAY")
R_PROPOSE=$(ratio "$P_WEEK" "$A_WEEK")

cat <<EOF

waftune memory in time ($(date -u +%Y-%m-%dT%H:%MZ), $RUNS runs each, nproc $(nproc))
  waftune  $("$WAFTUNE" --version 2>/dev/null || echo waftune), tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)${BENCH_WAFTUNE:+, binary $BENCH_WAFTUNE}
  day      $DAY (seed 42, 550,000 records over 1,440 minutes)
  week     $WEEK (seed 777, 3,850,000 records over 10,080 minutes)

  command   input   median wall   peak RSS
  analyze   day     $(printf '%9.2f s' "$(median "$TMP/t.analyze-day")")   $(printf '%6s MB' "$A_DAY")
  propose   day     $(printf '%9.2f s' "$(median "$TMP/t.propose-day")")   $(printf '%6s MB' "$P_DAY")
  analyze   week    $(printf '%9.2f s' "$(median "$TMP/t.analyze-week")")   $(printf '%6s MB' "$A_WEEK")
  propose   week    $(printf '%9.2f s' "$(median "$TMP/t.propose-week")")   $(printf '%6s MB' "$P_WEEK")

  analyze week / day peak RSS        $R_TIME (target <= 2: $(verdict "$R_TIME" 2))
  propose / analyze peak RSS, week   $R_PROPOSE (target <= 1.5: $(verdict "$R_PROPOSE" 1.5))
EOF

if [[ $(verdict "$R_TIME" 2) != met || $(verdict "$R_PROPOSE" 1.5) != met ]]; then
    exit 3
fi
