#!/bin/sh
# Installs clients/node's pinned dependencies (package-lock.json, from the
# npm registry only) into clients/node/node_modules with `npm ci`, quietly,
# when they are missing or package-lock.json changed since the last
# install (node_modules/.lock.sha256 records its checksum). Nothing to do
# otherwise. Used by `make node-client` and tests/test_e2e_client_node.sh.
set -eu
dir=$(cd "$(dirname "$0")/.." && pwd)
stamp=$dir/node_modules/.lock.sha256
sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
	exit 0
fi
command -v npm >/dev/null || {
	echo "clients/node: npm is missing (Node.js 20 or later with npm)" >&2
	exit 1
}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
	cat "$log" >&2
	echo "clients/node: npm ci failed" >&2
	exit 1
fi
echo "$sum" >"$stamp"
