#!/usr/bin/env bash
# Builds the operator image with no container daemon and no registry (D45):
#   1. a Debian bookworm root filesystem from Debian's packages (debootstrap, minbase + python3), cached;
#   2. imported as the image localhost/rbg-base:bookworm (buildah, vfs storage);
#   3. Containerfile built on it with buildah (chroot isolation), tagged localhost/rbg:<version>;
#   4. saved as an OCI archive in $OUT/rbg-<version>.oci.tar; its size printed.
# Needs (Debian packages): debootstrap buildah (uidmap); run as root. Usage: hack/build-image.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/.." && pwd)
OUT=${RBG_IMAGE_DIR:-${RBG_CACHE_DIR:-$HOME/.cache/rbg}/image}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs} BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
die() { echo "build-image: $*" >&2; exit 1; }
for tool in debootstrap buildah; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install debootstrap buildah uidmap)"
done
[ "$(id -u)" = 0 ] || die "debootstrap and buildah's vfs storage need root here"
# vfs, as hack/run-image.py reads it: buildah's default driver differs between machines (overlay, vfs)
buildah() { command buildah --storage-driver=vfs "$@"; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml" | head -1)
[ -n "$version" ] || die "no version in pyproject.toml"
mkdir -p "$OUT"
rootfs="$OUT/rootfs-bookworm"
if [ ! -f "$rootfs/.complete" ]; then
  rm -rf "$rootfs"
  echo "[base] debootstrap bookworm from $MIRROR (log: $OUT/debootstrap.log) ..."
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$MIRROR" \
    >"$OUT/debootstrap.log" 2>&1 || { tail -n 20 "$OUT/debootstrap.log" >&2; die "debootstrap failed"; }
  # what a container does not need: package caches, docs, locales
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
         "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  touch "$rootfs/.complete"
fi
if ! buildah inspect --type image localhost/rbg-base:bookworm >/dev/null 2>&1; then
  echo "[base] importing the root filesystem as localhost/rbg-base:bookworm ..."
  c=$(buildah from scratch)
  mnt=$(buildah mount "$c")
  tar -C "$rootfs" --exclude=./.complete -cf - . | tar -C "$mnt" -xf -
  buildah umount "$c" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
  buildah commit -q "$c" localhost/rbg-base:bookworm >/dev/null
  buildah rm "$c" >/dev/null
fi
ctx="$OUT/context"; rm -rf "$ctx"; mkdir -p "$ctx/wheels"
echo "[image] wheels of rbg and its pinned dependencies (pip wheel -c constraints.txt) ..."
PY=${PYTHON:-python3}
"$PY" -m pip wheel -q --disable-pip-version-check -c "$root/constraints.txt" -w "$ctx/wheels" "$root" \
  >"$OUT/wheels.log" 2>&1 || { tail -n 20 "$OUT/wheels.log" >&2; die "pip wheel failed"; }
cp "$root/Containerfile" "$ctx/"
echo "[image] building localhost/rbg:$version from Containerfile ..."
buildah build -q --layers=false --build-arg BASE=localhost/rbg-base:bookworm \
  -t "localhost/rbg:$version" -f "$ctx/Containerfile" "$ctx" >"$OUT/build.log" 2>&1 \
  || { tail -n 25 "$OUT/build.log" >&2; die "buildah build failed (log: $OUT/build.log)"; }
rm -f "$OUT/rbg-$version.oci.tar"
buildah push -q "localhost/rbg:$version" "oci-archive:$OUT/rbg-$version.oci.tar:rbg:$version"
size=$(du -h "$OUT/rbg-$version.oci.tar" | cut -f1)
echo "image localhost/rbg:$version built: $OUT/rbg-$version.oci.tar ($size)"
