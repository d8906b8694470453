#!/usr/bin/env bash
# Builds the sipplauncher image (examples/Dockerfile) with buildah, podman or docker.
#
#   bash examples/build-image.sh [TAG]          TAG defaults to sipplauncher:latest
#
# Environment:
#   SIPPLAUNCHER_BIN   the sipplauncher binary (default: target/release/sipplauncher, built
#                      with `cargo build --release` when missing)
#   KEYLOG_LIB         the key-log library (default: target/release/libsipplauncher_keylog.so)
#   BASE               the base image (default: debian:bookworm-slim, the Debian the binaries
#                      are built on; glibc must match). BASE=debootstrap makes it here from
#                      Debian's packages (debootstrap) when no registry is reachable, and keeps
#                      it as localhost/debian:bookworm-slim for the next build.
#   BUILDER            buildah, podman or docker (default: the first one found)
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-sipplauncher:latest}
bin=${SIPPLAUNCHER_BIN:-target/release/sipplauncher}
lib=${KEYLOG_LIB:-target/release/libsipplauncher_keylog.so}
base=${BASE:-debian:bookworm-slim}

say() { printf 'build-image: %s\n' "$*" >&2; }
die() { printf 'build-image: error: %s\n' "$*" >&2; exit 1; }

if [ -z "${SIPPLAUNCHER_BIN:-}" ] && { [ ! -x "$bin" ] || [ ! -f "$lib" ]; }; then
    say "cargo build --release -p sipplauncher -p sipplauncher-keylog"
    cargo build --release -p sipplauncher -p sipplauncher-keylog
fi
[ -x "$bin" ] || die "no sipplauncher binary at $bin"
[ -f "$lib" ] || die "no key-log library at $lib"

builder=${BUILDER:-}
if [ -z "$builder" ]; then
    for b in buildah podman docker; do
        if command -v "$b" >/dev/null; then builder=$b; break; fi
    done
fi
[ -n "$builder" ] || die "no image builder: apt-get install -y buildah (or podman, or docker)"

# The base from Debian's packages, made once (a machine without a container registry).
if [ "$base" = debootstrap ]; then
    base=localhost/debian:bookworm-slim
    [ "$builder" = buildah ] || die "BASE=debootstrap needs BUILDER=buildah"
    if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
        command -v debootstrap >/dev/null || die "BASE=debootstrap needs debootstrap (apt-get install -y debootstrap)"
        root=$(mktemp -d)
        trap 'rm -rf "$root"' EXIT
        say "debootstrap --variant=minbase bookworm (a few minutes, once)"
        debootstrap --variant=minbase bookworm "$root/fs" http://deb.debian.org/debian >"$root/log" 2>&1 ||
            { tail -20 "$root/log" >&2; die "debootstrap failed"; }
        tar -C "$root/fs" -cf "$root/fs.tar" .
        ctr=$(buildah from scratch)
        buildah add "$ctr" "$root/fs.tar" / >/dev/null
        buildah commit -q "$ctr" "$base" >/dev/null
        buildah rm "$ctr" >/dev/null
        say "base image $base made"
    fi
fi

# A small build context: the Dockerfile and the two files it copies.
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"${root:+ "$root"}' EXIT
cp examples/Dockerfile "$ctx/Dockerfile"
cp "$bin" "$ctx/sipplauncher"
cp "$lib" "$ctx/libsipplauncher_keylog.so"

say "$builder: $tag from $base"
case "$builder" in
buildah)
    # chroot isolation: RUN works where no OCI runtime can make containers (a VM whose cgroups
    # crun refuses); the build only installs packages.
    buildah bud --isolation chroot --layers=false --build-arg "BASE=$base" -t "$tag" "$ctx"
    ;;
podman | docker)
    "$builder" build --build-arg "BASE=$base" -t "$tag" "$ctx"
    ;;
*) die "unknown BUILDER $builder (buildah, podman or docker)" ;;
esac
say "built $tag"
