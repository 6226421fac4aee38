# Guest script: two sdma mdevs (work queues of one sdma parent) served by
# umdev. For each one the guest enables bus mastering and runs
# /files/sdmatest, which builds a descriptor ring and buffers in a reserved
# region of guest RAM, rings the doorbell and checks memmove, fill, compare,
# compare-pattern and CRC-32C results and their completion records, and that
# a descriptor pointing above guest RAM completes with the page-fault status
# and that address; and that each queue's interrupt (the mdev's MSI-X vector,
# fed by the queue's IMS entry) reaches the guest's CPU. Both queues run at the
# same time.
#
# /files/sdma.env (written by the host) sets SDMA_VENDOR, SDMA_DEVICE,
# SDMA_COUNT, DMA_BASE, DMA_SIZE (the kernel's memmap= region) and FAULT_IOVA.
set -e
. /files/sdma.env
grep -q "memmap=" /proc/cmdline || fail "no memmap= reserved region on the kernel command line"

pids='' i=0
while [ $i -lt "$SDMA_COUNT" ]; do
    dev=$(pci_find "$SDMA_VENDOR" "$SDMA_DEVICE" $i) || fail "sdma function $i ($SDMA_VENDOR:$SDMA_DEVICE) not found"
    bdf=$(basename "$dev")
    echo "sdma: $bdf BAR0 $(pci_bar "$dev" 0) command $(cfg_read "$dev" 4 2)"
    # One MSI-X capability (the work queue's interrupt), first in the list.
    cap=$(cfg_read "$dev" 0x34 1)
    [ "$(cfg_read "$dev" $((cap)) 1)" = 0x11 ] || fail "$bdf: first capability at $cap is not MSI-X"
    pci_set_master "$dev"
    [ $(($(cfg_read "$dev" 4 2) & 0x6)) -eq 6 ] || fail "$bdf: bus mastering did not stick"
    # Each queue gets its own 1 MiB of the reserved region.
    base=$((DMA_BASE + i * 0x100000))
    # Vectors 0xdd, 0xde, ...: free on this guest (no driver allocates them),
    # so each arrival is logged as "0.<vector> No irq handler for vector".
    vector=$((0xdd + i))
    /files/sdmatest "$dev" "$base" 0x100000 "$FAULT_IOVA" $vector >"/tmp/sdma.$i.log" 2>&1 &
    pids="$pids $!"
    i=$((i + 1))
done
i=0 failed=''
for p in $pids; do
    rc=0
    wait "$p" || rc=$?
    cat "/tmp/sdma.$i.log"
    [ $rc -eq 0 ] || failed="$failed $i(rc=$rc)"
    i=$((i + 1))
done
[ -z "$failed" ] || fail "sdmatest failed on function(s)$failed"
i=0
while [ $i -lt "$SDMA_COUNT" ]; do
    vector=$((0xdd + i))
    n=0
    until dmesg | grep -q "\.$vector No irq handler for vector"; do
        [ $n -lt 50 ] || fail "function $i: no interrupt arrived on vector $vector (MSI-X entry 0)"
        usleep 100000
        n=$((n + 1))
    done
    usleep 200000
    got=$(dmesg | grep -c "\.$vector No irq handler for vector")
    # Exactly one: only the last descriptor asks for it (RCI); the faults had RCR
    # and latch no error.
    [ "$got" = 1 ] || fail "function $i: $got interrupts on vector $vector, expected 1"
    echo "sdma: function $i: the queue's interrupt arrived on vector $vector, once"
    i=$((i + 1))
done
echo "sdma: pass"
