#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fails if the library exports any symbol outside httpcache_* (the version node itself aside).
set -euo pipefail
lib="$1"
exported="$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//')"
bad="$(echo "$exported" | grep -v -E '^(httpcache_[A-Za-z0-9_]+|HTTPCACHE_[0-9]+)$' || true)"
count="$(echo "$exported" | grep -c '^httpcache_' || true)"
if [ -n "$bad" ]; then
  echo "symbols exported outside httpcache_*:"; echo "$bad"; exit 1
fi
if [ "$count" -lt 20 ]; then
  echo "only $count httpcache_* symbols exported: the ABI is missing"; exit 1
fi
echo "exports ok: $count httpcache_* symbols and nothing else"
