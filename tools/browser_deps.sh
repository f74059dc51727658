#!/usr/bin/env bash
# What the course website's browser work needs besides Python packages (`make test` runs this first).
#
#   bash tools/browser_deps.sh chromium   Chromium and its WebDriver: the browser tests, the handout's print to PDF
#                                         (make site, make handout)
#   bash tools/browser_deps.sh            the same, and Node.js's npm with the npm packages pinned in
#                                         package-lock.json (axe-core, the accessibility checker run by
#                                         tests/test_site.py) installed into node_modules/
#
# Quiet when everything is there; as root with apt-get, installs what is missing (Debian: chromium,
# chromium-driver, nodejs, npm); otherwise one line naming what is missing.  CHROMIUM=... and CHROMEDRIVER=...
# point at other installations.  `npm ci` needs the npm registry once; after that everything works offline.
set -euo pipefail
cd "$(dirname "$0")/.."

want=${1:-all}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
missing=()
[[ -x $CHROMIUM ]] || missing+=(chromium)
[[ -x $CHROMEDRIVER ]] || missing+=(chromium-driver)
if [[ $want == all ]]; then
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "installing ${missing[*]} with apt-get (the course website's browser tests and handout need them)"
        export DEBIAN_FRONTEND=noninteractive
        # Quiet unless it fails: then apt's own output says why.
        if ! log=$(apt-get update -qq 2>&1 && apt-get install -y -qq --no-install-recommends "${missing[@]}" 2>&1); then
            echo "$log" >&2
            echo "apt-get could not install ${missing[*]} (see above)" >&2
            exit 1
        fi
    else
        echo "the course website's browser tests need ${missing[*]} (not found at $CHROMIUM / $CHROMEDRIVER / on PATH): on Debian run 'sudo apt-get install ${missing[*]}', elsewhere set CHROMIUM=/path/to/chromium CHROMEDRIVER=/path/to/chromedriver and install Node.js; then run make again" >&2
        exit 1
    fi
fi
[[ $want == all ]] || exit 0

# axe-core and whatever else package-lock.json pins, exactly: again only when the lock file changed.
stamp=node_modules/.package-lock.json
if [[ ! -f $stamp || package-lock.json -nt $stamp || ! -f node_modules/axe-core/axe.min.js ]]; then
    echo "installing the npm packages of package-lock.json into node_modules/ (axe-core, for the accessibility test)"
    if ! log=$(npm ci --no-audit --no-fund --ignore-scripts --loglevel=error 2>&1); then
        echo "$log" >&2
        echo "npm ci could not install package-lock.json's packages (see above; it needs the npm registry once)" >&2
        exit 1
    fi
fi
