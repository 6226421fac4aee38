#!/usr/bin/env bash
# The vfio-mdev-pci usage recipe of seed 004 (steps b-e and g), literally,
# against a running `umdev serve`'s tree bound over /sys in a private mount
# namespace, so every path is the seed's own. The kernel module of step a)
# is umdev's built-in `mdev-pci` driver; step f) (QEMU) is the e2e suite's.
#
# usage: tests/sysfs/seed004.sh SYS_DIR [BDF]
# Prints each step; exits non-zero at the first step that fails.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 SYS_DIR [BDF]" >&2; exit 2; }
if [ -z "${SEED004_IN_NS:-}" ]; then
    SEED004_IN_NS=1 exec unshare --mount --propagation private \
        sh -c 'mount --bind "$1" /sys && exec bash "$0" "$@"' "$0" "$@"
fi
dev_bdf=${2:-0000:05:00.0}
uuid=83b8f4f2-509f-382f-3c1e-e6bfe0fa1003
step() { echo "seed004: $*"; }
fail() { echo "seed004: FAIL: $*" >&2; exit 1; }

step "b) unbind the original driver ($(basename "$(readlink /sys/bus/pci/devices/$dev_bdf/driver)"))"
echo $dev_bdf > /sys/bus/pci/devices/$dev_bdf/driver/unbind
[ ! -e /sys/bus/pci/devices/$dev_bdf/driver ] || fail "still bound after unbind"

vend_id=$(cut -c3- /sys/bus/pci/devices/$dev_bdf/vendor)
dev_id=$(cut -c3- /sys/bus/pci/devices/$dev_bdf/device)
step "c) bind mdev-pci by id: $vend_id $dev_id"
echo $vend_id $dev_id > /sys/bus/pci/drivers/mdev-pci/new_id
[ "$(basename "$(readlink /sys/bus/pci/devices/$dev_bdf/driver)")" = mdev-pci ] ||
    fail "new_id did not bind mdev-pci"

step "d) check the supported mdev instances"
types=$(ls /sys/bus/pci/devices/$dev_bdf/mdev_supported_types/)
echo "$types"
[ "$(echo "$types" | wc -l)" = 1 ] || fail "expected one type, got: $types"
type_dir=/sys/bus/pci/devices/$dev_bdf/mdev_supported_types/$types
ls $type_dir/
for f in available_instances create device_api devices name; do
    [ -e $type_dir/$f ] || fail "$type_dir/$f missing"
done
[ "$(cat $type_dir/available_instances)" = 1 ] || fail "available_instances is not 1"
[ "$(cat $type_dir/device_api)" = vfio-pci ] || fail "device_api is not vfio-pci"

step "e) create mdev on this physical device (only 1 instance)"
echo "$uuid" > $type_dir/create
[ -d /sys/bus/mdev/devices/$uuid ] || fail "no /sys/bus/mdev/devices/$uuid"
[ "$(cat $type_dir/available_instances)" = 0 ] || fail "the instance was not taken"
[ "$(basename "$(readlink /sys/bus/mdev/devices/$uuid/mdev_type)")" = "$types" ] ||
    fail "mdev_type link does not name $types"
if err=$( (echo 83b8f4f2-509f-382f-3c1e-e6bfe0fa1004 > $type_dir/create) 2>&1 ); then
    fail "a second instance was created"
fi
case $err in
    *"No space left on device"*) echo "second create: ENOSPC" ;;
    *) fail "second create failed with the wrong error: $err" ;;
esac

step "g) destroy mdev"
echo 1 > /sys/bus/mdev/devices/$uuid/remove
[ ! -e /sys/bus/mdev/devices/$uuid ] || fail "the mdev is still there"
[ "$(cat $type_dir/available_instances)" = 1 ] || fail "the instance was not given back"
step pass
