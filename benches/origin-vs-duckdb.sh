#!/usr/bin/env bash
# Benchmark (not a timed test): the origin-log scan of `waftune analyze` (per client and minute:
# status classes, 5xx codes, origin time with percentiles, bytes; per hour; the report) vs DuckDB's
# read_csv computing only per-client status-class counts, over the same generated ALB access logs.
# Prints wall time and peak memory of each, and checks that both count the same statuses.
#
# Environment (all optional):
#   BENCH_DATA      cache dir for the generated run          (default: bench-data/origin)
#   BENCH_RECORDS   WAF records generated (the ALB log holds the allowed ones)   (default: 1000000)
#   BENCH_RUNS      timed runs of each, alternating          (default: 3)
#   BENCH_PYTHON    a Python with duckdb (default: benches/.venv/bin/python, created with duckdb==2.0.1)
#   BENCH_SKIP_BUILD  set to 1 to use the existing target/release/waftune as is
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${BENCH_DATA:-bench-data/origin}
RECORDS=${BENCH_RECORDS:-1000000}
RUNS=${BENCH_RUNS:-3}
PY=${BENCH_PYTHON:-benches/.venv/bin/python}
WAFTUNE=$PWD/target/release/waftune

[[ ${BENCH_SKIP_BUILD:-0} == 1 ]] || cargo build --release --quiet
if [[ ! -x $PY ]]; then
  python3 -m venv benches/.venv && benches/.venv/bin/pip install --quiet 'duckdb==2.0.1'
fi
if [[ ! -f $DATA/truth.json ]]; then
  "$WAFTUNE" generate --out "$DATA" --records "$RECORDS" --minutes 1440 --seed 42 --origin-logs
fi
ALB=$(echo "$DATA"/AWSLogs/*/elasticloadbalancing)
files=$(find "$ALB" -name '*.log.gz' | wc -l)
bytes=$(du -sb "$ALB" | cut -f1)
echo "ALB logs: $files files, $bytes bytes gzipped, under $ALB"

cat > "$DATA/duckdb-status.py" <<'PY'
import json, sys, duckdb
files = sys.argv[1]
# The 30 fields of a current ALB entry; only the client and elb_status_code are typed.
COLUMNS = "{" + ", ".join(f"'column{i:02}': '{'INTEGER' if i == 8 else 'VARCHAR'}'" for i in range(30)) + "}"
con = duckdb.connect()
rows = con.execute(f"""
  SELECT regexp_replace(column03, ':[0-9]+$', '') AS client,
         count(*) FILTER (WHERE column08 BETWEEN 200 AND 299) AS s2xx,
         count(*) FILTER (WHERE column08 BETWEEN 300 AND 399) AS s3xx,
         count(*) FILTER (WHERE column08 BETWEEN 400 AND 499) AS s4xx,
         count(*) FILTER (WHERE column08 BETWEEN 500 AND 599) AS s5xx
  FROM read_csv('{files}', delim = ' ', quote = '"', escape = '\\', header = false,
                null_padding = true, columns = {COLUMNS}, ignore_errors = true, strict_mode = false)
  GROUP BY client""").fetchall()
totals = [sum(r[i] for r in rows) for i in range(1, 5)]
json.dump({"clients": len(rows), "status": totals}, sys.stdout)
PY

measure() { # label, command...: prints "label seconds peak-MB", leaves stdout in $DATA/out.<label>
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$DATA/time.$label" "$@" > "$DATA/out.$label"
  read -r secs kb < "$DATA/time.$label"
  printf '%-8s %6.2f s  %5d MB\n' "$label" "$secs" $((kb / 1024))
}
for ((i = 1; i <= RUNS; i++)); do
  measure waftune "$WAFTUNE" analyze --logs "$ALB" --format json --top 20
  measure duckdb "$PY" "$DATA/duckdb-status.py" "$ALB/**/*.log.gz"
done
"$PY" - "$DATA/out.waftune" "$DATA/out.duckdb" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))["origin"]
d = json.load(open(sys.argv[2]))
mine = [w["status"][k] for k in ("2xx", "3xx", "4xx", "5xx")]
print(f"records {w['records']}, clients waftune {w['distinct_clients']} duckdb {d['clients']}")
print(f"status 2xx..5xx waftune {mine} duckdb {d['status']}")
sys.exit(0 if mine == d["status"] and w["distinct_clients"] == d["clients"] else 2)
PY
