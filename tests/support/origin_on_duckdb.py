"""Runs Athena (Trino) queries on DuckDB over local ALB or CloudFront access logs, for the origin
equivalence tests (tests/it/athena_origin.rs).

Reads one JSON object on stdin:
  {"kind": "alb" | "cloudfront", "table": name, "columns": [[name, hive_type], ...],
   "regex": alb_input_regex, "files": [...], "queries": [trino_sql, ...]}
and writes {"results": [{"duckdb": sql, "columns": [...], "rows": [[text or null, ...], ...]}, ...]}.

The table is built as Athena's SerDe builds it: ALB lines must match the DDL's `input.regex` as a
whole (RegexSerDe; a line that does not match is all NULL), CloudFront lines are split at tabs after
the two header lines; each value is cast to its column's Hive type (NULL when it does not cast). The
`day` partition comes from the S3 key (`.../yyyy/MM/dd/file`).
"""

import gzip
import json
import os
import re
import sys
import tempfile

import duckdb
import sqlglot

DUCK = {"string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE", "float": "REAL", "date": "DATE"}


def cast(value, hive):
    if value is None:
        return None
    if hive in ("int", "bigint"):
        try:
            return int(value)
        except ValueError:
            return None
    if hive in ("double", "float"):
        try:
            return float(value)
        except ValueError:
            return None
    if hive == "date":
        return value if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
    return value


def lines(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        for line in f:
            yield line.rstrip("\r\n")


def main():
    req = json.load(sys.stdin)
    columns = req["columns"]
    regex = re.compile(req.get("regex") or "x")
    rows = []
    for path in req["files"]:
        m = re.search(r"/(\d{4}/\d{2}/\d{2})/[^/]*$", path)
        day = m.group(1) if m else None
        for line in lines(path):
            if req["kind"] == "alb":
                m = regex.fullmatch(line)
                values = list(m.groups()[: len(columns)]) if m else [None] * len(columns)
            else:
                if line.startswith("#"):
                    continue
                values = [None if v == "-" else v for v in line.split("\t")][: len(columns)]
                values += [None] * (len(columns) - len(values))
            typed = [cast(v, t) for v, (_, t) in zip(values, columns)]
            if day is None and typed[1]:
                day = (typed[0] if req["kind"] == "cloudfront" else typed[1][:10]).replace("-", "/")
            rows.append(typed + [day])
    con = duckdb.connect()
    names = [n for n, _ in columns] + ["day"]
    types = [DUCK[t] for _, t in columns] + ["VARCHAR"]
    # Through a JSON file: DuckDB's executemany takes minutes for tens of thousands of rows.
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for r in rows:
            f.write(json.dumps(dict(zip(names, r))) + "\n")
    spec = "{" + ", ".join(f"'{n}': '{t}'" for n, t in zip(names, types)) + "}"
    con.execute(f"CREATE TABLE {req['table']} AS SELECT * FROM read_json('{f.name}', columns = {spec}, format = 'newline_delimited')")
    os.unlink(f.name)
    results = []
    for sql in req["queries"]:
        duck = sqlglot.transpile(sql, read="trino", write="duckdb")[0]
        cur = con.execute(duck)
        names = [d[0] for d in cur.description]
        out = [[None if v is None else str(v) for v in r] for r in cur.fetchall()]
        results.append({"duckdb": duck, "columns": names, "rows": out})
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
