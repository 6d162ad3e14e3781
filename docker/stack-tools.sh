#!/bin/sh
# Tools of `make stack-test`, installed once into CACHE (kept between runs):
#   - Debian's docker.io (dockerd 20.10) and debootstrap, when missing (apt; needs root);
#   - docker-compose 1.29.2 in its own venv, CACHE/compose-venv (its old pins stay out of .venv);
#   - CACHE/bookworm-minbase.tar: a Debian bookworm minbase root file system from debootstrap
#     (the slow part, ~1 minute and ~40 MB from Debian's archive), imported as the base image.
# Usage: docker/stack-tools.sh CACHE [PYTHON]
set -eu
cache=${1:?usage: stack-tools.sh CACHE [PYTHON]}
python=${2:-python3}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$cache"

need=""
command -v dockerd >/dev/null 2>&1 || need="$need docker.io"
command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
if [ -n "$need" ]; then
  echo "stack-tools: apt-get install$need"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi

venv="$cache/compose-venv"
if ! "$venv/bin/docker-compose" version >/dev/null 2>&1; then
  echo "stack-tools: docker-compose 1.29.2 into $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q "cython<3" wheel "setuptools<70"
  "$venv/bin/pip" install -q --no-build-isolation "PyYAML==5.4.1"
  "$venv/bin/pip" install -q -r "$here/stack-compose-requirements.txt"
  "$venv/bin/docker-compose" version >/dev/null
fi

rootfs_tar="$cache/bookworm-minbase.tar"
if [ ! -s "$rootfs_tar" ]; then
  echo "stack-tools: debootstrap bookworm minbase (cached in $rootfs_tar)"
  tmp=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  timeout 1200 debootstrap --variant=minbase bookworm "$tmp/rootfs" http://deb.debian.org/debian >"$tmp/debootstrap.log" 2>&1 \
    || { tail -20 "$tmp/debootstrap.log" >&2; exit 1; }
  # The downloaded packages are not part of the system; apt lists are fetched again by each build.
  rm -rf "$tmp/rootfs/var/cache/apt/archives/"*.deb "$tmp/rootfs/var/lib/apt/lists/"*
  tar -C "$tmp/rootfs" -cf "$rootfs_tar.part" .
  mv "$rootfs_tar.part" "$rootfs_tar"
fi
echo "stack-tools: ready in $cache"
