#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `pip install` of a checkout into a fresh venv (normal build isolation: scikit-build-core and
# pybind11 come from PyPI), then import the package from that venv and cache on memory://.
#   check_pip_install.sh SOURCE_DIR PYTHON WORK_DIR
# It takes the machine's build slot: callers serialize it with other builds (CTest runs it as a
# test of its own; by hand: flock /tmp/httpcache-build.lock bindings/python/check_pip_install.sh ...).
set -euo pipefail
src="$1"
python="$2"
work="$3"

rm -rf "$work"
mkdir -p "$work"
"$python" -m venv "$work/venv"
venv_py="$work/venv/bin/python"
unset PYTHONPATH
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
"$venv_py" -m pip install --quiet --disable-pip-version-check "$src"

cd "$work"  # away from the checkout, so the import can only come from the venv
"$venv_py" - <<'PY'
import asyncio
import os
import subprocess
import sys

import httpcache
from httpcache import HTTPCache, cache

pkg = os.path.dirname(httpcache.__file__)
assert pkg.startswith(sys.prefix), f"imported from {pkg}, not from the venv {sys.prefix}"
files = sorted(os.listdir(pkg))
assert "libhttpcache.so.1" in files, files
assert "py.typed" in files and "_httpcache.pyi" in files, files
ext = next(f for f in files if f.startswith("_httpcache.") and f.endswith(".so"))
dyn = subprocess.run(["readelf", "-d", os.path.join(pkg, ext)], capture_output=True, text=True).stdout
assert "$ORIGIN" in dyn, dyn
assert "libhttpcache.so.1" in dyn, dyn

HTTPCache.init(redis_url="memory://", namespace="pip_check", tz="Europe/London")
calls = []

@cache(key="double.{}", obj="x", obj_attr="real", ttl_in_seconds=60)
def double(x):
    calls.append(x)
    return [x * 2]

@cache(key="adouble", ttl_in_seconds=60)
async def adouble():
    calls.append("a")
    return {"a": 1}

assert double(21) == [42] and double(21) == [42], calls
assert calls == [21], calls
assert asyncio.run(adouble()) == {"a": 1}
assert asyncio.run(adouble()) == {"a": 1}
assert calls == [21, "a"], calls
assert 1 <= httpcache.seconds_until_end_of_day("Europe/London") <= 25 * 3600
print(f"pip install OK: httpcache {httpcache.__version__} from {pkg}: {', '.join(files)}")
PY
