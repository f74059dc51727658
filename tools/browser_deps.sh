#!/usr/bin/env bash
# Chromium and its WebDriver for the browser test of the course website (tests/test_site.py) (`make test` runs this first).
# Quiet when both are there; as root with apt-get, installs what is missing (Debian: chromium, chromium-driver);
# otherwise one line naming what is missing.  CHROMIUM=... and CHROMEDRIVER=... point at other installations.
set -euo pipefail

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
missing=()
[[ -x $CHROMIUM ]] || missing+=(chromium)
[[ -x $CHROMEDRIVER ]] || missing+=(chromium-driver)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} with apt-get (the browser test of the course website needs them)"
    export DEBIAN_FRONTEND=noninteractive
    # Quiet unless it fails: then apt's own output says why.
    if ! log=$(apt-get update -qq 2>&1 && apt-get install -y -qq --no-install-recommends "${missing[@]}" 2>&1); then
        echo "$log" >&2
        echo "apt-get could not install ${missing[*]} (see above)" >&2
        exit 1
    fi
    exit 0
fi
echo "the browser test of the course website needs ${missing[*]} (not found at $CHROMIUM / $CHROMEDRIVER): on Debian run 'sudo apt-get install ${missing[*]}', elsewhere set CHROMIUM=/path/to/chromium CHROMEDRIVER=/path/to/chromedriver; then run make test again" >&2
exit 1
