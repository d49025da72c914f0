#!/usr/bin/env bash
# System packages the test suite needs: Debian's chromium (browser tests) and its driver; sshd and
# pdsh (the multi-node fine-tune test starts sshds on loopback addresses; DeepSpeed uses pdsh).
# Installs them with apt-get when missing and we are root; otherwise says what to install.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v pdsh >/dev/null 2>&1 || missing+=(pdsh)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "browser tests need: sudo apt-get install ${missing[*]}" >&2
fi
