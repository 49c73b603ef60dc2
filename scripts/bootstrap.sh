#!/usr/bin/env bash
# Installs everything Interactive Gym needs into this checkout: a Python venv (.venv) with the package and its
# test tools, and the browser dependencies from the committed npm lock file (node_modules). Idempotent and quick
# when nothing changed. With --system it also installs the Debian packages the browser tests use (chromium, coturn,
# nginx and openssl for the deployment test), PostgreSQL (the storage tests start their own server from it) and
# Redis (the cluster tests start their own redis-server).
set -euo pipefail
cd "$(dirname "$0")/.."

want_system=0
[ "${1:-}" = "--system" ] && want_system=1

if [ "$want_system" = 1 ]; then
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v turnserver >/dev/null 2>&1 || missing+=(coturn)
  [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "bootstrap: need Debian packages ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
    echo "bootstrap: apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$py" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "bootstrap: pip install -e .[test,data]"
  .venv/bin/pip install -q -e '.[test,data]' --config-settings editable_mode=compat
  rm -f .venv/.installed-*
  touch "$stamp"
fi
lockstamp=node_modules/.installed-$(sha1sum package-lock.json | cut -c1-12)
if [ ! -f "$lockstamp" ]; then
  echo "bootstrap: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$lockstamp"
fi
