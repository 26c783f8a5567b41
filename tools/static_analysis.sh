#!/usr/bin/env bash
# Static analysis of contracts/OreLotRegistry.sol with Slither and solhint, reproducibly and off the
# project's environments: both tools are installed (pinned) under $WORK, never into .venv or the
# project's package.json.
#
#     tools/static_analysis.sh            # prints every finding; exits 1 on a High/Medium one
#                                         # that docs/security.md does not list as reviewed
#
# Slither compiles the committed standard-JSON input (provenance/chain/artifacts/standard-input.json:
# sources inlined, compiler settings pinned) with the repository's own offline compiler, tools/solcjs
# (the npm solc build). Only the output selection is widened, to the AST and source maps Slither
# reads. crytic-compile's command line cannot do this (`--solc-standard-json` builds its own input
# that names files instead of inlining them, which solc-js cannot resolve), so its Python API is used.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${STATIC_ANALYSIS_DIR:-/tmp/provenance-static-analysis}"
SLITHER_VERSION="0.11.6"
CRYTIC_COMPILE_VERSION="0.4.2"
SOLHINT_VERSION="6.2.4"

mkdir -p "$WORK"
if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
fi
"$WORK/venv/bin/pip" install --quiet "slither-analyzer==$SLITHER_VERSION" "crytic-compile==$CRYTIC_COMPILE_VERSION"
if [ ! -x "$WORK/node/node_modules/.bin/solhint" ]; then
  mkdir -p "$WORK/node"
  (cd "$WORK/node" && npm init -y >/dev/null && npm install --no-audit --no-fund "solhint@$SOLHINT_VERSION" >/dev/null)
fi

echo "== slither $SLITHER_VERSION"
slither_status=0
"$WORK/venv/bin/python" - "$ROOT" <<'PY' || slither_status=$?
import inspect
import json
import re
import sys
from pathlib import Path

from crytic_compile import CryticCompile
from crytic_compile.platform.solc_standard_json import SolcStandardJson
from slither import Slither
from slither.detectors import all_detectors
from slither.detectors.abstract_detector import AbstractDetector

root = Path(sys.argv[1])
standard_input = json.loads((root / "provenance/chain/artifacts/standard-input.json").read_text())
standard_input["settings"]["outputSelection"] = {
    "*": {"*": ["abi", "metadata", "devdoc", "userdoc", "evm.bytecode", "evm.deployedBytecode"], "": ["ast"]}
}
slither = Slither(CryticCompile(SolcStandardJson(standard_input), solc=str(root / "tools/solcjs")))
for _, detector in inspect.getmembers(all_detectors, inspect.isclass):
    if issubclass(detector, AbstractDetector) and detector is not AbstractDetector:
        slither.register_detector(detector)
findings = [finding for results in slither.run_detectors() for finding in results]

# docs/security.md lists each reviewed High/Medium finding as `check` in a table row, with its file
reviewed = set(re.findall(r"^\| `([a-z0-9-]+)` \| `([^`]+)`", (root / "docs/security.md").read_text(), re.M))
unreviewed = 0
order = {"High": 0, "Medium": 1, "Low": 2, "Informational": 3, "Optimization": 4}
for finding in sorted(findings, key=lambda f: (order.get(f["impact"], 5), f["check"])):
    first = finding["description"].strip().splitlines()[0]
    where = next(iter(re.findall(r"\(([^()#]+\.sol)#", first)), "?")
    where = where.split("node_modules/")[-1]
    mark = ""
    if finding["impact"] in ("High", "Medium"):
        if (finding["check"], where) in reviewed:
            mark = "  [reviewed: docs/security.md]"
        else:
            mark = "  [NOT REVIEWED]"
            unreviewed += 1
    print(f"{finding['impact']:<13} {finding['confidence']:<6} {finding['check']:<28} {first[:160]}{mark}")
counts: dict[str, int] = {}
for finding in findings:
    counts[finding["impact"]] = counts.get(finding["impact"], 0) + 1
print(f"slither: {len(findings)} findings {counts}; {unreviewed} High/Medium not reviewed")
sys.exit(1 if unreviewed else 0)
PY

echo "== solhint $SOLHINT_VERSION (solhint:recommended): warnings per rule, then any error"
config="$WORK/solhint.json"
echo '{"extends": "solhint:recommended"}' > "$config"
solhint=("$WORK/node/node_modules/.bin/solhint" --config "$config" --disc contracts/OreLotRegistry.sol)
(cd "$ROOT" && "${solhint[@]}" || true) | awk '$2 == "warning" || $2 == "error" {print $2, $NF}' | sort | uniq -c
solhint_status=0
(cd "$ROOT" && "${solhint[@]}" --quiet) || solhint_status=$?
echo "slither exit $slither_status, solhint exit $solhint_status"
[ "$slither_status" -eq 0 ] && [ "$solhint_status" -eq 0 ]
