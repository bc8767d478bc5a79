#!/usr/bin/env python3
"""Summarises bench/compare.sh's JSON Lines: one Markdown table per backend and concurrency, one
row per scenario, with the median over rounds of req/s, p50 and p99 for the builds tagged
`build=before` and `build=after`, and after ÷ before for req/s. Usage:

    bench/compare.py RESULTS.jsonl

Standard library only.
"""
import json
import statistics
import sys
from collections import defaultdict


def load(path):
    """Figures keyed by (backend, concurrency, scenario, build): lists over rounds of
    (req/s, p50, p99); backends, concurrencies and scenarios in the order they ran."""
    figures = defaultdict(list)
    order = {"backend": [], "concurrency": [], "scenario": []}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            if record.get("kind") != "run":
                continue
            tags = record.get("tags", {})
            backend, build = tags.get("backend"), tags.get("build")
            concurrency = int(tags.get("concurrency", record.get("concurrency", 0)))
            for key, value in (("backend", backend), ("concurrency", concurrency)):
                if value not in order[key]:
                    order[key].append(value)
            for row in record.get("rows", []):
                if row.get("req_per_sec") is None:
                    continue
                name = row["name"]
                if name not in order["scenario"]:
                    order["scenario"].append(name)
                figures[(backend, concurrency, name, build)].append(
                    (row["req_per_sec"], row.get("p50_ms"), row.get("p99_ms"))
                )
    return figures, order


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def cell(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def main(path):
    figures, order = load(path)
    for backend in order["backend"]:
        for concurrency in order["concurrency"]:
            print(f"## {backend}, concurrency {concurrency}\n")
            print("| scenario | req/s before | req/s after | after ÷ before | p50 ms before | p50 ms after "
                  "| p99 ms before | p99 ms after | rounds |")
            print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
            for scenario in order["scenario"]:
                runs = {b: figures.get((backend, concurrency, scenario, b), []) for b in ("before", "after")}
                if not runs["before"] and not runs["after"]:
                    continue
                m = {b: [median([r[i] for r in runs[b]]) for i in range(3)] for b in runs}
                ratio = m["after"][0] / m["before"][0] if m["after"][0] and m["before"][0] else None
                print(f"| {scenario} | {cell(m['before'][0])} | {cell(m['after'][0])} | {cell(ratio, 2)} "
                      f"| {cell(m['before'][1], 2)} | {cell(m['after'][1], 2)} | {cell(m['before'][2], 2)} "
                      f"| {cell(m['after'][2], 2)} | {min(len(runs['before']), len(runs['after']))} |")
            print()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
