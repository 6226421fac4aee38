#!/usr/bin/env bash
# Runs every test of the workspace on a Debian machine, as root, with nothing
# installed beforehand: it first installs and sets up what the tests need,
# then runs `cargo test --workspace` with the arguments it was given.
#
#   ./test.sh                      # set up (idempotent), then all tests
#   ./test.sh -p umdev-sysfs       # set up, then one crate's tests
#   ./test.sh --setup-only         # only the set-up
#
# What the tests need, and why:
#   mdevctl, fuse3        the sysfs face is checked with Debian's real mdevctl
#                         over a FUSE mount (crates/umdev-sysfs/tests/mdevctl.rs)
#   gcc, libc6-dev        the end-to-end guest helper is a static C program
#   python3, util-linux   the QEMU runner (guestkit.py, unshare, setpriv)
#   the QEMU runner       ../shared/tools/qemu-vfio-user/setup.sh: a sid chroot with
#                         QEMU 11 and Debian's guest kernel (crates/umdev/tests/e2e.rs)
#   kernel selftests      ../shared/tools/kernel-selftests/build.sh 6.12: Linux's own
#                         iommufd selftests, built unchanged, run under `umdev run`
#                         (crates/umdev/tests/kernel_selftests.rs)
#   128 huge pages        vm.nr_hugepages: those selftests' MAP_HUGETLB buffers
#   libumdev_preload.so   cargo build -p umdev-preload: the tests load it into
#                         those programs (cargo test builds no cdylib of its own)
#
# Every step is idempotent: a second run spends about a second here. The
# first run on a fresh machine downloads ~500 MB (see README.md for its time).
# A missing piece is never skipped by the tests: it fails them, naming this
# script.
set -euo pipefail
cd "$(dirname "$0")"
shared=../shared/tools

setup_only=false
if [ "${1:-}" = "--setup-only" ]; then
    setup_only=true
    shift
fi

step() { echo "== test.sh: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: the tests need root (FUSE mounts, mount namespaces, apt-get); run it as root" >&2
    exit 2
fi

packages=(mdevctl fuse3 gcc libc6-dev python3 util-linux)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "QEMU vfio-user runner"
"$shared/qemu-vfio-user/setup.sh" >/dev/null

step "Linux 6.12 iommufd selftests"
UMDEV_SELFTESTS_6_12=$("$shared/kernel-selftests/build.sh" 6.12 | tail -n 1)
export UMDEV_SELFTESTS_6_12
# Their hugepage fixtures map MAP_HUGETLB buffers (up to 128 MiB at once):
# reserve 2 MiB huge pages if fewer are (a host setting; 256 MiB).
if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 128 ]; then
    step "reserving 128 huge pages for the selftests' MAP_HUGETLB buffers"
    echo 128 > /proc/sys/vm/nr_hugepages
fi

if $setup_only; then
    step "set-up done"
    exit 0
fi

step "libumdev_preload.so"
cargo build -p umdev-preload

step "cargo test --workspace $*"
exec cargo test --workspace "$@"
