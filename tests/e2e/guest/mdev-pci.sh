# Guest script: a platform endpoint wrapped by mdev-pci and served by umdev.
# The guest drives the endpoint's DMA test registers (docs/dmatest.md) through
# BAR 0 and checks that a COPY and a FILL land in guest memory, and that a
# destination above guest RAM ends with a write fault at that address.
#
# /files/mdev-pci.env (written by the host) sets PCI_VENDOR, PCI_DEVICE,
# DMA_BASE (the kernel's memmap= region: /dev/mem reads and writes it) and
# FAULT_IOVA.
set -e
. /files/mdev-pci.env
dev=$(pci_find "$PCI_VENDOR" "$PCI_DEVICE") || fail "wrapped function $PCI_VENDOR:$PCI_DEVICE not found"
bdf=$(basename "$dev")
bar=$(pci_bar "$dev" 0)
echo "mdev-pci: $bdf class $(cat "$dev/class") BAR0 $bar command $(cfg_read "$dev" 4 2)"
[ -e "$dev/driver" ] && echo "mdev-pci: note: $bdf is bound to $(basename "$(readlink "$dev/driver")")"

reg() { devmem $((bar + $1)) 32; }
fault_addr() { printf '0x%08x%08x' "$(reg 0x2c)" "$(reg 0x28)"; }
setreg() { devmem $((bar + $1)) 32 "$2"; }
hex() { printf '0x%08X' "$1"; }

[ "$(reg 0x00)" = 0x444D4154 ] || fail "BAR0 ID reads $(reg 0x00), expected 0x444D4154 (DMAT)"
[ "$(reg 0x04)" = 0x00000001 ] || fail "BAR0 VERSION reads $(reg 0x04), expected 1"
pci_set_master "$dev"

# mem_dd ADDR COUNT_BLOCKS: dump COUNT 4 KiB blocks of guest memory at ADDR.
mem_dd() { dd if=/dev/mem bs=4096 skip=$(($1 / 4096)) count="$2" 2>/dev/null; }
mem_put() { dd of=/dev/mem bs=4096 seek=$(($1 / 4096)) conv=notrunc 2>/dev/null; }

src=$DMA_BASE
dst=$((DMA_BASE + 0x10000))
fill=$((DMA_BASE + 0x20000))
len=12345
head -c 16384 /dev/urandom >/tmp/src
# A known word in the COPY's last 4 KiB chunk, watched to see it land.
printf '\021\042\063\104' | dd of=/tmp/src bs=1 seek=12340 conv=notrunc 2>/dev/null
mem_put "$src" </tmp/src
head -c 20480 /dev/zero | mem_put $dst
head -c 20480 /dev/zero | mem_put $fill

# run_op OP SRC DST LEN [WATCH VALUE]: start an operation and print STATUS
# once it is not BUSY. With WATCH, first wait until the 32-bit word of guest
# memory at WATCH reads VALUE (the operation's last chunk has landed).
#
# Why the watch: without --memfd the device's DMA runs as DMA_READ/DMA_WRITE
# requests to QEMU, which QEMU serves in its main loop under the BQL. An MMIO
# read of STATUS while they are in flight holds the BQL in the vCPU thread and
# waits for the server, which waits for QEMU: both sides sit out their 5 s
# message timeouts and the operation faults (h6-requests.md #14). A driver
# waiting for the interrupt or for memory does not meet this; polling memory
# first is what such a driver does.
run_op() {
    setreg 0x08 $(($2 & 0xffffffff))
    setreg 0x0c $(($2 >> 32))
    setreg 0x10 $(($3 & 0xffffffff))
    setreg 0x14 $(($3 >> 32))
    setreg 0x18 "$4"
    setreg 0x1c $((($1 << 1) | 1))
    _n=0
    if [ -n "${5:-}" ]; then
        while [ $_n -lt 500 ] && [ $(($(devmem "$5" 32))) -ne $(($6)) ]; do
            usleep 20000
            _n=$((_n + 1))
        done
    fi
    _n=0
    while [ $_n -lt 200 ]; do
        _s=$(reg 0x20)
        [ $((_s & 0x6)) -ne 0 ] && break
        usleep 20000
        _n=$((_n + 1))
    done
    echo "$_s"
}

done0=$(reg 0x3c)
st=$(run_op 0 "$src" "$dst" "$len" $((dst + 12340)) 0x44332211)
echo "mdev-pci: COPY $len bytes $(hex "$src") -> $(hex "$dst"): STATUS $st DONE_BYTES $(reg 0x38)"
[ "$st" = 0x00000002 ] || fail "COPY ended with STATUS $st (FAULT $(fault_addr))"
[ "$(reg 0x38)" = "$(hex $len)" ] || fail "COPY: DONE_BYTES $(reg 0x38), expected $len"
mem_dd $dst 5 >/tmp/dst
head -c $len /tmp/src >/tmp/want
head -c $len /tmp/dst | cmp - /tmp/want || fail "COPY: destination differs from source"
[ "$(tail -c +$((len + 1)) /tmp/dst | tr -d '\000' | wc -c)" = 0 ] || fail "COPY wrote past $len bytes"
echo "mdev-pci: COPY landed in guest memory byte for byte"

setreg 0x30 0x89abcdef
setreg 0x34 0x01234567
st=$(run_op 1 0 "$fill" 5000 $((fill + 4992)) 0x89abcdef)
echo "mdev-pci: FILL 5000 bytes at $(hex $fill): STATUS $st"
[ "$st" = 0x00000002 ] || fail "FILL ended with STATUS $st"
mem_dd $fill 2 | head -c 5000 >/tmp/fill
i=0
: >/tmp/want
while [ $i -lt 625 ]; do printf '\357\315\253\211\147\105\043\001' >>/tmp/want; i=$((i + 1)); done
cmp /tmp/fill /tmp/want || fail "FILL: memory does not hold the pattern"
echo "mdev-pci: FILL landed in guest memory"

# A FILL needs no DMA from QEMU before its write faults in the IOMMU.
st=$(run_op 1 0 "$FAULT_IOVA" 4096)
fault=$(fault_addr)
echo "mdev-pci: FILL at $FAULT_IOVA (above guest RAM): STATUS $st FAULT $fault"
if [ $((st & 0x4)) -eq 0 ] || [ $(((st >> 8) & 0xff)) -ne 2 ]; then
    fail "FILL above guest RAM: STATUS $st, expected a write fault (ERROR, code 2)"
fi
[ $((fault)) -eq $((FAULT_IOVA)) ] || fail "FILL above guest RAM: FAULT $fault, expected $FAULT_IOVA"
setreg 0x20 0x6
[ $(($(reg 0x3c) - done0)) -eq 3 ] || fail "COMPLETIONS went from $done0 to $(reg 0x3c), expected 3 more"
echo "mdev-pci: pass"
