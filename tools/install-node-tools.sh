#!/usr/bin/env bash
# Installs the npm packages the tests drive a browser with (playwright-core, for the reviewer
# page test tests/apps/serve_review_test.cpp) into <repo>/build-node, only when missing. Chromium
# itself is Debian's (tools/install-deps.sh). Needs npm and the npm registry.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/build-node"
version=1.49.1  # node >= 18 (Debian 12's nodejs); drives Debian's chromium over CDP
if [ -f "$dir/node_modules/playwright-core/package.json" ] &&
   grep -q "\"version\": \"$version\"" "$dir/node_modules/playwright-core/package.json"; then
  exit 0
fi
command -v npm >/dev/null || { echo "focus: npm is missing (run tools/install-deps.sh)" >&2; exit 1; }
echo "focus: installing playwright-core@$version into $dir" >&2
mkdir -p "$dir"
npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$dir" "playwright-core@$version" >/dev/null
