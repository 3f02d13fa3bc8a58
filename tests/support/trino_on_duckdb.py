"""Runs Athena (Trino) queries on DuckDB over local WAF log files, for the equivalence tests.

Reads one JSON object on stdin:
  {"table": "waf_logs", "columns": [[name, hive_type], ...], "files": [...], "queries": [trino_sql, ...],
   "rollup": {"table": name, "columns": [[name, hive_type], ...], "statements": [trino_sql, ...],
              "parquet": directory or absent, "compression_level": n or absent}}
and writes {"results": [{"duckdb": sql, "columns": [...], "rows": [[text or null, ...], ...]}, ...],
"parquet_bytes": n} on stdout.

`rollup` (optional) creates an empty table for the rollup and runs its fill statements (DELETE, INSERT)
before the queries; with `parquet`, the filled table is also written there as Parquet partitioned by
hour (zstd at `compression_level`, default 3, as the rollup DDL asks), and `parquet_bytes` is the size
of those files.

The table gives DuckDB what Athena has: the DDL's columns and types (so a field absent from every
file is NULL, not a binder error), and the partition columns taken from the S3 key
(`.../yyyy/MM/dd/HH/mm/file`), falling back to the record's own minute for files outside that layout.
"""

import json
import os
import re
import sys

import duckdb
import sqlglot

PRIMITIVES = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE", "boolean": "BOOLEAN"}


def duck_type(hive):
    """Translates a Hive type (`array<struct<a:string>>`) into DuckDB's (`STRUCT("a" VARCHAR)[]`)."""
    pos = 0

    def parse():
        nonlocal pos
        m = re.compile(r"[a-z]+").match(hive, pos)
        word = m.group(0)
        pos = m.end()
        if word == "array":
            pos += 1  # <
            inner = parse()
            pos += 1  # >
            return inner + "[]"
        if word == "struct":
            pos += 1
            fields = []
            while True:
                m = re.compile(r"[A-Za-z0-9_]+").match(hive, pos)
                name = m.group(0)
                pos = m.end() + 1  # :
                fields.append(f'"{name}" {parse()}')
                sep = hive[pos]
                pos += 1
                if sep == ">":
                    return "STRUCT(" + ", ".join(fields) + ")"
        return PRIMITIVES[word]

    return parse()


def main():
    req = json.load(sys.stdin)
    con = duckdb.connect()
    columns = "{" + ", ".join(f"'{n}': '{duck_type(t)}'" for n, t in req["columns"]) + "}"
    files = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in req["files"]) + "]"
    con.execute(
        f"""CREATE VIEW raw AS SELECT * FROM read_json({files}, format = 'newline_delimited',
              columns = {columns}, filename = true, ignore_errors = true)"""
    )
    # Materialised once: every query of the request reads it, and JSON parsing dominates the run time.
    con.execute(
        f"""CREATE TABLE {req['table']} AS SELECT *, substr(log_time, 1, 10) AS "date" FROM (
              SELECT * EXCLUDE (filename), coalesce(
                nullif(regexp_extract(filename, '/(\\d{{4}}/\\d{{2}}/\\d{{2}}/\\d{{2}}/\\d{{2}})/[^/]*$', 1), ''),
                strftime(make_timestamp(timestamp * 1000), '%Y/%m/%d/%H/%M')) AS log_time
              FROM raw)"""
    )
    parquet_bytes = None
    rollup = req.get("rollup")
    if rollup:
        cols = ", ".join(f'"{n}" {duck_type(t)}' for n, t in rollup["columns"])
        con.execute(f"CREATE TABLE {rollup['table']} ({cols})")
        for sql in rollup["statements"]:
            con.execute(sqlglot.transpile(sql, read="trino", write="duckdb")[0])
        if rollup.get("parquet"):
            out = rollup["parquet"].replace("'", "''")
            con.execute(
                f"COPY {rollup['table']} TO '{out}' (FORMAT PARQUET, PARTITION_BY (hour), COMPRESSION zstd, "
                f"COMPRESSION_LEVEL {int(rollup.get('compression_level', 3))})"
            )
            parquet_bytes = sum(
                os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(rollup["parquet"]) for f in fs
            )
    results = []
    for sql in req["queries"]:
        duck = sqlglot.transpile(sql, read="trino", write="duckdb")[0]
        cur = con.execute(duck)
        columns = [d[0] for d in cur.description]
        # Text values, as Athena's GetQueryResults returns them.
        rows = [[None if v is None else str(v) for v in r] for r in cur.fetchall()]
        results.append({"duckdb": duck, "columns": columns, "rows": rows})
    json.dump({"results": results, "parquet_bytes": parquet_bytes}, sys.stdout)


if __name__ == "__main__":
    main()
