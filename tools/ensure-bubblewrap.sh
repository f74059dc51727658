#!/usr/bin/env bash
# Grading runs every submission in a bubblewrap sandbox (the `bwrap` command, Debian package `bubblewrap`).
# Quiet when it is there; installs it when it can (root with apt-get, as on CI); otherwise names what to install.
set -euo pipefail
command -v bwrap >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing bubblewrap (the grading sandbox) with apt-get ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq bubblewrap >/dev/null; }
  command -v bwrap >/dev/null 2>&1 && exit 0
fi
echo "bubblewrap (bwrap) is missing: install it (Debian/Ubuntu: sudo apt-get install bubblewrap;" \
  "Fedora: sudo dnf install bubblewrap), or grade with --unsafe (see assignments/README.md)" >&2
exit 1
