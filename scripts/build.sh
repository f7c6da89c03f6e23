#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Configures and builds httpcache into BUILD_DIR (default build/) with the project's venv Python.
#   scripts/build.sh [extra cmake -D options...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
py="$root/.venv/bin/python"
cmake -S "$root" -B "$build" -G Ninja -DPython3_EXECUTABLE="$py" \
  -Dpybind11_DIR="$("$py" -c 'import pybind11; print(pybind11.get_cmake_dir())')" "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
