#!/usr/bin/env python3
"""Checks Roster's performance targets against one benchmark run's JSON Lines. Usage:

    bench/targets.py RESULTS.jsonl

RESULTS.jsonl holds what `roster-bench --json` appended, one `"kind": "run"` object per backend
and size (bench/run.sh tags them `backend=…` and `size=…`), and the `"kind": "probe"` objects
bench/run.sh adds with each backend's single-row commit rate. Prints a Markdown "## Targets"
section to stdout: one row per target and place, with the figures, their ratio, the goal and
"met", "not met" or "not measured". Standard library only; bench/README.md explains the targets.
"""
import json
import sys

# Reads against the floor: a request that only borrows a pooled connection and runs SELECT 1.
READS_VS_SELECT_1 = [("get", 0.50), ("filter-username", 0.40), ("filter-externalid", 0.40)]
CREATE_VS_COMMITS = 2.0
FILTER_P99_GROWTH = 1.5
DEEP_PAGE_VS_WALK = 2.0
SQLITE_RSS_LIMIT_MIB = 150
SYNC_USERS, SYNC_SECONDS, SYNC_CONCURRENCY = 100_000, 60, 8
POSTGRES_VS_SQLITE = 0.50
# Not a measurement of the server: the tool against its own trivial server.
NOT_SERVER = {"ceiling"}
# Yardsticks rather than scenarios: select-1 measures the HTTP stack and the database's round
# trip that the other scenarios are compared with, not Roster's work.
YARDSTICKS = {"select-1"}


def load(path):
    """Runs keyed by (backend, size) in the order backends ran and sizes grew, commit rates by
    backend, and the backends in the order they ran."""
    runs, probes, backends = {}, {}, []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                print(f"{path}:{number}: not JSON ({e}), ignored", file=sys.stderr)
                continue
            if record.get("kind") == "probe":
                backend = record.get("backend")
                probes[backend] = record.get("commits_per_sec")
            elif record.get("kind") == "run":
                tags = record.get("tags") or {}
                backend, size = tags.get("backend"), str(tags.get("size", ""))
                if not backend or not size.isdigit():
                    print(f"{path}:{number}: run without backend and size tags, ignored", file=sys.stderr)
                    continue
                runs[(backend, int(size))] = record
            else:
                continue
            if backend not in backends:
                backends.append(backend)
    ordered = sorted(runs, key=lambda key: (backends.index(key[0]), key[1]))
    return {key: runs[key] for key in ordered}, probes, backends


def rows_of(run):
    return {row["name"]: row for row in run.get("rows", [])} if run else {}


def why_missing(rows, name):
    """Why row `name` has no figures, or None when it has."""
    row = rows.get(name)
    if row is None:
        return f"{name} did not run"
    if row.get("skipped"):
        return f"{name} skipped: {row['skipped']}"
    if row.get("failed"):
        return f"{name} could not run: {row['failed']}"
    if not row.get("requests"):
        return f"{name} made no requests"
    if row.get("errors", 0) >= row.get("ops", 0):
        return f"every {name} operation failed"
    return None


def errors(*named_rows):
    """A note on failed operations in the rows the figures come from."""
    notes = [f"{row['name']} had {row['errors']} errors" for row in named_rows if row.get("errors")]
    return f" ({'; '.join(notes)})" if notes else ""


def where(backend, size):
    return f"{backend}, {size} users"


class Table:
    def __init__(self):
        self.rows = []

    def judged(self, target, place, figures, ratio, goal, met):
        ratio = "-" if ratio is None else f"{ratio:.2f}"
        self.rows.append((target, place, figures, ratio, goal, "met" if met else "not met"))

    def not_measured(self, target, place, goal, reason):
        self.rows.append((target, place, reason, "-", goal, "not measured"))

    def markdown(self):
        out = [
            "## Targets",
            "",
            "Computed by `bench/targets.py` from the runs above (see bench/README.md, \"Targets\"). "
            "Throughput ratios compare req/s measured in the same run; latencies are in ms.",
            "",
            "| target | where | measured | ratio | goal | result |",
            "|---|---|---|--:|---|---|",
        ]
        for row in self.rows:
            out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        return "\n".join(out) + "\n"


