#!/usr/bin/env python3
"""Agreement check for bench/analyze-vs-duckdb.sh (stdlib only).

usage: compare_peaks.py WAFTUNE_JSON DUCKDB_CSV [TOP]

WAFTUNE_JSON is `waftune analyze --format json --top <all>` output, DUCKDB_CSV the baseline's
`ip,peak_5m` rows. Prints both top-TOP lists by peak 5-minute count, then compares every client.
Exit status 1 on any mismatch.
"""
import csv
import json
import sys


def top(peaks, n):
    return sorted(peaks.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def main():
    wt_path, duck_path = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    with open(wt_path) as f:
        report = json.load(f)
    wt = {c["ip"]: int(c["peak_5m"]) for c in report["clients"]}
    with open(duck_path, newline="") as f:
        duck = {row["ip"]: int(row["peak_5m"]) for row in csv.DictReader(f)}

    wt_top, duck_top = top(wt, n), top(duck, n)
    print(f"  top {n} clients by peak 5-minute count")
    print(f"  {'#':>2}  {'waftune ip':<40} {'peak_5m':>8}   {'duckdb ip':<40} {'peak_5m':>8}")
    for i in range(n):
        a = wt_top[i] if i < len(wt_top) else ("-", 0)
        b = duck_top[i] if i < len(duck_top) else ("-", 0)
        print(f"  {i + 1:>2}  {a[0]:<40} {a[1]:>8}   {b[0]:<40} {b[1]:>8}")

    problems = []
    if report.get("distinct_clients") is not None and report["distinct_clients"] != len(wt):
        problems.append(
            f"waftune JSON lists {len(wt)} clients but distinct_clients = {report['distinct_clients']}"
            " (was --top large enough?)"
        )
    only_wt = sorted(set(wt) - set(duck))
    only_duck = sorted(set(duck) - set(wt))
    if only_wt:
        problems.append(f"{len(only_wt)} clients only in waftune, e.g. {only_wt[:5]}")
    if only_duck:
        problems.append(f"{len(only_duck)} clients only in duckdb, e.g. {only_duck[:5]}")
    diff = sorted(
        ((ip, wt[ip], duck[ip]) for ip in set(wt) & set(duck) if wt[ip] != duck[ip]),
        key=lambda t: -abs(t[1] - t[2]),
    )
    if diff:
        problems.append(
            f"{len(diff)} clients with different peak_5m (ip, waftune, duckdb), e.g. {diff[:5]}"
        )
    if [ip for ip, _ in wt_top] != [ip for ip, _ in duck_top]:
        problems.append(f"top-{n} lists differ")

    print(f"  clients compared: waftune {len(wt)}, duckdb {len(duck)}")
    if problems:
        for p in problems:
            print(f"  MISMATCH: {p}")
        return 1
    print(f"  agreement: OK (top {n} identical, peak_5m equal for all {len(wt)} clients)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
