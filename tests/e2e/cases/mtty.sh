# Case mtty: an mtty mdev created through the sysfs tree; the guest's stock
# 8250_pci driver binds and the tty loops text back with interrupts.

MTTY_UUID=83b8f4f2-509f-382f-3c1e-e6bfe0fa0001

# setup_mtty: create the mdev (once) and print its socket.
setup_mtty() {
    local type
    type=$(find_type '^mtty-2$') || { log "no mtty-2 type under $ROOT/sys/class/mdev_bus"; return 1; }
    create_mdev "$type" "$MTTY_UUID" || return 1
    socket_of "$MTTY_UUID"
}

case_mtty() {
    local sock
    sock=$(setup_mtty) || return 1
    guest mtty --socket "$sock" --script "$HERE/guest/mtty.sh"
}
