# SPDX-License-Identifier: MIT
"""A repaired wheel's contents and metadata (packaging/python/test-wheel.sh).

    wheel_contents.py WHEEL VERSION

The package files, the extension and the C library; the native libraries auditwheel bundled
(httpcache.libs: ICU's three with the data trimmed to the zones, hiredis, fmt, LMDB, OpenSSL's
two); nothing of a build tree or an install prefix; the metadata (name, the C header's version,
Requires-Python, no runtime dependency outside an extra)."""

from __future__ import annotations

import re
import sys
import zipfile

BUNDLED = ("libicuuc", "libicui18n", "libicudata", "libhiredis", "libfmt", "liblmdb", "libssl", "libcrypto")


def main(path: str, version: str) -> None:
    with zipfile.ZipFile(path) as z:
        infos = {i.filename: i for i in z.infolist()}
        meta = z.read(next(n for n in infos if n.endswith(".dist-info/METADATA"))).decode()
    names = set(infos)
    for need in ("httpcache/__init__.py", "httpcache/libhttpcache.so.1", "httpcache/py.typed", "httpcache/_httpcache.pyi"):
        assert need in names, (need, sorted(names))
    assert any(re.fullmatch(r"httpcache/_httpcache\.cpython-3\d+-x86_64-linux-gnu\.so", n) for n in names), sorted(names)
    assert not any(n.startswith(("include/", "lib/", "bin/")) or n.endswith(".a") for n in names), sorted(names)
    libs = {n.split("/", 1)[1]: infos[n].file_size for n in names if n.startswith("httpcache.libs/") and not n.endswith("/")}
    for stem in BUNDLED:
        assert sum(name.startswith(stem + "-") for name in libs) == 1, (stem, sorted(libs))
    assert len(libs) == len(BUNDLED), sorted(libs)
    data = next(size for name, size in libs.items() if name.startswith("libicudata-"))
    assert data < 1 << 20, f"libicudata is {data} bytes: not the time zones only"
    for line in ("Name: httpcache", f"Version: {version}", "Requires-Python: >=3.11"):
        assert line in meta, (line, meta)
    assert "MIT" in meta, meta
    assert all("extra ==" in line for line in meta.splitlines() if line.startswith("Requires-Dist:")), meta
    native = sum(size for name, size in libs.items())
    print(f"wheel contents OK: {len(names)} files; bundled {len(libs)} libraries, {native} bytes unpacked "
          f"(libicudata {data})")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
