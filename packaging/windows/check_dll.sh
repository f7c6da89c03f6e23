#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Windows DLL's export table holds httpcache_* and nothing else, and its imports are Windows'
# own DLLs and libwinpthread-1.dll (shipped beside it) only: the C++ runtime and every dependency
# are linked in.
#   check_dll.sh httpcache.dll
set -euo pipefail
dll="$1"
dump="$(x86_64-w64-mingw32-objdump -p "$dll")"
exports="$(sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' <<<"$dump" | awk 'NR > 1 && NF { print $NF }')"
count="$(grep -c . <<<"$exports")"
others="$(grep -v '^httpcache_' <<<"$exports" || true)"
[ "$count" -gt 50 ] || { echo "only $count exports: the table was not read"; exit 1; }
[ -z "$others" ] || { echo "exports besides httpcache_*:"; echo "$others" | head -20; exit 1; }
imports="$(grep 'DLL Name:' <<<"$dump" | awk '{ print tolower($3) }' | sort -u)"
allowed='^(kernel32|msvcrt|ws2_32|advapi32|crypt32|bcrypt|user32|ucrtbase|libwinpthread-1|api-ms-win-[a-z0-9-]+)\.dll$'
foreign="$(grep -Ev "$allowed" <<<"$imports" || true)"
[ -z "$foreign" ] || { echo "imports a DLL that is not Windows' own:"; echo "$foreign"; exit 1; }
echo "$(basename "$dll"): $count exports, all httpcache_*; imports $(tr '\n' ' ' <<<"$imports")"
