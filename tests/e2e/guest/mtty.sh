# Guest script: an mtty mdev (kernel sample, PCI 4348:3253, a WCH CH352-like
# 16550 card with I/O BARs) served by umdev. The stock 8250_pci driver (built
# into Debian's kernel) must bind, and text written to the tty must come back
# through the device's loopback byte for byte, received by interrupt.
set -e
dev=$(pci_find 0x4348 0x3253) || fail "no PCI device 4348:3253 (mtty)"
bdf=$(basename "$dev")
echo "mtty: $bdf class $(cat "$dev/class") BAR0 $(pci_bar "$dev" 0) BAR1 $(pci_bar "$dev" 1) irq $(cat "$dev/irq")"
[ -e "$dev/driver" ] || fail "no driver bound to $bdf"
drv=$(basename "$(readlink "$dev/driver")")
echo "mtty: driver $drv"
[ "$drv" = serial ] || fail "$bdf is bound to $drv, not 8250_pci (serial)"

# The ttys of this function (8250_pci registers one per port).
ttys=''
for t in /sys/class/tty/ttyS*; do
    [ -e "$t/device" ] || continue
    case $(readlink -f "$t/device") in
        */"$bdf") ttys="$ttys $(basename "$t")" ;;
    esac
done
[ -n "$ttys" ] || fail "8250_pci registered no tty for $bdf"
echo "mtty: ttys:$ttys"

# The function's interrupt line (INTx: the sample has no MSI capability) and
# its count in /proc/interrupts, summed over CPUs.
irq=$(cat "$dev/irq")
[ "$irq" -gt 0 ] || fail "$bdf has no interrupt line"
irq_count() {
    awk -v n="$irq:" '$1 == n { s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; print s; found = 1 }
        END { if (!found) print 0 }' /proc/interrupts
}

msg='umdev mtty loopback: 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ !#%&()*+-./:;<=>?@[]^_{|}~'
for tty in $ttys; do
    port=/dev/$tty
    stty -F "$port" 115200 raw -echo -crtscts clocal
    before=$(irq_count)
    rm -f /tmp/rx
    # Keep the tty open across the exchange (a last close would flush what was
    # received); the reader ends after exactly ${#msg} bytes.
    exec 3<>"$port"
    dd of=/tmp/rx bs=1 count=${#msg} <&3 2>/dev/null &
    reader=$!
    printf '%s' "$msg" >&3
    n=0
    while kill -0 $reader 2>/dev/null && [ $n -lt 100 ]; do usleep 100000; n=$((n + 1)); done
    if kill -0 $reader 2>/dev/null; then
        kill $reader
        fail "$tty: only $(wc -c </tmp/rx) of ${#msg} bytes came back in 10 s: '$(cat /tmp/rx)'"
    fi
    exec 3<&-
    got=$(cat /tmp/rx)
    [ "$got" = "$msg" ] || fail "$tty: sent '$msg', got back '$got'"
    after=$(irq_count)
    echo "mtty: $tty: ${#msg} bytes came back byte for byte; interrupts $before -> $after"
    [ "$after" -gt "$before" ] || fail "$tty: the count of IRQ $irq in /proc/interrupts did not increase"
done
grep -E "^ *$irq:" /proc/interrupts || true
echo "mtty: pass"
