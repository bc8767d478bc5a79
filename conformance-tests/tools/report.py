"""Turns one run's raw results into tables: one per suite (passed, failed, skipped), printed and
written as Markdown, and the exit status of run.sh.

Inputs, in --work: okta.xml, entra.xml, rfc7644.xml, ipsie.xml (pytest JUnit XML) and
scim2-tester.json, scim-sanity-strict.json, scim-sanity-compat.json (tools/third_party.py). A
third-party failure counts unless allowlist.toml names it; our own suites have no allowlist. A
test marked xfail that fails as expected is listed with the skipped ones, its reason prefixed
"expected failure:"; one that passes (strict) is a failure. Exit status 1 when anything counts as
failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@dataclass
class Outcome:
    name: str
    outcome: str  # passed, failed, skipped
    reason: str = ""
    warning: bool = False
    allowed_because: str = ""  # set when an allowlist entry covers a third-party failure


@dataclass
class Suite:
    key: str
    title: str
    third_party: bool
    outcomes: list[Outcome] = field(default_factory=list)
    broken: str = ""  # why the suite produced no results at all

    def count(self, outcome: str) -> int:
        return sum(o.outcome == outcome for o in self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.outcome == "failed" and not o.allowed_because]

    @property
    def allowed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.outcome == "failed" and o.allowed_because]

    @property
    def failed(self) -> bool:
        return bool(self.broken or self.failures)


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reason_of(element: ET.Element) -> str:
    """The first line that explains a pytest failure or skip, without the exception's class."""
    text = element.get("message") or element.text or ""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    for prefix in ("AssertionError: ", "Failed: ", "Skipped: "):
        line = line.removeprefix(prefix)
    return one_line(line)


def read_junit(suite: Suite, path: Path) -> None:
    if not path.exists():
        suite.broken = "the suite did not run (no JUnit report); see the console output"
        return
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if problem is not None:
            suite.outcomes.append(Outcome(name, "failed", reason_of(problem)))
        elif skipped is not None and skipped.get("type") == "pytest.xfail":
            suite.outcomes.append(Outcome(name, "skipped", f"expected failure: {reason_of(skipped)}"))
        elif skipped is not None:
            suite.outcomes.append(Outcome(name, "skipped", reason_of(skipped)))
        else:
            suite.outcomes.append(Outcome(name, "passed"))
    if not suite.outcomes:
        suite.broken = "the suite collected no tests; see the console output"


def read_checker(suite: Suite, path: Path, allowlist: list[dict], checker: str, mode: str | None) -> None:
    if not path.exists():
        suite.broken = "the checker did not run (no results file); see the console output"
        return
    for r in json.loads(path.read_text())["results"]:
        o = Outcome(r["check"], r["outcome"], one_line(r.get("reason", "")), r.get("warning", False))
        if o.outcome == "failed":
            for entry in allowlist:
                if (
                    entry["checker"] == checker
                    and entry.get("mode", mode) == mode
                    and entry["check"] == o.name
                    and re.search(entry.get("reason_matches", ""), r.get("reason", ""))
                ):
                    o.allowed_because = entry["reason"]
                    entry["_used"] = True
                    break
        suite.outcomes.append(o)


def load_allowlist(path: Path) -> list[dict]:
    entries = tomllib.loads(path.read_text()).get("allow", []) if path.exists() else []
    for e in entries:
        missing = {"checker", "check", "reason"} - set(e)
        if missing:
            raise SystemExit(f"{path}: an [[allow]] entry lacks {sorted(missing)}: {e}")
    return entries


