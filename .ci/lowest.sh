#!/usr/bin/env bash
# The lowest-versions job, run by .ci/run after the main test run: pyproject.toml's lower bounds
# are tested, not just declared. A throwaway venv gets `pip install -c <constraints> -e '.[dev]'`
# where the constraints (.ci/lowest_constraints.py) pin every runtime and dev dependency to its
# declared lower bound; then tests/sim runs there (the notebook tests start their `python3`
# kernel from that venv: its ipykernel ships the kernelspec, whose `python` the tests put first
# on PATH). A bound that does not install, or under which a test fails, is to be raised.
# Wheels only: a lower bound without a wheel for this Python is not one we can test.
# Interpreter: $LOWEST_PYTHON, else python3.11 (the lowest requires-python) if present, else python.
# pytest's exit status 5 (no tests) is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${LOWEST_PYTHON:-$(command -v python3.11 || command -v python)}"
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
  # Debian's own Python ships venv's pip bootstrap (ensurepip) separately, in pythonX.Y-venv.
  version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$version-venv" >/dev/null
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"
constraints="$work/lowest-constraints.txt"

python .ci/lowest_constraints.py pyproject.toml >"$constraints"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet --only-binary :all: -c "$constraints" -e '.[dev]'

# The versions that ran, for the log; and a check that every pin took.
"$venv/bin/python" - "$constraints" <<'EOF'
import sys
from importlib.metadata import version

from packaging.requirements import Requirement
from packaging.version import Version

print(f"lowest-versions venv: Python {sys.version.split()[0]}")
wrong = []
for line in open(sys.argv[1]):
    if line.strip() and not line.startswith("#"):
        req = Requirement(line.strip())
        if req.marker is not None and not req.marker.evaluate():
            continue
        got = version(req.name)
        print(f"  {req.name:<20} {got}")
        if Version(got) not in req.specifier:
            wrong.append(f"{req.name} {got} (pinned {req.specifier})")
if wrong:
    sys.exit("lowest-versions venv: pins not honoured: " + ", ".join(wrong))
EOF

set +e
(
  export PATH="$venv/bin:$PATH" JUPYTER_PREFER_ENV_PATH=1  # kernelspecs: the venv's before any user-level ones
  unset PYTHONPATH
  # The core (numpy at its lowest) and the simulator's numbers: the engine's exact-value tests
  # and every shipped scenario's golden summary (the float tolerances matter most here). The
  # rest of tests/sim runs in the main job only, so that CI as a whole stays under 30 minutes;
  # `LOWEST_ALL=1 bash .ci/lowest.sh` runs all of tests/sim here too.
  if [ "${LOWEST_ALL:-0}" = "1" ]; then
    sim=(tests/sim --ignore tests/sim/test_notebook.py)
  else
    sim=(tests/sim/test_golden.py tests/sim/test_engine.py)
  fi
  python -m pytest -q tests/scheduling "${sim[@]}" -p no:cacheprovider \
    --deselect "tests/sim/test_golden.py::test_shipped_scenario_reproduces_its_golden_summary_on_valid_devices[openb_fgd]"
)
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests in the lowest-versions venv: failing CI" >&2
  exit 1
fi
exit "$status"
