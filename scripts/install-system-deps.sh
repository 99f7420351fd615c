#!/usr/bin/env bash
# System libraries prefrl needs beyond pip: EGL/Mesa for headless MuJoCo rendering, Chromium for the web
# page's browser test (tests/test_web.py; Playwright's own browser download is not used), and PostgreSQL, whose
# server the store tests start in a temp dir (tests/pg.py: initdb + pg_ctl; no system service is used).
# Installs only what is missing, and only where apt-get can run (root or sudo).
set -euo pipefail
need=()
ldconfig -p | grep -q 'libEGL.so.1' || need+=(libegl1)
ldconfig -p | grep -q 'libGL.so.1' || need+=(libgl1)
[ -e /usr/lib/x86_64-linux-gnu/dri ] || [ -e /usr/lib/aarch64-linux-gnu/dri ] || need+=(libgl1-mesa-dri)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "prefrl needs: ${need[*]} (no apt-get here: install them with your package manager)" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "prefrl needs: ${need[*]} (apt-get install them, or set MUJOCO_GL=osmesa with libosmesa6)" >&2
    exit 0
  fi
fi
echo "installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
