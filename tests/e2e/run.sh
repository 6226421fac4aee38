#!/usr/bin/env bash
# End-to-end suite: a real QEMU (vfio-user-pci client, TCG) boots a real Linux
# guest whose drivers and tools use the mediated devices a running
# `umdev serve` provides.
#
# usage: tests/e2e/run.sh [--out DIR] [CASE...]
#   cases (default: all, in this order): mtty sdma-memfd sdma-msg mdev-pci reuse
#   --out DIR   output directory (default $E2E_OUT, else <repo>/target/e2e):
#               DIR/daemon.log, DIR/<case>/{console.log,qemu.log,qemu-cmdline,result,...}
# Environment:
#   UMDEV_BIN         the umdev binary (default: `cargo build -p umdev`, then the
#                     debug binary in $CARGO_TARGET_DIR or <repo>/target)
#   UMDEV_QEMU_TOOL   the qemu-vfio-user runner (default <repo>/../shared/tools/qemu-vfio-user);
#                     its setup.sh must have run (needs root)
#   E2E_GUEST_TIMEOUT seconds per guest (default 180)
# Exit status: 0 every case passed, 1 a case failed, 2 the suite could not run.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TOOL=${UMDEV_QEMU_TOOL:-$REPO/../shared/tools/qemu-vfio-user}
OUT=${E2E_OUT:-$REPO/target/e2e}
ALL_CASES=(mtty sdma-memfd sdma-msg mdev-pci reuse)
CASES=()
while [ $# -gt 0 ]; do
    case $1 in
        --out) OUT=$2; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "e2e: unknown option $1" >&2; exit 2 ;;
        *) CASES+=("$1"); shift ;;
    esac
done
[ ${#CASES[@]} -gt 0 ] || CASES=("${ALL_CASES[@]}")

# Guest memory layout shared by the cases: a 4 MiB region reserved with the
# kernel's memmap= (reachable through /dev/mem, never used by the guest
# kernel) for descriptor rings and DMA buffers, and an address above the
# guest's 512 MiB of RAM that no DMA mapping covers.
DMA_BASE=0x10000000
DMA_SIZE=0x400000
MEMMAP="memmap=4M\$$DMA_BASE"
FAULT_IOVA=0x40000000

# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=cases/mtty.sh
. "$HERE/cases/mtty.sh"
# shellcheck source=cases/sdma.sh
. "$HERE/cases/sdma.sh"
# shellcheck source=cases/mdev-pci.sh
. "$HERE/cases/mdev-pci.sh"
# shellcheck source=cases/reuse.sh
. "$HERE/cases/reuse.sh"

die() { log "ERROR: $*"; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (the QEMU runner uses chroot and mounts; umdev mounts FUSE)"
[ -x "$TOOL/run-guest.sh" ] || die "no QEMU runner at $TOOL"
"$TOOL/run-guest.sh" --check >/dev/null ||
    die "the QEMU runner is not set up: run the tests with ./test.sh, or $TOOL/setup.sh (as root, needs the Debian archive)"
for c in "${CASES[@]}"; do
    [[ " ${ALL_CASES[*]} " == *" $c "* ]] || die "unknown case $c (cases: ${ALL_CASES[*]})"
done

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The umdev binary.
if [ -z "${UMDEV_BIN:-}" ]; then
    log "building umdev"
    (cd "$REPO" && cargo build -q -p umdev) || die "cargo build -p umdev failed"
    UMDEV_BIN=${CARGO_TARGET_DIR:-$REPO/target}/debug/umdev
fi
UMDEV=$(readlink -f "$UMDEV_BIN")
[ -x "$UMDEV" ] || die "no umdev binary at $UMDEV_BIN"

# The guest-side helper, static so that it runs in the busybox initramfs.
mkdir -p "$OUT/bin"
gcc -static -O2 -Wall -Wextra -o "$OUT/bin/sdmatest" "$HERE/helpers/sdmatest.c" ||
    die "cannot build the sdmatest helper (needs gcc and a static libc, e.g. Debian's libc6-dev)"

# The daemon, on a fresh root; always stopped on the way out.
ROOT=$(mktemp -d /tmp/umdev-e2e.XXXXXX)
DAEMON_PID=
# shellcheck disable=SC2317 # called by the EXIT trap
stop_daemon() {
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$DAEMON_PID" 2>/dev/null; then
            log "the daemon did not stop on SIGTERM within 10 s; killing it"
            kill -KILL "$DAEMON_PID" 2>/dev/null || true
        fi
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if grep -q " $ROOT/sys " /proc/self/mounts 2>/dev/null; then
        log "the daemon left $ROOT/sys mounted; detaching it"
        umount -l "$ROOT/sys" || true
    fi
    grep -q " $ROOT/" /proc/self/mounts 2>/dev/null || rm -rf "$ROOT"
}
trap stop_daemon EXIT
trap 'exit 2' INT TERM HUP

log "umdev serve --root $ROOT (log: $OUT/daemon.log)"
"$UMDEV" serve --root "$ROOT" >"$OUT/daemon.log" 2>&1 &
DAEMON_PID=$!
# Ready: the daemon prints a line with "ready" once its sysfs tree is mounted
# and its sockets are listening.
for _ in $(seq 300); do
    grep -qi 'ready' "$OUT/daemon.log" && [ -d "$ROOT/sys/bus" ] && break
    daemon_alive || { cat "$OUT/daemon.log" >&2; die "umdev serve exited before it was ready"; }
    sleep 0.1
done
if ! grep -qi 'ready' "$OUT/daemon.log" || [ ! -d "$ROOT/sys/bus" ]; then
    cat "$OUT/daemon.log" >&2
    die "umdev serve was not ready after 30 s"
fi
log "daemon ready (pid $DAEMON_PID)"

declare -A RESULT
FAILED=0
T_SUITE=$SECONDS
for c in "${CASES[@]}"; do
    rm -rf "${OUT:?}/$c"
    mkdir -p "$OUT/$c"
    log "---- case $c"
    t0=$SECONDS
    rc=0
    "case_${c//-/_}" || rc=$?
    if [ $rc = 0 ] && ! daemon_alive; then
        check_fail "$c" "the daemon exited during the case" || rc=1
    fi
    if [ $rc = 0 ]; then
        RESULT[$c]="pass ($((SECONDS - t0)) s)"
    else
        reason=$(cat "$OUT/$c/result" 2>/dev/null || true)
        [ ! -s "$OUT/$c/host-failures" ] || reason="$reason${reason:+; }$(paste -sd';' "$OUT/$c/host-failures")"
        RESULT[$c]="FAIL (status $rc${reason:+: $reason})"
        FAILED=1
    fi
    log "case $c: ${RESULT[$c]}"
done

log "==== summary ($((SECONDS - T_SUITE)) s; output in $OUT)"
for c in "${CASES[@]}"; do log "$(printf '%-11s %s' "$c" "${RESULT[$c]}")"; done
exit $FAILED
