#!/usr/bin/env bash
# Everything a fresh machine needs, from this repository's own files: system packages (WordNet, apertium for
# offline augmentation), a venv with the pinned requirements, and the NLTK WordNet folder built from Debian's.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
APT_PACKAGES=(wordnet-base wordnet-sense-index apertium apertium-eng-spa)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch==2.13.0 is in requirements.txt, so the CPU wheel is chosen in the same resolve as everything else.
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
# (setuptools warns that folders named like the packages may shadow them: here those folders are the packages)
PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
# the CPU wheels of the offline Kaggle package (src/package.py takes them from here first; its test, --no-index)
.venv/bin/python -m pip download --quiet --only-binary=:all: --dest .venv/wheelhouse -r requirements-kaggle.txt \
  -c requirements.txt
.venv/bin/python -m augment.resources   # WordNet for NLTK, offline (copied from /usr/share/wordnet)
echo "setup: ok ($(.venv/bin/python --version))"
