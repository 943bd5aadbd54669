#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine with Node 20+: Debian packages (as root, only
# those missing) and the npm packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# openssh-client: ssh-keygen (host keys and fingerprints to compare with OpenSSH's own);
# openssh-server: real sshd servers on 127.0.0.1 for the integration tests; procps: pgrep;
# podman, runc, busybox-static, docker-registry, docker-compose, curl: the real container engine,
# registry and Compose of the end-to-end test (__tests__/e2e/engine-up.sh sets them up); apache2-utils:
# htpasswd, for the e2e test's registry that requires a login; shellcheck: the
# run: blocks of the workflows (npm run lint:workflows); caddy, nginx: the real proxies of the blue-green
# end-to-end test and bench:downtime (they run their own instances; policy-rc.d keeps the services off);
# tmux: a real terminal of a given width for the terminal tests (__tests__/terminal.test.ts); nftables:
# the network faults of npm run test:chaos (iproute2 gives ip netns and tc); postgresql-15: the binaries of
# the Postgres image the restore drill builds (__tests__/e2e/postgres-image.sh; no server is started here);
# inotify-tools: the attacker's watcher (inotifywait) that races the tool with links in the chaos suite
# (__tests__/chaos/links.test.ts); prometheus: the real Prometheus the analysis tests start and scrape
# (__tests__/helpers/prometheus.ts); parallel: the plain-script floor of npm run bench:fleet and bench:rollout.
packages=(openssh-client openssh-server procps podman runc busybox-static docker-registry docker-compose curl apache2-utils shellcheck caddy nginx tmux nftables iproute2 postgresql-15 inotify-tools prometheus parallel)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    # Installing must not start services (sshd on :22, the registry on :5000): the tests start their own.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1; fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
    [ -z "$made_policy" ] || rm -f "$policy"
  else
    echo "setup: not root, so these Debian packages were not installed: ${missing[*]}" >&2
    echo "setup: the tests that need them (real sshd, podman) will be skipped; as root: apt-get install ${missing[*]}" >&2
  fi
fi

# `npm ci` fails on this registry mirror (jest 30's optional per-platform packages); install from the lock.
npm install --no-audit --no-fund --ignore-scripts --loglevel=error
