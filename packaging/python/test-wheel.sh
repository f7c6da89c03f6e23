#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One wheel of build-wheels.sh, as a user on another Linux gets it: installed into a fresh venv of
# its Python, then used in a private mount namespace where the system's ICU, hiredis, fmt and LMDB
# are empty files, so that only the wheel's own copies can load. Checks, in order:
#   - the wheel: its manylinux tag (auditwheel show), contents, metadata and size;
#   - loading (wheel_loading.py): /proc/self/maps and the dynamic linker's bindings show that every
#     native library httpcache uses comes from the wheel;
#   - time zone data: the wheel's own release whatever ICU_DATA says; ICU_TIMEZONE_FILES_DIR's
#     newer zoneinfo64.res when set (README "Time zone data");
#   - TLS: with OpenSSL's default locations absent (/usr/lib/ssl hidden, as on Fedora), the
#     system CA bundle still verifies the server; without the CA in it, the handshake is refused;
#   - the Python suite (tests/python, PYTEST_ARGS...) on the fixture servers CTest names
#     (HTTPCACHE_TEST_*_DIR: memory://, Redis, TLS, Cluster, Sentinel).
#   test-wheel.sh DIST_DIR SERIES WORK_DIR [PYTEST_ARGS ...]
# tests DIST_DIR's wheel for CPython SERIES (e.g. 3.12) with that interpreter (find-python.sh).
# Root, or a kernel that gives unprivileged users a mount namespace (unshare -rm).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dist="$1"; series="$2"; work="$3"; shift 3
tag="cp${series/./}"
wheels=("$dist"/httpcache-*-"$tag"-"$tag"-manylinux_2_35_x86_64.whl)
[ "${#wheels[@]}" -eq 1 ] && [ -f "${wheels[0]}" ] ||
  { echo "test-wheel: not one manylinux_2_35 wheel for $tag in $dist: ${wheels[*]}" >&2; exit 1; }
wheel="$(readlink -f "${wheels[0]}")"

