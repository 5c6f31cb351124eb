#!/usr/bin/env bash
# Prepares wine to run opx's Windows binaries and tests (make wintest):
# installs wine and the mingw compiler from Debian when missing, makes the
# prefix ($WINEPREFIX, by default ~/.cache/opx-wine), gives wine 8 the
# bcryptprimitives.dll that Go's runtime needs, and starts a persistent
# wineserver (a process start then costs about 0.1 s instead of 3 s).
set -euo pipefail
cd "$(dirname "$0")/.."

export WINEPREFIX="${WINEPREFIX:-$HOME/.cache/opx-wine}" WINEDEBUG=-all

if ! command -v wine >/dev/null || ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      wine wine64 gcc-mingw-w64-x86-64 >/dev/null
  else
    echo "wine.sh: the Windows tests need wine, wine64 and gcc-mingw-w64-x86-64 (Debian packages)" >&2
    exit 1
  fi
fi

mkdir -p "$WINEPREFIX"
# The server first, and wine's background processes (services, devices)
# with it, all with no inherited streams: they otherwise keep the caller's
# stdout open, and a pipe reading it (go test -exec) never ends. wineserver
# exits 2 when the last run's server still holds the prefix, which is what
# a persistent server is for; wineboot starts the background processes
# when a new server has none (after wineserver -k or a reboot), and makes
# the prefix the first time.
wineserver -p </dev/null >/dev/null 2>&1 || [ $? = 2 ]
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  wineboot -i </dev/null >/dev/null 2>&1
else
  wineboot </dev/null >/dev/null 2>&1
fi
dll="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$dll" ]; then
  x86_64-w64-mingw32-gcc -O2 -shared -o "$dll" .ci/bcryptprimitives.c -ladvapi32
fi
