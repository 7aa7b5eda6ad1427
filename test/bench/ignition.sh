# shellcheck shell=bash
# Sourced by side-by-side.sh: ignition_binary prints the path of an Ignition
# to compare with, or nothing (and says why on stderr).
#
# $IGNITION first, then `ignition` on PATH, then one built here from
# Ignition's own Go module (cached in $CACHE; it needs cgo and libblkid's
# headers, Debian's libblkid-dev). The build turns SELinux relabelling off,
# as a distribution without SELinux builds it: with it on, the files stage
# fails on a tree without /etc/selinux/config.
IGNITION_MODULE=github.com/coreos/ignition/v2
IGNITION_VERSION=${IGNITION_VERSION:-v2.24.0}

ignition_binary() {
  local cache=$1
  if [ -n "${IGNITION:-}" ]; then
    echo "$IGNITION"
    return
  fi
  if command -v ignition >/dev/null; then
    command -v ignition
    return
  fi
  local bin=$cache/ignition-$IGNITION_VERSION
  if [ -x "$bin" ]; then
    echo "$bin"
    return
  fi
  if ! command -v go >/dev/null || ! command -v cc >/dev/null || [ ! -e /usr/include/blkid/blkid.h ]; then
    echo "ignition: not installed, and building $IGNITION_MODULE@$IGNITION_VERSION needs go, a C compiler and libblkid-dev: not compared" >&2
    return
  fi
  echo "ignition: building $IGNITION_MODULE@$IGNITION_VERSION into $bin (once)" >&2
  local gobin
  gobin=$(mktemp -d)
  mkdir -p "$cache"
  if (cd "$gobin" && GOBIN=$gobin GOFLAGS=-mod=mod go install \
    -ldflags "-X $IGNITION_MODULE/internal/distro.selinuxRelabel=false -X $IGNITION_MODULE/internal/version.Raw=$IGNITION_VERSION" \
    "$IGNITION_MODULE/internal@$IGNITION_VERSION") >&2; then
    mv "$gobin/internal" "$bin"
    echo "$bin"
  else
    echo "ignition: the build failed: not compared" >&2
  fi
  rm -rf "$gobin"
}
