# Host-side helpers of the end-to-end suite, sourced by run.sh.
# Expects: ROOT (the daemon's root), UMDEV (the binary), OUT (output dir), TOOL
# (the qemu-vfio-user runner), HERE (tests/e2e).

log() { echo "e2e: $*" >&2; }

# check_fail CASE MESSAGE: record a host-side check failure of the current case.
check_fail() {
    log "$1: FAIL: $2"
    echo "host check: $2" >>"$OUT/$1/host-failures"
    return 1
}

# wait_path PATH [SECONDS]: wait (default 10 s) until PATH exists.
wait_path() {
    local n=$((${2:-10} * 10))
    while [ ! -e "$1" ]; do
        [ $n -gt 0 ] || return 1
        n=$((n - 1))
        sleep 0.1
    done
}

# sysfs_write FILE VALUE: one write(2) of VALUE to a sysfs attribute of the
# daemon's tree; on failure prints the errno message and returns non-zero.
sysfs_write() {
    local err
    if ! err=$( (printf '%s\n' "$2" >"$1") 2>&1); then
        log "write '$2' > $1 failed: $err"
        return 1
    fi
}

# find_type PATTERN: print the first mdev type directory (under any parent in
# class/mdev_bus) whose name matches the extended regex PATTERN.
find_type() {
    local t
    for t in "$ROOT"/sys/class/mdev_bus/*/mdev_supported_types/*; do
        [ -d "$t" ] || continue
        if basename "$t" | grep -Eq "$1"; then
            echo "$t"
            return 0
        fi
    done
    return 1
}

# socket_of NAME: the vfio-user socket the daemon serves NAME (UUID or BDF) on.
socket_of() { echo "$ROOT/run/umdev/$1.sock"; }

# create_mdev TYPE_DIR UUID: create an mdev through the sysfs tree and wait for
# its vfio-user socket.
create_mdev() {
    if [ ! -e "$ROOT/sys/bus/mdev/devices/$2" ]; then
        sysfs_write "$1/create" "$2" || return 1
    fi
    wait_path "$ROOT/sys/bus/mdev/devices/$2" 5 || { log "mdev $2 did not appear in bus/mdev/devices"; return 1; }
    wait_path "$(socket_of "$2")" 10 && [ -S "$(socket_of "$2")" ] ||
        { log "no vfio-user socket $(socket_of "$2") for mdev $2"; return 1; }
}

# guest CASE [run-guest.sh arguments...]: boot a guest for CASE with its console
# and QEMU logs in $OUT/CASE; returns run-guest.sh's status.
guest() {
    local case=$1
    shift
    mkdir -p "$OUT/$case"
    local rc=0
    "$TOOL/run-guest.sh" --out "$OUT/$case" --timeout "${E2E_GUEST_TIMEOUT:-180}" "$@" \
        2>"$OUT/$case/run-guest.log" || rc=$?
    cat "$OUT/$case/run-guest.log" >&2
    return $rc
}

# daemon_alive: the daemon is still running.
daemon_alive() { kill -0 "$DAEMON_PID" 2>/dev/null; }

# umdev_cli CASE NAME ARGS...: run `umdev ARGS --root ROOT`, keep its output in
# $OUT/CASE/NAME.txt and print it.
umdev_cli() {
    local case=$1 name=$2
    shift 2
    local rc=0
    "$UMDEV" "$@" --root "$ROOT" >"$OUT/$case/$name.txt" 2>&1 || rc=$?
    sed "s/^/  $name| /" "$OUT/$case/$name.txt" >&2
    return $rc
}

# umdev_json CASE NAME ARGS...: `umdev ARGS --json --root ROOT` into $OUT/CASE/NAME.json.
umdev_json() {
    local case=$1 name=$2
    shift 2
    "$UMDEV" "$@" --json --root "$ROOT" >"$OUT/$case/$name.json" 2>"$OUT/$case/$name.err" || {
        log "umdev $* failed: $(cat "$OUT/$case/$name.err")"
        return 1
    }
}
