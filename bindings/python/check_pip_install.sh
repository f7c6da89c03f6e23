#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `pip wheel` and `pip install` of a checkout with a fresh venv (normal build isolation:
# scikit-build-core and pybind11 come from PyPI): the wheel's contents and metadata, then the
# installed package imported from that venv, caching on memory://.
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
"$venv_py" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$work/wheel" "$src"
# The version the wheel must say: the C header's (the package's own follows it).
version="$(sed -nE 's/^#define HTTPCACHE_VERSION_STRING "([^"]+)".*/\1/p' "$src/include/httpcache.h")"
"$venv_py" - "$work/wheel" "$version" <<'PY'
import pathlib
import sys
import zipfile

wheels = list(pathlib.Path(sys.argv[1]).glob("httpcache-*.whl"))
assert len(wheels) == 1, wheels
with zipfile.ZipFile(wheels[0]) as z:
    names = set(z.namelist())
    meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
for need in ("httpcache/__init__.py", "httpcache/libhttpcache.so.1", "httpcache/py.typed", "httpcache/_httpcache.pyi"):
    assert need in names, (need, sorted(names))
assert any(n.startswith("httpcache/_httpcache.cpython-") for n in names), sorted(names)
assert not any(n.startswith(("include/", "lib/", "bin/")) or n.endswith(".a") for n in names), sorted(names)
for line in ("Name: httpcache", f"Version: {sys.argv[2]}", "Requires-Python: >=3.11"):
    assert line in meta, (line, meta)
assert "MIT" in meta, meta
# No runtime dependencies: every Requires-Dist belongs to an extra (fastapi, test).
assert all("extra ==" in l for l in meta.splitlines() if l.startswith("Requires-Dist:")), meta
print(f"pip wheel OK: {wheels[0].name}: {len(names)} files")
PY
# Install the wheel just built (what users get from an index), not a second build of the tree.
"$venv_py" -m pip install --quiet --disable-pip-version-check "$work"/wheel/httpcache-*.whl

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
