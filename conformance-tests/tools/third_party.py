"""Runs one third-party checker against SCIM_BASE_URL with SCIM_TOKEN and writes its verdicts as
JSON for report.py: {"checker", "mode", "results": [{"check", "outcome", "reason", "warning"}]}.

outcome is passed, failed or skipped. A checker's SHOULD-level findings (scim2-tester DEVIATION,
scim-sanity warn) count as passed and are kept as warnings. The token travels in the environment,
never on a command line; CONFORMANCE_SEED (default 7644) seeds the random values checkers generate.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import sys
import traceback


def one_line(text) -> str:
    return " ".join(str(text or "").split())


def run_scim2_tester(base_url: str, token: str) -> list[dict]:
    # Documented use: a scim2-client over httpx2, handed to check_server, which discovers the
    # server and checks every resource type it publishes.
    from httpx2 import Client
    from scim2_client.engines.httpx2 import SyncSCIMClient
    from scim2_tester import Status, check_server

    outcome = {
        Status.SUCCESS: ("passed", False),
        Status.COMPLIANT: ("passed", False),
        Status.ACCEPTABLE: ("passed", False),
        Status.DEVIATION: ("passed", True),
        Status.ERROR: ("failed", False),
        Status.CRITICAL: ("failed", False),
        Status.SKIPPED: ("skipped", False),
    }
    http = Client(base_url=base_url.rstrip("/") + "/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    results = []
    for r in check_server(SyncSCIMClient(http)):
        verdict, warning = outcome[r.status]
        check = r.title or "?"
        if r.resource_type:
            check += f" ({r.resource_type})"
        results.append(
            {
                "check": check,
                "outcome": verdict,
                "warning": warning,
                "reason": one_line(f"{r.status.name}: {r.reason}" if r.reason else r.status.name),
            }
        )
    return results


def run_scim_sanity(base_url: str, token: str, strict: bool) -> list[dict]:
    # scim_sanity.probe.runner.run_probe is the entry point behind `scim-sanity probe`; with
    # json_output it prints the JSON report on stdout.
    from scim_sanity.probe.runner import run_probe

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run_probe(base_url, token=token, json_output=True, strict=strict, accept_side_effects=True, timeout=30)
    report = json.loads(out.getvalue())
    outcome = {
        "pass": ("passed", False),
        "warn": ("passed", True),
        "skip": ("skipped", False),
        "fail": ("failed", False),
        "error": ("failed", False),
    }
    results = []
    for r in report.get("results", []):
        verdict, warning = outcome.get(r.get("status"), ("failed", False))
        phase = one_line(r.get("phase"))
        results.append(
            {
                "check": f"{phase} / {r.get('name')}" if phase else r.get("name"),
                "outcome": verdict,
                "warning": warning,
                "reason": one_line(r.get("message") or r.get("status")),
            }
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checker", choices=["scim2-tester", "scim-sanity"])
    parser.add_argument("--mode", choices=["strict", "compat"], default=None, help="scim-sanity mode")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    base_url, token = os.environ["SCIM_BASE_URL"], os.environ["SCIM_TOKEN"]
    # scim2-tester fills attributes with random values (booleans, choices); a fixed seed makes a
    # verdict reproducible. Change CONFORMANCE_SEED to explore other values.
    random.seed(int(os.environ.get("CONFORMANCE_SEED", "7644")))

    try:
        if args.checker == "scim2-tester":
            results = run_scim2_tester(base_url, token)
        else:
            results = run_scim_sanity(base_url, token, strict=args.mode != "compat")
    except Exception as exc:  # the checker itself broke: one failure that says so
        traceback.print_exc()
        results = [
            {
                "check": "checker run",
                "outcome": "failed",
                "warning": False,
                "reason": one_line(f"{type(exc).__name__}: {exc}"),
            }
        ]

    with open(args.out, "w") as f:
        json.dump({"checker": args.checker, "mode": args.mode, "results": results}, f, indent=1)
    failed = sum(r["outcome"] == "failed" for r in results)
    name = args.checker + (f" ({args.mode})" if args.mode else "")
    print(f"{name}: {len(results)} checks, {failed} failed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