if [ -z "${HTTPCACHE_WHEEL_NS:-}" ]; then
  tools="$root/.venv/bin"
  python="$("$root/packaging/python/find-python.sh" "$series")"
  rm -rf "$work" && mkdir -p "$work"
  "$tools/auditwheel" show "$wheel" > "$work/show.txt"
  grep -q 'consistent with the following platform tag: "manylinux_2_35_x86_64"' <(tr '\n' ' ' < "$work/show.txt" | tr -s ' ') ||
    { cat "$work/show.txt"; echo "test-wheel: auditwheel does not confirm the tag" >&2; exit 1; }
  echo "test-wheel: $(basename "$wheel"): $(stat -c %s "$wheel") bytes, manylinux_2_35_x86_64 confirmed"
  version="$(sed -nE 's/^#define HTTPCACHE_VERSION_STRING "([^"]+)".*/\1/p' "$root/include/httpcache.h")"
  "$tools/python" "$root/packaging/python/wheel_contents.py" "$wheel" "$version"

  # What the zone checks compare with: this ICU's release, and a copy of its zoneinfo64.res whose
  # release string says 1999z (same length, so the resource stays valid).
  "$root/packaging/python/icu-tzdata.sh" "$work/icu" > /dev/null
  package="icudt$(pkg-config --modversion icu-uc | cut -d. -f1)l"
  "$tools/python" - "$work/icu/zoneinfo64.res" "$(cat "$work/icu/tzdata-version")" "$work/tz1999z" "$package" <<'PY'
import pathlib
import sys

res, release, out = pathlib.Path(sys.argv[1]).read_bytes(), sys.argv[2], pathlib.Path(sys.argv[3])
package = sys.argv[4]
old, new = release.encode("utf-16-le"), "1999z".encode("utf-16-le")
assert res.count(old) == 1, (release, res.count(old))
for d in (out, out / package):  # as ICU_TIMEZONE_FILES_DIR, and as an ICU_DATA tree
    d.mkdir(parents=True, exist_ok=True)
    (d / "zoneinfo64.res").write_bytes(res.replace(old, new))
PY

  "$python" -m venv "$work/venv"
  PIP_CONSTRAINT="$root/requirements.txt" "$work/venv/bin/python" -m pip install --quiet \
    --disable-pip-version-check pytest pytest-asyncio hypothesis fastapi httpx uvicorn uvloop redis pytz "$wheel"
  unshare_flags=(-m --propagation private)
  [ "$(id -u)" -eq 0 ] || unshare_flags=(-r "${unshare_flags[@]}")
  HTTPCACHE_WHEEL_NS=1 exec unshare "${unshare_flags[@]}" "$0" "$dist" "$series" "$work" "$@"
fi

# ---- In the private mount namespace ----
libdir="$(pkg-config --variable=libdir icu-uc)"
: > "$work/empty"
for lib in "$libdir"/{libicuuc,libicui18n,libicudata,libhiredis,libfmt,liblmdb}.so.*; do
  [ -L "$lib" ] || mount --bind "$work/empty" "$lib"  # the links lead to these files
done
py="$work/venv/bin/python"
release="$(cat "$work/icu/tzdata-version")"
unset PYTHONPATH ICU_DATA ICU_TIMEZONE_FILES_DIR
cd "$work"  # away from the checkout: httpcache can only come from the venv

"$py" "$root/packaging/python/wheel_loading.py" "$release"

# The zones: ICU_DATA (a directory ICU would read loose files from) changes nothing;
# ICU_TIMEZONE_FILES_DIR, the documented override, does.
tz_of() { env "$@" "$py" -c 'import httpcache; print(httpcache.tzdata_version())'; }
got="$(tz_of ICU_DATA="$work/tz1999z")"
[ "$got" = "$release" ] || { echo "test-wheel: ICU_DATA's files were read: tzdata $got" >&2; exit 1; }
got="$(tz_of ICU_TIMEZONE_FILES_DIR="$work/tz1999z")"
[ "$got" = 1999z ] || { echo "test-wheel: ICU_TIMEZONE_FILES_DIR was ignored: tzdata $got" >&2; exit 1; }
echo "test-wheel: tzdata $release inside; ICU_DATA ignored; ICU_TIMEZONE_FILES_DIR read"

# TLS without Debian's OpenSSL directory: the distribution's bundle (here: Debian's path, holding
# only the test CA) must verify the server; the real bundle, without the test CA, must not.
tls_dir="${HTTPCACHE_TEST_REDIS_TLS_DIR:?set by CTest: the redis_tls fixture}"
tls_url="rediss://127.0.0.1:$(cat "$tls_dir/port")"
mount -t tmpfs none /usr/lib/ssl
tls_check() {
  "$py" - "$tls_url" "$1" <<'PY'
import sys

from httpcache import _httpcache

url, expect = sys.argv[1], sys.argv[2]
c = _httpcache.Cache(url, "wheel_tls")
try:
    c.set(b"k", b"v", _httpcache.Policy.seconds(60))
    got = c.get(b"k")
except _httpcache.Error as e:
    assert expect == "refused" and "certificate verify failed" in str(e), e
    print(f"test-wheel: TLS without the test CA in the bundle: refused ({e})")
else:
    assert expect == "verified" and got[0] == b"v", (expect, got)
    print("test-wheel: TLS verified against the system bundle with /usr/lib/ssl absent")
PY
}
tls_check refused
mount --bind "$(cat "$tls_dir/tls_dir")/ca.crt" /etc/ssl/certs/ca-certificates.crt
tls_check verified
umount /etc/ssl/certs/ca-certificates.crt /usr/lib/ssl

echo "test-wheel: the Python suite on $("$py" -c 'import sys; print(sys.version.split()[0])')"
exec "$py" -m pytest -q -p no:cacheprovider --rootdir "$root" -c "$root/pyproject.toml" "$@" "$root/tests/python"
