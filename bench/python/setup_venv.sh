#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Creates bench/.venv-bench: the pinned peers and tools of bench/python/requirements.txt (PyPI
# only) plus httpcache built from this checkout. Idempotent: the pinned packages are reinstalled
# only when requirements.txt changes, httpcache only when its sources change (stamp files), so
# a second run is a fast no-op. Debian packages (wrk among them) come from scripts/install-deps.sh.
#   bench/python/setup_venv.sh            prints the venv's python on its last line
# The build of httpcache takes the machine's build slot (flock /tmp/httpcache-build.lock), like
# every other build here, unless HTTPCACHE_BUILD_LOCK_HELD is set (the caller holds it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/bench/.venv-bench"
req="$here/requirements.txt"

log() { echo "setup_venv: $*" >&2; }

# The Debian packages (wrk, redis-server, the build tools) are the project's: its one installer,
# a no-op when they are present. Its messages go to stderr: stdout's last line is the answer.
"$root/scripts/install-deps.sh" >&2

if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
py="$venv/bin/python"

stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing pinned packages (requirements.txt)"
  "$py" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  "$py" -m pip install -q --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
  rm -f "$venv/.httpcache.sha256"  # a new environment: rebuild httpcache into it too
fi

# httpcache from the checkout: rebuilt when any file the wheel is built from changes (tracked or
# not, committed or not).
src_hash() {
  cd "$root"
  git ls-files --cached --others --exclude-standard -- \
      core capi bindings include packaging CMakeLists.txt pyproject.toml \
    | LC_ALL=C sort | while read -r f; do [ -f "$f" ] && sha256sum "$f"; done | sha256sum | cut -d' ' -f1
}
hstamp="$venv/.httpcache.sha256"
hwant="$(src_hash)"
if [ ! -f "$hstamp" ] || [ "$(cat "$hstamp")" != "$hwant" ] || ! "$py" -c 'import httpcache' 2>/dev/null; then
  log "building and installing httpcache from $root (waits for the build lock)"
  # --no-build-isolation: scikit-build-core and pybind11 are the pinned ones in this venv.
  lock=(flock /tmp/httpcache-build.lock)
  [ -z "${HTTPCACHE_BUILD_LOCK_HELD:-}" ] || lock=()  # the caller holds it already
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    "${lock[@]}" "$py" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall "$root" >&2
  echo "$hwant" > "$hstamp"
fi

echo "$py"
