"""Bytes Athena scans with and without the rollup, measured on DuckDB (see benches/athena-bytes.sh).

Usage: athena_bytes.py RAW_DDL ROLLUP_SQL PARQUET_DIR FILE...

RAW_DDL is `waftune athena ddl` output, ROLLUP_SQL `waftune athena rollup --location ... --print-sql`
output (the rollup's CREATE TABLE, then its fill statements) for the day the FILEs (gzip JSON WAF
logs) hold. The fill statements run on DuckDB through tests/support/trino_on_duckdb.py (transpiled
by sqlglot, as in the equivalence test); the rollup is written as Parquet (zstd at the DDL's
`compression_level`) partitioned by hour into PARQUET_DIR, and the arithmetic of a weekly run is printed.
"""

import json
import os
import re
import subprocess
import sys

HOURS_PER_WEEK = 7 * 24
SHIPPED_POLICIES = 8


def ddl_columns(ddl):
    """The (name, type) pairs of a CREATE TABLE's column list."""
    body = ddl[ddl.index("(") + 1 : ddl.index("\n)")]
    return [list(m.groups()) for m in re.finditer(r"^\s+`?(\w+)`? (\S+?),?$", body, re.M)]


def main():
    raw_ddl, rollup_sql, parquet, *files = sys.argv[1:]
    statements = [s.strip() for s in open(rollup_sql).read().split(";\n") if s.strip()]
    create, fills = statements[0], statements[1:]
    table = re.search(r"CREATE TABLE IF NOT EXISTS (\w+)", create).group(1)
    level = int(re.search(r"'compression_level' = '(\d+)'", create).group(1))
    here = os.path.dirname(os.path.abspath(__file__))
    request = {
        "table": "waf_logs",
        "columns": ddl_columns(open(raw_ddl).read()),
        "files": files,
        "queries": [],
        "rollup": {"table": table, "columns": ddl_columns(create), "statements": fills, "parquet": parquet,
                   "compression_level": level},
    }
    harness = os.path.join(here, "..", "tests", "support", "trino_on_duckdb.py")
    out = subprocess.run([sys.executable, harness], input=json.dumps(request), capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(out.stderr)
    rollup = json.loads(out.stdout)["parquet_bytes"]
    raw = sum(os.path.getsize(f) for f in files)
    week_raw = 7 * raw
    per_hour = raw / 24
    mb = lambda n: f"{n / 1e6:,.1f} MB"
    print(f"one day: {len(files)} gzip JSON files, {mb(raw)}; rollup as Parquet (zstd {level}): {mb(rollup)} "
          f"= {100 * rollup / raw:.2f}% of the raw bytes")
    print(f"weekly run, bytes scanned (a week = 7 such days, {mb(week_raw)} of raw logs):")
    before = (2 + SHIPPED_POLICIES) * week_raw
    print(f"  2 + P statements, each reading the week (before, P = {SHIPPED_POLICIES}): {mb(before)} (10.0x the raw bytes)")
    print(f"  one statement, raw table only:                           {mb(week_raw)} (1.0x)")
    # Raw reads with the rollup: the partial first hour and the open tail (an hour closes 15 minutes
    # after its end), each with 15 minutes of partition slack on both sides.
    for name, hours in [("typical (now mid-hour)", 2.0), ("worst case", 3.0)]:
        scanned = 7 * rollup + hours * per_hour
        print(f"  with the rollup, {name}: 7 days of rollup + {hours:.0f} h of raw = {mb(scanned)} "
              f"= {100 * scanned / week_raw:.2f}% of the raw bytes")
    print("  filling the rollup reads every raw byte once (a daily `athena rollup` reads the day before),")
    print("  so a week of fills costs one raw read of the week, shared by every run over it.")


if __name__ == "__main__":
    main()
