#!/usr/bin/env bash
# Copies Swagger UI's browser bundle into gateway/http/docs_ui/, which /docs serves
# (gateway/http/handlers/docs.py): nothing is fetched from a CDN at run time. Run it to
# move to another release of swagger-ui-dist (npm; `npm pack` checks the tarball against
# the registry's integrity hash), then commit the files. Its licence (Apache-2.0) and
# notice go along, with the licences of what the bundle bundles.
set -euo pipefail

VERSION="${1:-5.35.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/gateway/http/docs_ui"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
tar -xzf "$tmp"/swagger-ui-dist-*.tgz -C "$tmp"
for f in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE \
         favicon-32x32.png; do
  install -m 0644 "$tmp/package/$f" "$dest/$f"
done
echo "$VERSION" > "$dest/SWAGGER_UI_VERSION"
echo "Swagger UI $VERSION in ${dest#"$root/"}"
