#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A libicudata.so.<major> holding only ICU's time-zone data (zoneinfo64.res), for the wheels:
# httpcache asks ICU for zones and nothing else, and the full data library is 31 MB of locales,
# collation and break rules. The items come from the system's own libicudata (the same ICU the
# wheel's libicuuc and libicui18n are), repackaged with ICU's tools (icupkg, genccode), and the
# library keeps the system's SONAME and data symbol, so libicuuc loads it unchanged.
#   icu-tzdata.sh OUT_DIR   writes OUT_DIR/libicudata.so.<major>, the zoneinfo64.res inside it and
#                           OUT_DIR/tzdata-version (the release it holds)
# HTTPCACHE_ICU_ZONEINFO=FILE takes zoneinfo64.res from FILE instead (a newer release: README
# "Time zone data"); it must be built for this ICU's format (icu-data's tzdata/icunew/<release>/44/le/).
set -euo pipefail
out="$1"
major="$(pkg-config --modversion icu-uc | cut -d. -f1)"
libdir="$(pkg-config --variable=libdir icu-uc)"
system_lib="$libdir/libicudata.so.$major"
name="icudt${major}"
for tool in icupkg genccode nm cc; do
  command -v "$tool" >/dev/null || { echo "icu-tzdata: $tool is missing (Debian: icu-devtools, binutils, gcc)" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$work/items" "$work/pkg"

# The system's data is the bytes of one read-only symbol, icudt<major>_dat, of the size nm reports.
read -r size < <(nm -D -S --defined-only "$system_lib" | awk -v s="${name}_dat" '$4 == s { print $2 }')
[ -n "$size" ] || { echo "icu-tzdata: no ${name}_dat in $system_lib" >&2; exit 1; }
python3 - "$system_lib" "${name}_dat" "$((16#$size))" "$work/${name}l.dat" <<'PY'
import ctypes
import sys

lib, symbol, size, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
data = ctypes.c_char.in_dll(ctypes.CDLL(lib), symbol)
with open(out, "wb") as f:
    f.write(ctypes.string_at(ctypes.addressof(data), size))
PY

if [ -n "${HTTPCACHE_ICU_ZONEINFO:-}" ]; then
  cp "$HTTPCACHE_ICU_ZONEINFO" "$work/items/zoneinfo64.res"
else
  icupkg -x zoneinfo64.res -d "$work/items" "$work/${name}l.dat"
fi
cp "$work/items/zoneinfo64.res" "$out/zoneinfo64.res"
echo zoneinfo64.res > "$work/items.txt"
# The package's name is its entries' prefix (icudt72l/zoneinfo64.res): the name ICU looks under.
icupkg -tl -a "$work/items.txt" -s "$work/items" new "$work/pkg/${name}l.dat"
# genccode names the array after the file: icudt72.dat gives icudt72_dat, what libicuuc links to.
cp "$work/pkg/${name}l.dat" "$work/pkg/${name}.dat"
genccode -q -d "$work/pkg" "$work/pkg/${name}.dat"
cc -shared -fPIC -O1 -Wl,-soname,"libicudata.so.$major" -Wl,-z,noexecstack \
  -o "$out/libicudata.so.$major" "$work/pkg/${name}_dat.c"

# The release inside, for the tests to expect: the TZVersion string of zoneinfo64.res, asked of
# the ICU that will load it.
cat > "$work/version.c" <<'C'
#include <stdio.h>
#include <unicode/ucal.h>
#include <unicode/udata.h>
int main(void) {
  UErrorCode status = U_ZERO_ERROR;
  udata_setFileAccess(UDATA_NO_FILES, &status);
  const char *v = ucal_getTZDataVersion(&status);
  if (U_FAILURE(status)) { fprintf(stderr, "%s\n", u_errorName(status)); return 1; }
  puts(v);
  return 0;
}
C
cc -o "$work/version" "$work/version.c" $(pkg-config --cflags --libs icu-i18n icu-uc)
env -u ICU_TIMEZONE_FILES_DIR LD_LIBRARY_PATH="$out" "$work/version" > "$out/tzdata-version"
echo "icu-tzdata: $out/libicudata.so.$major: zoneinfo64.res of tzdata $(cat "$out/tzdata-version"), $(stat -c %s "$out/libicudata.so.$major") bytes"
