#!/usr/bin/env python3
"""Reads bench/budgets.toml for bench/cost-gate.sh and compares measured figures with it.

    bench/cost_gate.py settings BUDGETS            shell assignments of the measuring conditions
    bench/cost_gate.py compare BUDGETS MEASURED    the table; exit status 1 when a budget is exceeded

MEASURED holds one line per operation: its name and the server's instructions per operation.
An operation fails the gate when it costs more than its budget plus the tolerance; one that costs
less than its budget minus the tolerance is reported (lower its budget) but passes. Python 3.11
or later (tomllib), standard library only.
"""
import shlex
import sys
import tomllib

CONDITIONS = ("profile", "users", "requests", "warm", "concurrency", "seed", "tolerance_percent")


def load(path):
    with open(path, "rb") as f:
        budgets = tomllib.load(f)
    conditions = budgets.get("conditions", {})
    missing = [key for key in CONDITIONS if key not in conditions]
    if missing:
        sys.exit(f"{path}: [conditions] lacks {', '.join(missing)}")
    operations = budgets.get("operation", {})
    if not operations:
        sys.exit(f"{path}: no [operation.NAME] tables")
    for name, op in operations.items():
        if not isinstance(op.get("instructions"), int) or op["instructions"] <= 0:
            sys.exit(f"{path}: operation {name}: instructions must be a positive integer")
        if not str(op.get("reason", "")).strip():
            sys.exit(f"{path}: operation {name}: every budget needs a reason (where the figure came from)")
    return conditions, operations


def settings(path):
    conditions, operations = load(path)
    for key in CONDITIONS:
        print(f"{key}={shlex.quote(str(conditions[key]))}")
    print(f"operations={shlex.quote(' '.join(operations))}")


def compare(path, measured_path):
    conditions, operations = load(path)
    tolerance = conditions["tolerance_percent"]
    measured = {}
    with open(measured_path) as f:
        for line in f:
            if line.strip():
                name, value = line.split()
                measured[name] = int(value)
    rows, over, under = [], [], []
    for name, op in operations.items():
        budget = op["instructions"]
        if name not in measured:
            rows.append((name, f"{budget:,}", "not measured", "", "FAIL"))
            over.append(name)
            continue
        change = (measured[name] - budget) * 100 / budget
        if change > tolerance:
            verdict = "FAIL"
            over.append(name)
        elif change < -tolerance:
            verdict = "below budget"
            under.append(name)
        else:
            verdict = "ok"
        rows.append((name, f"{budget:,}", f"{measured[name]:,}", f"{change:+.1f} %", verdict))
    header = ("operation", "budget", "measured", "change", "")
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(cell.ljust(w) if i in (0, 4) else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
    print(f"(server instructions per operation; a rise of more than {tolerance} % over the budget fails)")
    for name in under:
        print(f"{name} costs more than {tolerance} % less than its budget: lower it in {path} to "
              f"{measured[name]} with a reason, so that the gate guards the gain")
    if over:
        print(f"cost gate FAILED: {', '.join(over)} over budget. Make it cheaper, or, when the cost is "
              f"worth it, raise the budget in {path} with a reason the review can weigh")
        return 1
    print("cost gate passed")
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "settings":
        settings(argv[2])
        return 0
    if len(argv) == 4 and argv[1] == "compare":
        return compare(argv[2], argv[3])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
