#!/usr/bin/env bash
# Bytes an Athena run scans with and without the rollup (docs/athena.md, "Cost"), measured on DuckDB
# over the benchmark day (the one benches/analyze-vs-duckdb.sh generates): the rollup is built by the
# very fill statements `waftune athena rollup` prints, transpiled by sqlglot, and written as Parquet.
#
# Environment (all optional):
#   BENCH_DATA     cache dir for the generated day                         (default: bench-data/day)
#   BENCH_PYTHON   a Python with duckdb and sqlglot (as .ci/test installs)  (default: .venv/bin/python)
#   BENCH_WAFTUNE  the waftune binary                                       (default: target/release/waftune)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
DATA=${BENCH_DATA:-bench-data/day}
PYTHON=${BENCH_PYTHON:-${WAFTUNE_PYTHON:-.venv/bin/python}}
WAFTUNE=${BENCH_WAFTUNE:-target/release/waftune}

[[ -x $WAFTUNE ]] || { echo "error: $WAFTUNE not found: cargo build --release" >&2; exit 1; }
# The generator defaults of benches/analyze-vs-duckdb.sh: the same day.
if [[ ! -f $DATA/truth.json ]]; then
    echo "==> generating the benchmark day into $DATA" >&2
    "$WAFTUNE" generate --out "$DATA" --seed 42 --records 550000 --minutes 1440 >&2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/waftune-athena-bytes.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cat >"$TMP/waftune.toml" <<TOML
scope = "REGIONAL"
policies = "$ROOT/policies"

[athena]
database = "waf"
table = "waf_logs"
rollup = "waf_rollup"
TOML
"$WAFTUNE" athena ddl --bucket aws-waf-logs-bench --account 123456789012 --web-acl bench \
    --region ap-northeast-1 --start 2026/11/20 >"$TMP/raw.sql"
"$WAFTUNE" athena rollup --config "$TMP/waftune.toml" --location s3://rollup-bench/waf/ --print-sql \
    --since 2026-11-20T00:00:00Z --until 2026-11-21T00:00:00Z --now 2026-11-21T01:00:00Z >"$TMP/rollup.sql"
mapfile -t FILES < <(find "$DATA" -name '*.gz' | sort)
"$PYTHON" benches/athena_bytes.py "$TMP/raw.sql" "$TMP/rollup.sql" "$TMP/parquet" "${FILES[@]}"
