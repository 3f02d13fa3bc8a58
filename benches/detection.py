#!/usr/bin/env python3
"""Detection on generated data nobody tuned on: recall per offender class, false positives per
innocent class (stdlib only). Prints the markdown table of docs/policies.md.

usage: detection.py WAFTUNE CONFIG POLICIES DATASET...

Each DATASET is the `--out` directory of `waftune generate` (its `AWSLogs/` and `truth.json`).
For every dataset it runs `waftune propose --dry-run --format json` with the given configuration
and policies, and counts an address as proposed when a `block` finding's key contains it (so a
/24 proposed as a whole counts every address inside it, innocent or not). As a reference it also
judges the AWS Security Automations HTTP-flood rule: an address is caught when it sent at least
20 requests in some minute (`waftune analyze --top 0`, `peak_1m >= 20`).

Recall is of the addresses of each offender class; false positives are innocent addresses
proposed (browsers, verified crawlers, uptime monitors), out of how many there were.
"""
import datetime
import ipaddress
import json
import os
import subprocess
import sys

OFFENDERS = ["scraper", "path_scanner", "fake_crawler", "credential_stuffer"]
INNOCENTS = ["browser", "verified_crawler", "monitor"]
PLURAL = {"scraper": "scrapers", "path_scanner": "path scanners", "fake_crawler": "fake crawlers",
          "credential_stuffer": "credential stuffers", "browser": "browsers",
          "verified_crawler": "verified crawlers", "monitor": "monitors"}
REFERENCE_PER_MINUTE = 20


def run(args):
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def blocked_keys(waftune, config, policies, logs, now):
    report = run([waftune, "propose", "-q", "-c", config, "--policies", policies, "--logs", logs,
                  "--dry-run", "--init-ledger", "--format", "json", "--now", now])
    hosts, nets = set(), []
    for f in report["findings"]:
        if f.get("verdict") != "block":
            continue
        net = ipaddress.ip_network(f["key"], strict=False)
        if net.num_addresses == 1:
            hosts.add(net.network_address)
        else:
            nets.append(net)
    return lambda ip: ip in hosts or any(ip in n for n in nets if n.version == ip.version)


def reference(waftune, logs):
    report = run([waftune, "analyze", "-q", "--logs", logs, "--top", "0", "--format", "json"])
    caught = {ipaddress.ip_address(c["ip"]) for c in report["clients"]
              if c["peak_1m"] >= REFERENCE_PER_MINUTE}
    return lambda ip: ip in caught


def score(truth, proposed):
    by_class = {}
    for actor in truth["actors"]:
        total, hit = by_class.get(actor["class"], (0, 0))
        ips = [ipaddress.ip_address(i) for i in actor["ips"]]
        by_class[actor["class"]] = (total + len(ips), hit + sum(1 for i in ips if proposed(i)))
    return by_class


def cell(by_class, cls):
    total, hit = by_class.get(cls, (0, 0))
    return f"{hit:,}/{total:,}"


def dataset_name(truth):
    """`seed 11, 550,000` for a day, `week, seed 777` for a week (as in docs/policies.md)."""
    span = datetime.datetime.fromisoformat(truth["end"].replace("Z", "+00:00")) - \
        datetime.datetime.fromisoformat(truth["start"].replace("Z", "+00:00"))
    if span == datetime.timedelta(days=1):
        records = sum(a["requests"] for a in truth["actors"])
        return f"seed {truth['seed']}, {records:,}"
    days = span / datetime.timedelta(days=1)
    return f"{'week' if days == 7 else f'{days:g} days'}, seed {truth['seed']}"


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    waftune, config, policies = sys.argv[1:4]
    head = ["data", "rule"] + [PLURAL[c] for c in OFFENDERS] + \
        [f"{PLURAL[c]} proposed" for c in INNOCENTS]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for d in sys.argv[4:]:
        with open(os.path.join(d, "truth.json")) as f:
            truth = json.load(f)
        logs = os.path.join(d, "AWSLogs")
        name = dataset_name(truth)
        for rule, proposed in [
            ("policies", blocked_keys(waftune, config, policies, logs, truth["end"])),
            (f">= {REFERENCE_PER_MINUTE}/min", reference(waftune, logs)),
        ]:
            by_class = score(truth, proposed)
            row = [name, rule] + [cell(by_class, c) for c in OFFENDERS + INNOCENTS]
            print("| " + " | ".join(row) + " |", flush=True)
            name = ""


if __name__ == "__main__":
    main()
