#!/usr/bin/env bash
# Regenerate requirements.lock, which the Dockerfile installs with `pip install --require-hashes`:
# the runtime dependencies of pyproject.toml only (no dev extra), resolved for Python 3.11 on
# Linux x86_64 (run it there, after `make` has built .venv), pinned to the versions the test
# suite runs (.venv's), with the sha256 of every file the package index has for each release.
# Run it after changing pyproject.toml's dependencies; tests/helm/test_dockerfile.py checks
# that the lock still names exactly those dependencies and satisfies their version ranges.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "run with Python 3.11"'
test -x .venv/bin/pip || { echo "no .venv: run make first" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet pip-tools
# The versions the suite runs become the lock's versions.
.venv/bin/pip freeze --exclude-editable > "$work/tested.txt"
# The package index itself, not this machine's pip configuration (local wheel folders would
# give hashes of files the image build never downloads).
env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT \
  PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="tools/lock-requirements.sh" \
  "$work/venv/bin/pip-compile" --quiet --generate-hashes --strip-extras --allow-unsafe \
  --no-emit-index-url --constraint "$work/tested.txt" --output-file requirements.lock pyproject.toml
# The temporary constraints file is not a reason anyone needs to read.
sed -i '/^    #   -c .*tested\.txt$/d' requirements.lock
echo "requirements.lock: $(grep -c '==' requirements.lock) packages"
