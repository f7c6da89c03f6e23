#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian packages with CPack, checks their names and dependencies, unpacks them with
# dpkg-deb -x (no root, no system change) and builds the consumers against the unpacked tree.
#   check_debs.sh BUILD_DIR WORK_DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$1"; work="$2"
rm -rf "$work"; mkdir -p "$work/root"
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" >/dev/null)
ls "$work"/*.deb
runtime="$(ls "$work"/libhttpcache1_*.deb)"
dev="$(ls "$work"/libhttpcache-dev_*.deb)"
# Runtime dependencies come from dpkg-shlibdeps: Debian's hiredis, ICU, fmt and the C++ runtime.
depends="$(dpkg-deb -f "$runtime" Depends)"
echo "libhttpcache1 Depends: $depends"
for lib in libhiredis0.14 liblmdb0 libicu72 libfmt9 libstdc++6; do
  grep -q "$lib" <<<"$depends" || { echo "missing dependency on $lib"; exit 1; }
done
grep -q "libhttpcache1 (= " <<<"$(dpkg-deb -f "$dev" Depends)" || { echo "-dev must depend on the exact runtime"; exit 1; }
# Listings are read whole before grep: `grep -q` stopping early would break dpkg-deb's pipe,
# which pipefail turns into a failure.
runtime_files="$(dpkg-deb -c "$runtime")"
grep -q 'libhttpcache\.so\.1' <<<"$runtime_files" || { echo "the runtime package lacks libhttpcache.so.1"; exit 1; }
if grep -q 'httpcache\.h' <<<"$runtime_files"; then echo "the header belongs in -dev"; exit 1; fi
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
libdir="$(dirname "$(find "$work/root" -name 'libhttpcache.so.1' | head -1)")"
"$here/check_consumers.sh" "$work/root/usr" "$libdir" "$work/consumers"
# The Python package, when the build has the extension (CPack's component list then names
# `python`): it must be produced (a missing .deb fails, never skips), depend on the runtime and
# import from the unpacked tree.
if grep -Eq '^set\(CPACK_COMPONENTS_ALL "([^"]*;)?python(;[^"]*)?"\)' "$build/CPackConfig.cmake"; then
  py="$(ls "$work"/python3-httpcache_*.deb 2>/dev/null)" || {
    echo "the build has the Python component but CPack produced no python3-httpcache .deb"; exit 1; }
  grep -q "libhttpcache1 (= " <<<"$(dpkg-deb -f "$py" Depends)" || { echo "python3-httpcache must depend on libhttpcache1"; exit 1; }
  (cd "$work" && PYTHONPATH="$work/root/usr/lib/python3/dist-packages" LD_LIBRARY_PATH="$libdir" \
     "${PYTHON:-python3}" -c '
import httpcache, os
from httpcache import HTTPCache, cache
assert httpcache.__file__.startswith(os.environ["PYTHONPATH"]), httpcache.__file__
HTTPCache.init(redis_url="memory://", namespace="deb")
calls = []
@cache(key="k", ttl_in_seconds=60)
def f():
    calls.append(1)
    return 42
assert f() == 42 and f() == 42 and calls == [1]
print("python3-httpcache ok:", httpcache.__file__)
')
else
  echo "python3-httpcache not checked: this build has no Python component (HTTPCACHE_PYTHON=OFF)"
  if ls "$work"/python3-httpcache_*.deb >/dev/null 2>&1; then echo "yet a python3-httpcache .deb was produced"; exit 1; fi
fi
echo "debian packages ok"
