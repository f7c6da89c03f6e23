#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The CPython of a series the wheels are built and tested with: pyenv's newest of that series
# (PYENV_ROOT, default ~/.pyenv) if pyenv has one, else /usr/bin/python3.X (Debian 12: 3.11).
#   find-python.sh 3.12      prints the interpreter's path, or fails saying how to get one
set -euo pipefail
series="$1"
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
best="$(ls -d "$pyenv_root"/versions/"$series".*/bin/python"$series" 2>/dev/null | sort -V | tail -n 1 || true)"
[ -z "$best" ] && [ -x "/usr/bin/python$series" ] && best="/usr/bin/python$series"
if [ -z "$best" ]; then
  echo "find-python: no CPython $series in $pyenv_root/versions or /usr/bin (pyenv install $series)" >&2
  exit 1
fi
echo "$best"
