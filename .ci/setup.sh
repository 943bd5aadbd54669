#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine with Node 20+: Debian packages (as root, only
# those missing) and the npm packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# openssh-client: ssh-keygen (host keys and fingerprints to compare with OpenSSH's own);
# openssh-server: real sshd servers on 127.0.0.1 for the integration tests; procps: pkill.
packages=(openssh-client openssh-server procps)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

# `npm ci` fails on this registry mirror (jest 30's optional per-platform packages); install from the lock.
npm install --no-audit --no-fund --ignore-scripts --loglevel=error
