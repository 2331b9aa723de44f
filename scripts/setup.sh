#!/usr/bin/env bash
# Everything a fresh machine needs, from this repository's own files: a venv with the pinned requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch==2.13.0 is in requirements.txt, so the CPU wheel is chosen in the same resolve as everything else.
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
echo "setup: ok ($(.venv/bin/python --version))"
