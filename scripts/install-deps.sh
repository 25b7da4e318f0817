#!/usr/bin/env bash
# Installs every Debian 12 package accord needs to build, test, fuzz and benchmark.
# Idempotent: a package already present is left alone, and apt is not touched at all
# when everything is there. The scripts that build call this first.
set -euo pipefail

# Debian 12 package names (see ../shared/TOOLCHAIN.md). Boost: only the 1.81 names;
# an unversioned libboost-*-dev pulls 1.74 and removes 1.81.
packages=(
  g++-12 cmake ninja-build pkg-config
  libfmt-dev libexpected-dev libtoml11-dev
  libboost1.81-dev libboost-json1.81-dev
  libssl-dev libcli11-dev
  libsqlite3-dev sqlite3 libargon2-dev softhsm2 libp11-kit-dev
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev clang-format
  python3 time curl openssl procps
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js and npm drive only the Cedar comparison benchmark (bench/cedar). Some images ship a
# Node.js that bundles npm and conflicts with Debian's npm package: install only when absent.
if [ "${ACCORD_WITH_NODE:-0}" = 1 ] && ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
# nginx is the upper bound of bench/api_bench.sh only (in /usr/sbin, which a user's PATH may not
# have).
if [ "${ACCORD_WITH_NGINX:-0}" = 1 ] && [ ! -x /usr/sbin/nginx ] && ! command -v nginx >/dev/null; then
  missing+=(nginx-light)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
# Through env: sudo's env_reset would drop an exported DEBIAN_FRONTEND. A fresh machine's
# unattended upgrades may hold the package lock for a while: wait for it (up to 10 minutes).
# The lock timeout covers dpkg's lock; `update` also takes the package lists' lock, so it is
# tried again while that is held (or the network is down): each try for at most 10 minutes,
# all of them for about 15.
started=$SECONDS
for attempt in $(seq 1 30); do
  timeout 600 $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq && break
  if [ "$attempt" = 30 ] || [ $((SECONDS - started)) -ge 900 ]; then
    echo "install-deps: apt-get update kept failing; giving up" >&2
    exit 1
  fi
  echo "install-deps: apt-get update failed; trying again in 10 s" >&2
  sleep 10
done
$sudo env DEBIAN_FRONTEND=noninteractive \
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
