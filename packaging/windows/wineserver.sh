#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Wine server of the Windows tests, started before them and stopped after (CTest fixture
# `wine`). Each Wine program would otherwise start one on demand, which inherits that program's
# output pipes and outlives it, so CTest waited on the pipes until the whole run ended.
#   wineserver.sh start|stop        (WINEPREFIX from the environment)
set -euo pipefail
server=$(command -v wineserver64 || command -v wineserver || echo /usr/lib/wine/wineserver64)
case "$1" in
  start)
    mkdir -p "$WINEPREFIX"
    "$server" -p </dev/null >/dev/null 2>&1 || true  # persistent (forks itself); fails when one runs already
    # The prefix is made on the first start of a program (a few seconds): do it now, not in a test.
    "$(dirname "$server")/wine64" cmd /c exit </dev/null >/dev/null 2>&1 || true
    ;;
  stop) "$server" -k </dev/null >/dev/null 2>&1 || true ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
