# Case reuse: after the guests above powered off, the daemon still serves
# every mdev, and a second guest boots with all of them at once and passes
# every guest check again.

case_reuse() {
    local socks=() s
    daemon_alive || { log "the daemon exited"; return 1; }
    s=$(setup_mtty) || return 1
    socks+=(--socket "$s")
    for s in $(setup_sdma); do socks+=(--socket "$s"); done
    s=$(setup_mdev_pci) || return 1
    socks+=(--socket "$s")
    [ ${#socks[@]} = 8 ] || { log "reuse: not every mdev is served"; return 1; }
    mkdir -p "$OUT/reuse"
    umdev_cli reuse list list || check_fail reuse "umdev list failed" || return 1
    # Every mdev is still served, with no client attached (the earlier guests
    # powered off).
    list_detached list-before || return 1
    sdma_env "$OUT/reuse/sdma.env"
    mdev_pci_env "$OUT/reuse/mdev-pci.env"
    cat "$HERE/guest/mtty.sh" "$HERE/guest/sdma.sh" "$HERE/guest/mdev-pci.sh" >"$OUT/reuse/all.sh"
    guest reuse "${socks[@]}" --memfd --script "$OUT/reuse/all.sh" \
        --file "$OUT/bin/sdmatest=/files/sdmatest" --file "$OUT/reuse/sdma.env=/files/sdma.env" \
        --file "$OUT/reuse/mdev-pci.env=/files/mdev-pci.env" --append "$MEMMAP" || return
    # After this guest: still served, detached again, one session more each.
    list_detached list-after || return 1
    # shellcheck disable=SC2086 # the UUID lists are words
    served_check "$OUT/reuse/list-before.json" "$OUT/reuse/list-after.json" \
        "$MTTY_UUID" $SDMA_UUIDS "$MDEVPCI_UUID" || check_fail reuse "$(tail -n1 "$OUT/reuse/served-check.log")"
}

# list_detached NAME: `umdev list --json` into $OUT/reuse/NAME.json, taken
# again (up to 10 s) until no served device has a client attached: QEMU has
# exited, and the server notices the closed socket on its own schedule.
list_detached() {
    for _ in $(seq 100); do
        umdev_json reuse "$1" list || return 1
        python3 -c 'import json, sys; sys.exit(any(d["attached"] for d in json.load(open(sys.argv[1]))["devices"]))' \
            "$OUT/reuse/$1.json" && return 0
        sleep 0.1
    done
    log "reuse: a client is still attached 10 s after the guest exited (see $OUT/reuse/$1.json)"
}

# served_check BEFORE_JSON AFTER_JSON UUID...: in both `umdev list --json`
# views each UUID is served on a socket with no client attached, and it
# served exactly one session in between.
served_check() {
    python3 - "$@" >"$OUT/reuse/served-check.log" 2>&1 <<'PY'
import json, sys
before, after = ({d["name"]: d for d in json.load(open(p))["devices"]} for p in sys.argv[1:3])
for u in sys.argv[3:]:
    for when, view in (("before", before), ("after", after)):
        d = view.get(u)
        if d is None or not d.get("socket"):
            sys.exit(f"mdev {u} is not served {when} the second guest")
        if d["attached"]:
            sys.exit(f"mdev {u} still has a client attached {when} the second guest")
    if after[u]["sessions"] != before[u]["sessions"] + 1:
        sys.exit(f"mdev {u}: sessions {before[u]['sessions']} -> {after[u]['sessions']}, expected one more")
    print(f"{u}: served, detached, sessions {before[u]['sessions']} -> {after[u]['sessions']}")
PY
}