def public(url: str) -> str:
    """The target as the report shows it: no credentials, no query string."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def render(suites: list[Suite], target: str, when: str, seed: str, stale: list[dict]) -> tuple[str, str]:
    """The console text and the Markdown of the same report."""
    failed = [s for s in suites if s.failed]
    verdict = "FAILED" if failed else "PASSED"
    md = [
        f"# Conformance report: {verdict}",
        "",
        f"- Date: {when}",
        f"- Target: {target}",
        f"- Checkers: scim2-tester {version('scim2-tester')} (random seed {seed}), scim-sanity {version('scim-sanity')}",
        "- Suites: conformance-tests/suites (see conformance-tests/README.md); allowlist: conformance-tests/allowlist.toml",
        "",
        "| Suite | Passed | Failed | Skipped |",
        "|---|---:|---:|---:|",
    ]
    for s in suites:
        fail = f"{len(s.failures)}" + (f" (+{len(s.allowed)} allowlisted)" if s.allowed else "")
        md.append(f"| {s.title} | {s.count('passed')} | {'did not run' if s.broken else fail} | {s.count('skipped')} |")
    console = [f"Conformance: {verdict} against {target} ({when})"]

    for s in suites:
        md += [
            "",
            f"## {s.title}",
            "",
            "| Passed | Failed | Skipped |",
            "|---:|---:|---:|",
            f"| {s.count('passed')} | {len(s.failures)} | {s.count('skipped')} |",
        ]
        console += [
            "",
            s.title,
            f"  {'passed':>8} {'failed':>8} {'skipped':>8}",
            f"  {s.count('passed'):>8} {len(s.failures):>8} {s.count('skipped'):>8}",
        ]
        if s.broken:
            md += ["", f"**Did not run:** {s.broken}"]
            console.append(f"  DID NOT RUN: {s.broken}")
        sections = [
            ("Failures", [(o.name, o.reason) for o in s.failures]),
            ("Allowlisted failures", [(o.name, f"{o.reason} — allowlisted: {o.allowed_because}") for o in s.allowed]),
            ("Skipped", [(o.name, o.reason) for o in s.outcomes if o.outcome == "skipped"]),
            (
                "Warnings (SHOULD-level findings, not failures)",
                [(o.name, o.reason) for o in s.outcomes if o.outcome == "passed" and o.warning],
            ),
        ]
        for heading, rows in sections:
            if rows:
                md += ["", f"{heading}:", ""] + [f"- `{name}`: {reason}" for name, reason in rows]
                if heading != "Skipped":
                    console += [f"  {heading.split(' (')[0].lower()}:"] + [
                        f"    {name}: {reason}" for name, reason in rows
                    ]
    if stale:
        md += [
            "",
            "## Allowlist entries that matched nothing",
            "",
            *[f"- {e['checker']} `{e['check']}`: {e['reason']}" for e in stale],
        ]
        console += [
            "",
            "allowlist entries that matched nothing (remove them if the check now passes):",
            *[f"  {e['checker']} {e['check']}" for e in stale],
        ]
    return "\n".join(console) + "\n", "\n".join(md) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--target", required=True)
    parser.add_argument("--allowlist", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seed", default="?")
    args = parser.parse_args()

    allowlist = load_allowlist(args.allowlist)
    suites = []
    for key, title in [
        ("okta", "Okta (test_okta.py)"),
        ("entra", "Microsoft Entra ID (test_entra.py)"),
        ("rfc7644", "RFC 7644 / 7643 / 9865 (test_rfc7644.py)"),
        ("ipsie", "OpenID IPSIE AL SCIM profile (test_ipsie.py)"),
    ]:
        suite = Suite(key, title, third_party=False)
        read_junit(suite, args.work / f"{key}.xml")
        suites.append(suite)
    for key, title, checker, mode in [
        ("scim2-tester", "scim2-tester", "scim2-tester", None),
        ("scim-sanity-strict", "scim-sanity (strict)", "scim-sanity", "strict"),
        ("scim-sanity-compat", "scim-sanity (compat)", "scim-sanity", "compat"),
    ]:
        suite = Suite(key, title, third_party=True)
        read_checker(suite, args.work / f"{key}.json", allowlist, checker, mode)
        suites.append(suite)

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    stale = [e for e in allowlist if not e.get("_used")]
    console, markdown = render(suites, public(args.target), when, args.seed, stale)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown)
    print(console, end="")
    print(f"\nreport written to {args.out}")
    return 1 if any(s.failed for s in suites) else 0


if __name__ == "__main__":
    sys.exit(main())