def reads_vs_select_1(table, runs):
    for (backend, size), run in runs.items():
        rows = rows_of(run)
        for name, goal in READS_VS_SELECT_1:
            target, goal_text = f"{name} ÷ select-1 req/s", f"≥ {goal:.2f}"
            missing = why_missing(rows, name) or why_missing(rows, "select-1")
            if missing:
                table.not_measured(target, where(backend, size), goal_text, missing)
                continue
            read, floor = rows[name], rows["select-1"]
            ratio = read["req_per_sec"] / floor["req_per_sec"]
            figures = f"{read['req_per_sec']:.0f} ÷ {floor['req_per_sec']:.0f} req/s{errors(read, floor)}"
            table.judged(target, where(backend, size), figures, ratio, goal_text, ratio >= goal)


def create_vs_commits(table, runs, probes):
    target, goal_text = "create req/s ÷ single-row commits/s", f"≥ {CREATE_VS_COMMITS:.0f}"
    for (backend, size), run in runs.items():
        rows = rows_of(run)
        commits = probes.get(backend)
        missing = why_missing(rows, "create") or (None if commits else "no commit rate (roster probe-commits)")
        if missing:
            table.not_measured(target, where(backend, size), goal_text, missing)
            continue
        create = rows["create"]
        ratio = create["req_per_sec"] / commits
        figures = f"{create['req_per_sec']:.0f} req/s ÷ {commits:.0f} commits/s{errors(create)}"
        if not why_missing(rows, "select-1"):
            # What meeting the goal would take, next to the trivial handler of the same run: no
            # request that parses, validates and writes a user is served faster than SELECT 1.
            needed = CREATE_VS_COMMITS * commits
            floor = rows["select-1"]["req_per_sec"]
            figures += f" (the goal is {needed:.0f} req/s = {needed / floor:.2f} × select-1's {floor:.0f})"
        table.judged(target, where(backend, size), figures, ratio, goal_text, ratio >= CREATE_VS_COMMITS)


def growth(table, runs, backends):
    """What changes from the smallest size to the largest, per backend."""
    for backend in backends:
        sizes = sorted(size for b, size in runs if b == backend)
        if not sizes:
            continue
        small, large = sizes[0], sizes[-1]
        small_rows, large_rows = rows_of(runs[(backend, small)]), rows_of(runs[(backend, large)])

        target, goal_text = "filter-username p99, largest ÷ smallest size", f"≤ {FILTER_P99_GROWTH:.2f}"
        place = f"{backend}, {small} → {large} users"
        missing = "needs two sizes" if small == large else None
        missing = missing or why_missing(small_rows, "filter-username") or why_missing(large_rows, "filter-username")
        if missing:
            table.not_measured(target, place, goal_text, missing)
        else:
            before, after = small_rows["filter-username"], large_rows["filter-username"]
            ratio = after["p99_ms"] / before["p99_ms"]
            figures = f"{after['p99_ms']:.2f} ÷ {before['p99_ms']:.2f} ms{errors(before, after)}"
            table.judged(target, place, figures, ratio, goal_text, ratio <= FILTER_P99_GROWTH)

        for quantile in ("p50", "p99"):
            target = f"list-cursor-deep ÷ list-cursor {quantile}"
            goal_text = f"≤ {DEEP_PAGE_VS_WALK:.2f}"
            missing = why_missing(large_rows, "list-cursor-deep") or why_missing(large_rows, "list-cursor")
            if missing:
                table.not_measured(target, where(backend, large), goal_text, missing)
                continue
            deep, walk = large_rows["list-cursor-deep"], large_rows["list-cursor"]
            key = f"{quantile}_ms"
            ratio = deep[key] / walk[key]
            figures = f"{deep[key]:.2f} ÷ {walk[key]:.2f} ms{errors(deep, walk)}"
            table.judged(target, where(backend, large), figures, ratio, goal_text, ratio <= DEEP_PAGE_VS_WALK)


