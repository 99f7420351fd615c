#!/usr/bin/env bash
# System libraries prefrl needs beyond pip: EGL/Mesa for headless MuJoCo rendering.
# Installs only what is missing, and only where apt-get can run (root or sudo).
set -euo pipefail
need=()
ldconfig -p | grep -q 'libEGL.so.1' || need+=(libegl1)
ldconfig -p | grep -q 'libGL.so.1' || need+=(libgl1)
[ -e /usr/lib/x86_64-linux-gnu/dri ] || [ -e /usr/lib/aarch64-linux-gnu/dri ] || need+=(libgl1-mesa-dri)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
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
