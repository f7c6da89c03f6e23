# SPDX-License-Identifier: MIT
"""Which native libraries an installed wheel's httpcache runs on (packaging/python/test-wheel.sh,
inside its mount namespace where the system's ICU, hiredis, fmt and LMDB are empty files).

    wheel_loading.py TZDATA_RELEASE

- /proc/self/maps: the eight bundled libraries are mapped from the wheel's httpcache.libs, and no
  system copy of the six hidden ones is.
- The dynamic linker's bindings (LD_DEBUG=bindings; extensions load with RTLD_NOW, so every
  symbol binds at import): each symbol the extension, libhttpcache.so.1 or a bundled library
  imports comes from the wheel or from the base system (glibc, the C++ runtime, the
  interpreter or its libpython). OpenSSL cannot be hidden (the interpreter's own ssl module needs the system's, and
  asyncio imports it), so this is what shows ours uses the bundled copy.
- The zones: the wheel's own release."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import httpcache

BUNDLED = ("libicuuc", "libicui18n", "libicudata", "libhiredis", "libfmt", "liblmdb", "libssl", "libcrypto")
HIDDEN = BUNDLED[:6]
BASE = re.compile(r"(libpython3\.\d+|libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux-x86-64)\.so(\.\d+)*$")
BINDING = re.compile(r"binding file (\S+) \[\d+\] to (\S+) \[\d+\]: normal symbol `([^']+)'")

PKG = os.path.dirname(httpcache.__file__)
WHEEL_LIBS = os.path.join(os.path.dirname(PKG), "httpcache.libs")


def ours(path: str) -> bool:
    real = os.path.realpath(path)
    return real.startswith((PKG + os.sep, WHEEL_LIBS + os.sep))


def check_maps() -> None:
    maps = {line.split()[-1] for line in open("/proc/self/maps") if "/" in line.split()[-1]}
    for stem in BUNDLED:
        mine = [m for m in maps if os.path.basename(m).startswith(stem + "-") and ours(m)]
        assert len(mine) == 1, (stem, sorted(maps))
    for stem in HIDDEN:
        other = [m for m in maps if os.path.basename(m).startswith(stem + ".")]
        assert not other, (stem, other)
    data = next(m for m in maps if os.path.basename(m).startswith("libicudata-"))
    assert os.path.getsize(data) < 1 << 20, (data, os.path.getsize(data))  # the zones only


def check_bindings(tmp: str) -> int:
    out = os.path.join(tmp, "ld-bindings")
    for old in glob.glob(out + ".*"):
        os.remove(old)
    env = dict(os.environ, LD_DEBUG="bindings", LD_DEBUG_OUTPUT=out)
    code = "import httpcache; httpcache.tzdata_version(); from httpcache import _httpcache; _httpcache.Cache('rediss://127.0.0.1:1', 'w')"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    checked, wrong = 0, []
    for log in glob.glob(out + ".*"):
        for line in open(log, errors="replace"):
            m = BINDING.search(line)
            if not m or not ours(m.group(1)):
                continue
            checked += 1
            target = os.path.realpath(m.group(2))
            if not (ours(target) or BASE.fullmatch(os.path.basename(target)) or target == os.path.realpath(sys.executable)):
                wrong.append(f"{os.path.basename(m.group(1))} -> {target}: {m.group(3)}")
    assert checked > 1000, checked  # the log really covered our libraries
    assert not wrong, wrong[:20]
    return checked


def main(release: str) -> None:
    assert PKG.startswith(sys.prefix), f"imported from {PKG}, not from the venv {sys.prefix}"
    assert httpcache.tzdata_version() == release, (httpcache.tzdata_version(), release)
    assert 1 <= httpcache.seconds_until_end_of_day("Europe/London") <= 25 * 3600
    check_maps()
    n = check_bindings(os.getcwd())
    print(f"wheel loading OK: the eight libraries mapped from {WHEEL_LIBS}, none of the six hidden from the "
          f"system; {n} symbol bindings of ours all to the wheel or the base system; tzdata {release}")


if __name__ == "__main__":
    main(sys.argv[1])