def sqlite_memory(table, runs):
    target, goal_text = "server RSS peak at the largest size", f"< {SQLITE_RSS_LIMIT_MIB} MiB on sqlite"
    sizes = sorted(size for b, size in runs if b == "sqlite")
    if not sizes:
        table.not_measured(target, "sqlite", goal_text, "sqlite did not run")
        return
    peak_kb = runs[("sqlite", sizes[-1])].get("server_rss_peak_kb")
    if peak_kb is None:
        table.not_measured(target, where("sqlite", sizes[-1]), goal_text, "server memory unknown (--server-pid)")
    else:
        mib = peak_kb / 1024
        table.judged(target, where("sqlite", sizes[-1]), f"{mib:.1f} MiB", None, goal_text, mib < SQLITE_RSS_LIMIT_MIB)


def entra_sync(table, runs):
    target = "entra-sync wall time"
    goal_text = f"< {SYNC_SECONDS} s for {SYNC_USERS} users, sqlite, concurrency {SYNC_CONCURRENCY}"
    found = False
    for (backend, size), run in runs.items():
        rows = rows_of(run)
        if "entra-sync" not in rows:
            continue
        found = True
        place = where(backend, size)
        missing = why_missing(rows, "entra-sync")
        if missing:
            table.not_measured(target, place, goal_text, missing)
            continue
        sync = rows["entra-sync"]
        wanted, done, seconds = run.get("sync_users"), sync["ops"], sync["elapsed_s"]
        concurrency = run.get("concurrency")
        figures = f"{done} users in {seconds:.1f} s at concurrency {concurrency}{errors(sync)}"
        if done < (wanted or 0):
            figures += f", stopped by --max-time before {wanted}"
        if backend != "sqlite":
            table.not_measured(target, place, goal_text, f"{figures}; the target is for sqlite")
        elif concurrency != SYNC_CONCURRENCY:
            table.not_measured(target, place, goal_text, f"{figures}; the target is at concurrency {SYNC_CONCURRENCY}")
        elif wanted != SYNC_USERS:
            table.not_measured(target, place, goal_text, f"{figures}; the target is for {SYNC_USERS} users")
        elif done < wanted and seconds < SYNC_SECONDS:
            table.not_measured(target, place, goal_text, figures)
        else:
            table.judged(target, place, figures, None, goal_text, done == wanted and seconds < SYNC_SECONDS)
    if not found:
        table.not_measured(target, "-", goal_text, "entra-sync did not run")


def postgres_vs_sqlite(table, runs):
    goal_text = f"≥ {POSTGRES_VS_SQLITE:.2f}"
    sizes = sorted(size for b, size in runs if b == "sqlite" and ("postgres", size) in runs)
    if not sizes:
        table.not_measured("postgres ÷ sqlite req/s", "-", goal_text, "no size ran on both backends")
        return
    for size in sizes:
        sqlite, postgres = rows_of(runs[("sqlite", size)]), rows_of(runs[("postgres", size)])
        for name in sqlite:
            if name in NOT_SERVER | YARDSTICKS or why_missing(sqlite, name) or why_missing(postgres, name):
                continue
            ratio = postgres[name]["req_per_sec"] / sqlite[name]["req_per_sec"]
            figures = (
                f"{postgres[name]['req_per_sec']:.0f} ÷ {sqlite[name]['req_per_sec']:.0f} req/s"
                f"{errors(postgres[name], sqlite[name])}"
            )
            table.judged(f"postgres ÷ sqlite req/s: {name}", f"{size} users", figures, ratio, goal_text,
                         ratio >= POSTGRES_VS_SQLITE)


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    runs, probes, backends = load(argv[1])
    table = Table()
    reads_vs_select_1(table, runs)
    create_vs_commits(table, runs, probes)
    growth(table, runs, backends)
    sqlite_memory(table, runs)
    entra_sync(table, runs)
    postgres_vs_sqlite(table, runs)
    sys.stdout.write(table.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
