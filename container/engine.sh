# The build's settings and the engine, in one place. Sourced by
# container/build-image, container/run-image, tests/run-all,
# tests/integration/helpers.bash and benchmarks/run; container/verify-image and
# container/list-packages ask it through container/engine_choice.py. It
# chooses the container engine and the image's tag, installs an engine on a
# bare Debian machine, and makes the Debian base image for the builder stage
# when no registry can be reached.
# shellcheck shell=bash

CONTAINER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$CONTAINER_DIR")
DEBIAN_RELEASE=${DEBIAN_RELEASE:-trixie}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { say "$*"; exit 1; }

# Architectures, Debian's names (the same as OCI's for these two).
NATIVE_ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
case "$NATIVE_ARCH" in x86_64) NATIVE_ARCH=amd64 ;; aarch64) NATIVE_ARCH=arm64 ;; esac
# PLATFORM: the one platform to build for (default this machine's). PLATFORMS:
# several, comma-separated, each built as IMAGE-ARCH and joined in a manifest
# list named IMAGE (docs/image.md, "Multi-arch").
PLATFORM=${PLATFORM:-linux/$NATIVE_ARCH}
PLATFORMS=${PLATFORMS:-}
for platform in ${PLATFORMS//,/ } "$PLATFORM"; do
    case "$platform" in
        linux/amd64|linux/arm64) ;;
        *) die "PLATFORM(S): '$platform' is neither linux/amd64 nor linux/arm64" ;;
    esac
done
unset platform
# The tag: cephaloproxy:RELEASE, with -ARCH for another architecture's image.
if [ -z "${IMAGE:-}" ]; then
    IMAGE=cephaloproxy:$DEBIAN_RELEASE
    [ "${PLATFORM#linux/}" = "$NATIVE_ARCH" ] || [ -n "$PLATFORMS" ] || IMAGE=$IMAGE-${PLATFORM#linux/}
fi

# platform_images: "PLATFORM IMAGE" a line, for each image a build makes:
# PLATFORM's alone, or one per PLATFORMS (IMAGE-ARCH).
platform_images() {
    local platform
    if [ -z "$PLATFORMS" ]; then
        echo "$PLATFORM $IMAGE"
        return
    fi
    for platform in ${PLATFORMS//,/ }; do
        echo "$platform $IMAGE-${platform#linux/}"
    done
}

# need_emulation ARCH: another architecture's programs run here through
# binfmt_misc and qemu-user-static (registered with the F flag, so that they
# run inside containers too); installed and registered when missing.
need_emulation() {
    local arch=$1 qemu
    [ "$arch" = "$NATIVE_ARCH" ] && return 0
    case "$arch" in amd64) qemu=x86_64 ;; arm64) qemu=aarch64 ;; esac
    local entry=/proc/sys/fs/binfmt_misc/qemu-$qemu
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        [ "$(id -u)" = 0 ] || die "binfmt_misc is not mounted; as root: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc"
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
    fi
    if [ ! -e "$entry" ]; then
        apt_install qemu-user-static binfmt-support
        update-binfmts --enable "qemu-$qemu" >/dev/null 2>&1 || true
    fi
    grep -qx enabled "$entry" 2>/dev/null && grep -q '^flags:.*F' "$entry" \
        || die "$arch programs cannot run here: $entry is not registered, enabled, with the F flag (update-binfmts --enable qemu-$qemu)"
}

# Debian packages, installed only when missing and only as root with apt-get.
apt_install() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'ok installed' \
            || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        die "missing ${missing[*]}; install them (as root: apt-get install -y ${missing[*]})"
    fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ENGINE: docker when its daemon answers, else podman with the project's
# containers.conf. Installs nothing (the test suites only say what is missing).
pick_engine() {
    if [ -z "${ENGINE:-}" ]; then
        if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
            ENGINE=docker
        else
            ENGINE=podman
        fi
    fi
    case "$ENGINE" in
        podman) export CONTAINERS_CONF=${CONTAINERS_CONF:-$CONTAINER_DIR/containers.conf} ;;
        docker) ;;
        *) die "ENGINE must be docker or podman, not '$ENGINE'" ;;
    esac
    export ENGINE
}

# pick_engine, and podman (with runc) installed when it is the choice and missing.
choose_engine() {
    pick_engine
    if [ "$ENGINE" = podman ]; then
        command -v podman >/dev/null && command -v runc >/dev/null || apt_install podman runc
    fi
}

engine() { "$ENGINE" "$@"; }

# image_name ENGINE [TAG]: the name ENGINE files TAG (default IMAGE) under.
# podman puts a bare name under localhost/; docker under docker.io/library/,
# where a localhost/ name would not find it.
image_name() {
    local tag=${2:-$IMAGE}
    case "$1" in
        podman) echo "localhost/${tag#localhost/}" ;;
        docker) echo "${tag#localhost/}" ;;
    esac
}

image_exists() { engine image inspect "$1" >/dev/null 2>&1; }

# The builder stage's base: BUILDER_IMAGE if given; else debian:RELEASE-slim
# when it is here or can be pulled; else a local minbase bootstrap, made once.
choose_builder_image() {
    [ -n "${BUILDER_IMAGE:-}" ] && return 0
    local official="debian:$DEBIAN_RELEASE-slim" local_base="localhost/cephaloproxy-base:$DEBIAN_RELEASE"
    if image_exists "$official"; then
        BUILDER_IMAGE=$official
    elif image_exists "$local_base"; then
        BUILDER_IMAGE=$local_base
    elif timeout 60 "$ENGINE" pull -q "docker.io/library/$official" >/dev/null 2>&1; then
        BUILDER_IMAGE=$official
    else
        say "no registry answers: bootstrapping $local_base with debootstrap (once)"
        bootstrap_base "$local_base"
        BUILDER_IMAGE=$local_base
    fi
}

# debootstrap --variant=minbase, then make it what debian:RELEASE-slim is for
# apt: the release, its -updates and its security suite (minbase only writes
# the release itself into sources.list), no package cache, no lists.
bootstrap_base() {
    local name=$1 dir
    [ "$(id -u)" = 0 ] || die "debootstrap needs root; or pass BUILDER_IMAGE=<a Debian $DEBIAN_RELEASE image>"
    command -v debootstrap >/dev/null || apt_install debootstrap
    dir=$(mktemp -d "${TMPDIR:-/var/tmp}/cephaloproxy-base.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$dir'" EXIT
    debootstrap --variant=minbase "$DEBIAN_RELEASE" "$dir" "$DEBIAN_MIRROR" >"$dir.log" 2>&1 \
        || { tail -20 "$dir.log" >&2; rm -f "$dir.log"; die "debootstrap $DEBIAN_RELEASE failed"; }
    rm -f "$dir.log" "$dir/etc/apt/sources.list"
    cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: $DEBIAN_RELEASE $DEBIAN_RELEASE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $DEBIAN_SECURITY_MIRROR
Suites: $DEBIAN_RELEASE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar -C "$dir" --numeric-owner -c . \
        | engine import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["bash"]' - "$name" >/dev/null
    rm -rf "$dir"
    trap - EXIT
}
