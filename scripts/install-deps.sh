#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what httpcache needs to build, test and run its demo: Debian packages (only when one is
# missing, so a second run is a fast no-op) and the pinned Python packages in the project's own venv.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

debs=(build-essential cmake ninja-build pkg-config
      libhiredis-dev liblmdb-dev libfmt-dev libicu-dev icu-devtools libcmocka-dev
      redis-server redis-tools libssl-dev openssl python3-venv python3-dev
      clang libclang-rt-14-dev abigail-tools dpkg-dev file
      libbenchmark-dev wrk nginx curl chromium)
# --windows: what the Windows DLL's cross build and its tests need (packaging/windows/build.sh):
# MinGW-w64 with POSIX threads, and Wine to run the tests.
if [ "${1:-}" = "--windows" ]; then
  debs+=(g++-mingw-w64-x86-64-posix wine64)
fi

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  # A system-wide redis-server the package may start is never used: tests and benchmarks start
  # their own on free loopback ports.
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The project's venv: pinned packages from requirements.txt, reinstalled only when that file changes.
venv="$root/.venv"
req="$root/requirements.txt"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "install-deps: installing pinned Python packages into .venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r "$req"
  echo "$want" > "$stamp"
fi
