# Cases sdma-memfd and sdma-msg: two sdma mdevs on one parent in one guest,
# once with guest RAM shared by memfd (fd-mapped DMA) and once without
# (DMA_READ/DMA_WRITE messages). After each guest: the fault of the descriptor
# above guest RAM is in `umdev faults`, and `umdev stats` shows both mdevs'
# DMA.

SDMA_UUIDS='83b8f4f2-509f-382f-3c1e-e6bfe0fa0002 83b8f4f2-509f-382f-3c1e-e6bfe0fa0003'
# The PCI identity of an sdma mdev (docs/sdma.md).
SDMA_VENDOR=${SDMA_VENDOR:-0x1234}
SDMA_DEVICE=${SDMA_DEVICE:-0x5d4a}

# setup_sdma: create both mdevs on the first sdma parent (once); print their
# sockets.
setup_sdma() {
    local type uuid
    type=$(find_type '^idxd-wq$|sdma') || { log "no sdma mdev type (idxd-wq) under $ROOT/sys/class/mdev_bus"; return 1; }
    for uuid in $SDMA_UUIDS; do
        create_mdev "$type" "$uuid" || return 1
        socket_of "$uuid"
    done
}

# sdma_env FILE: the guest's parameters.
sdma_env() {
    cat >"$1" <<ENV
SDMA_VENDOR=$SDMA_VENDOR
SDMA_DEVICE=$SDMA_DEVICE
SDMA_COUNT=2
DMA_BASE=$DMA_BASE
DMA_SIZE=$DMA_SIZE
FAULT_IOVA=$FAULT_IOVA
ENV
}

# sdma_run CASE [--memfd]
sdma_run() {
    local case=$1
    shift
    local socks=() s rc=0
    for s in $(setup_sdma); do socks+=(--socket "$s"); done
    [ ${#socks[@]} = 4 ] || { log "$case: sdma mdevs not available"; return 1; }
    mkdir -p "$OUT/$case"
    sdma_env "$OUT/$case/sdma.env"
    umdev_json "$case" stats-before stats || return 1
    umdev_json "$case" faults-before faults || return 1
    guest "$case" "${socks[@]}" "$@" --script "$HERE/guest/sdma.sh" \
        --file "$OUT/bin/sdmatest=/files/sdmatest" --file "$OUT/$case/sdma.env=/files/sdma.env" \
        --append "$MEMMAP" || rc=$?
    [ $rc = 0 ] || return $rc

    # Host side: each mdev's DMA under its own PASID, and the faults above RAM.
    umdev_json "$case" stats-after stats || return 1
    umdev_json "$case" faults-after faults || return 1
    umdev_cli "$case" stats stats || true
    umdev_cli "$case" faults faults || true
    # shellcheck disable=SC2086 # SDMA_UUIDS is a list
    python3 "$HERE/check_dma.py" "$OUT/$case" "$FAULT_IOVA" "$OUT/$case/console.log" $SDMA_UUIDS \
        >"$OUT/$case/host-checks.log" 2>&1 || rc=$?
    sed 's/^/  /' "$OUT/$case/host-checks.log" >&2
    [ $rc = 0 ] || check_fail "$case" "$(grep FAIL "$OUT/$case/host-checks.log" | head -n1)"
}

case_sdma_memfd() { sdma_run sdma-memfd --memfd; }
case_sdma_msg() { sdma_run sdma-msg; }
