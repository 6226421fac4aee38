# Case mdev-pci: a platform endpoint wrapped by mdev-pci (unbind its driver,
# new_id, create), attached to a guest that drives its DMA test registers.

MDEVPCI_BDF=${MDEVPCI_BDF:-0000:05:00.0}
MDEVPCI_UUID=83b8f4f2-509f-382f-3c1e-e6bfe0fa0004

# setup_mdev_pci: wrap the function and create its mdev (once); print the socket.
setup_mdev_pci() {
    local fn=$ROOT/sys/bus/pci/devices/$MDEVPCI_BDF type drv
    [ -d "$fn" ] || { log "no $fn"; return 1; }
    if [ ! -d "$fn/mdev_supported_types" ]; then
        if [ -e "$fn/driver" ]; then
            drv=$(basename "$(readlink "$fn/driver")")
            log "unbinding $MDEVPCI_BDF from $drv"
            sysfs_write "$fn/driver/unbind" "$MDEVPCI_BDF" || return 1
        fi
        sysfs_write "$ROOT/sys/bus/pci/drivers/mdev-pci/new_id" \
            "$(sed 's/^0x//' "$fn/vendor") $(sed 's/^0x//' "$fn/device")" || return 1
        wait_path "$fn/mdev_supported_types" 5 || { log "mdev-pci did not bind $MDEVPCI_BDF"; return 1; }
    fi
    for type in "$fn"/mdev_supported_types/*; do break; done
    [ -d "$type" ] || { log "$MDEVPCI_BDF has no mdev type"; return 1; }
    create_mdev "$type" "$MDEVPCI_UUID" || return 1
    socket_of "$MDEVPCI_UUID"
}

# mdev_pci_env FILE
mdev_pci_env() {
    local fn=$ROOT/sys/bus/pci/devices/$MDEVPCI_BDF
    cat >"$1" <<ENV
PCI_VENDOR=$(cat "$fn/vendor")
PCI_DEVICE=$(cat "$fn/device")
DMA_BASE=$((DMA_BASE + 0x200000))
FAULT_IOVA=$FAULT_IOVA
ENV
}

case_mdev_pci() {
    local sock
    sock=$(setup_mdev_pci) || return 1
    mkdir -p "$OUT/mdev-pci"
    mdev_pci_env "$OUT/mdev-pci/mdev-pci.env"
    guest mdev-pci --socket "$sock" --script "$HERE/guest/mdev-pci.sh" \
        --file "$OUT/mdev-pci/mdev-pci.env=/files/mdev-pci.env" --append "$MEMMAP"
}
