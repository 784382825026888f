#!/usr/bin/env bash
# Installs everything Berth needs on a fresh Debian 12 and builds it. Idempotent: a second
# run on a ready machine installs nothing and only rebuilds what TypeScript finds stale.
#
# Run as root. docker.io is installed only as the comparison peer for tests and benchmarks:
# its systemd units are left disabled and stopped, because tests start their own dockerd on
# private roots.
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "install.sh: must run as root (it installs Debian packages and Berth runs containers)" >&2
  exit 1
fi

# Package → a file it installs; a package counts as present when dpkg says so.
PACKAGES=(runc conmon busybox-static tini procps docker.io mmdebstrap nftables iproute2 attr bzip2 xz-utils)
# The registry peer of pull/push tests (distribution 2.8), htpasswd for its basic auth.
PACKAGES+=(docker-registry apache2-utils)
# Compose v1 (Python), as Debian ships it: the proof that Compose applications run on Berth.
PACKAGES+=(docker-compose)
# The advisor's rpm inventory test builds a real rpm database (rpmbuild, rpm --initdb).
PACKAGES+=(rpm)
# Builds native/berth-userns.c (user-namespace ID ranges of tenants).
PACKAGES+=(gcc libc6-dev)
# The store's etcd backend (etcd 3.4) and its tests' etcd members.
PACKAGES+=(etcd-server)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done

docker_units=(docker.service docker.socket containerd.service)
# Tests start their own registries on random loopback ports; the packaged one stays off.
docker_units+=(docker-registry.service)

if ((${#missing[@]} > 0)); then
  echo "install.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep maintainer scripts from starting services (docker, containerd) during the install.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  cleanup_policy() { if ((created_policy)); then rm -f "$policy"; fi; }
  trap cleanup_policy EXIT
  # apt's lists may be absent on a fresh machine: fetch them once, only when an install is due.
  if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
  cleanup_policy
  trap - EXIT
fi

# Tests start their own dockerd; a system one would compete for /var/run/docker.sock and
# change the host's network (bridge, iptables). Disable and stop the units, quietly when
# systemd is not PID 1 (containers, CI sandboxes).
if command -v systemctl >/dev/null; then
  for unit in "${docker_units[@]}"; do
    if systemctl is-enabled "$unit" >/dev/null 2>&1; then
      systemctl disable "$unit" >/dev/null 2>&1 || true
    fi
    if [[ -d /run/systemd/system ]] && systemctl is-active "$unit" >/dev/null 2>&1; then
      systemctl stop "$unit" >/dev/null 2>&1 || true
    fi
  done
fi

# Node dependencies: reinstall only when package-lock.json changed since the last npm ci
# (npm writes node_modules/.package-lock.json on every install).
# A node_modules that is a symlink (worktrees sharing one install) belongs to whoever linked it:
# npm ci would empty the shared target through the link.
if [[ -L node_modules ]]; then
  echo "install.sh: node_modules is a symlink; leaving it as it is"
elif [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "install.sh: npm ci"
  npm ci --no-audit --no-fund
fi

# The user-namespace helper (native/berth-userns.c, with native/veth-netlink.c for attaching
# containers to networks over rtnetlink): namespace syscalls Node cannot make.
# gcc and libc6-dev come with build-essential on most machines; rebuilt only when a source changed.
native_newer() { local f; for f in native/*.c native/*.h; do [[ "$f" -nt native/bin/berth-userns ]] && return 0; done; return 1; }
if [[ ! -x native/bin/berth-userns ]] || native_newer; then
  echo "install.sh: building native/bin/berth-userns"
  mkdir -p native/bin
  gcc -O2 -Wall -Wextra -Werror -o native/bin/berth-userns.tmp native/berth-userns.c native/veth-netlink.c
  mv native/bin/berth-userns.tmp native/bin/berth-userns
fi

# A type error fails the install (and so CI). tsc still emits on errors, so a developer whose
# colleagues' files are mid-edit may set BERTH_ALLOW_TYPE_ERRORS=1 to go on with the output.
echo "install.sh: npm run build"
if ! npm run --silent build; then
  if [[ ${BERTH_ALLOW_TYPE_ERRORS:-0} == 1 ]]; then
    echo "install.sh: tsc reported errors; going on because BERTH_ALLOW_TYPE_ERRORS=1" >&2
  else
    echo "install.sh: tsc reported errors (set BERTH_ALLOW_TYPE_ERRORS=1 to use the output anyway)" >&2
    exit 1
  fi
fi
if [[ ! -f dist/src/cli/berth.js ]]; then
  echo "install.sh: build produced no dist/src/cli/berth.js" >&2
  exit 1
fi
