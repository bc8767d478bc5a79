#!/usr/bin/env bash
# Usage: run.sh BASE_URL TOKEN
# Runs the Okta, Entra, RFC 7644 and IPSIE suites and the third-party checkers (scim2-tester,
# scim-sanity strict and compat) against a SCIM service provider, prints one table per suite and
# writes the same report as Markdown to results/latest.md. Exits non-zero on any failure of our suites and on
# any third-party failure that allowlist.toml does not name.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ $# -ne 2 ]; then
  echo "usage: $0 BASE_URL TOKEN   (e.g. $0 http://127.0.0.1:8080/scim/v2 \"\$TOKEN\")" >&2
  exit 2
fi
export SCIM_BASE_URL="${1%/}" SCIM_TOKEN="$2"
export CONFORMANCE_SEED="${CONFORMANCE_SEED:-7644}"

"$here/setup.sh"
py="$here/.venv/bin/python"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$here"
for suite in okta entra rfc7644 ipsie; do
  echo "== suite $suite"
  # A failing suite is reported below, not here, so the other suites still run.
  "$py" -m pytest "suites/test_$suite.py" -q --tb=short --junitxml="$work/$suite.xml" || true
done
echo "== scim2-tester"
"$py" tools/third_party.py scim2-tester --out "$work/scim2-tester.json" || true
for mode in strict compat; do
  echo "== scim-sanity ($mode)"
  "$py" tools/third_party.py scim-sanity --mode "$mode" --out "$work/scim-sanity-$mode.json" || true
done

echo
"$py" tools/report.py --work "$work" --target "$SCIM_BASE_URL" --allowlist allowlist.toml \
  --seed "$CONFORMANCE_SEED" --out results/latest.md
