#!/usr/bin/env python3
"""Host-side check of the sdma cases, from `umdev stats --json` and
`umdev faults --json` taken before and after a guest run.

usage: check_dma.py DIR FAULT_ADDR CONSOLE UUID...

DIR holds stats-before.json, stats-after.json, faults-before.json and
faults-after.json. For each mdev UUID (in the guest's function order):
- `umdev stats` lists it with a requester ID and a PASID of its own, and its
  DMA read and DMA write byte counts grew during the run by at least what the
  guest's descriptors moved (MIN_READ / MIN_WRITE);
- the PASID is the one the guest read from that function's PASID register
  (CONSOLE: "sdmatest <bdf>: all checks passed (pasid N)", in function order);
- `umdev faults` grew, and holds a read and a write fault at FAULT_ADDR
  tagged with that PASID.
Prints what it checked; exits 1 on the first failed check.
"""
import json
import re
import sys

# What helpers/sdmatest.c makes one queue move, at least. Reads: 10 descriptors
# (640), memmove 10000, compare 2 x 10000, compare up to the difference at 7777
# (2 x 7777), compare-pattern 5000, CRC 9 and 16384. Writes: memmove 10000,
# fill 5000, 10 completion records (320).
MIN_READ = 640 + 10000 + 20000 + 2 * 7777 + 5000 + 9 + 16384
MIN_WRITE = 10000 + 5000 + 320


def load(path):
    with open(path) as f:
        return json.load(f)


def fail(msg):
    print(f"check_dma: FAIL: {msg}")
    sys.exit(1)


def main():
    out, addr, console = sys.argv[1], int(sys.argv[2], 0), sys.argv[3]
    uuids = sys.argv[4:]
    before = {d["name"]: d for d in load(f"{out}/stats-before.json")["devices"]}
    after = {d["name"]: d for d in load(f"{out}/stats-after.json")["devices"]}
    with open(console, errors="replace") as f:
        guest_pasids = [int(p) for p in re.findall(r"sdmatest \S+: all checks passed \(pasid (\d+)\)", f.read())]
    if len(guest_pasids) != len(uuids):
        fail(f"the guest console reports {len(guest_pasids)} passing queues, expected {len(uuids)}")

    pasids = []
    for i, uuid in enumerate(uuids):
        d = after.get(uuid)
        if d is None:
            fail(f"umdev stats does not list mdev {uuid}")
        if d.get("requester") is None or d.get("pasid") is None:
            fail(f"mdev {uuid}: no requester/PASID in umdev stats: {d}")
        c0 = before.get(uuid, {}).get("counters", {"dma_read_bytes": 0, "dma_write_bytes": 0})
        c1 = d["counters"]
        read = c1["dma_read_bytes"] - c0["dma_read_bytes"]
        write = c1["dma_write_bytes"] - c0["dma_write_bytes"]
        print(f"check_dma: {uuid}: {d['requester']} pasid {d['pasid']}: "
              f"+{read} bytes read, +{write} bytes written, faults {c1['faults']}")
        if read < MIN_READ or write < MIN_WRITE:
            fail(f"mdev {uuid}: umdev stats shows +{read} bytes read and +{write} written during the run; "
                 f"the guest's descriptors moved at least {MIN_READ} and {MIN_WRITE}")
        if d["pasid"] != guest_pasids[i]:
            fail(f"mdev {uuid}: PASID {d['pasid']} in umdev stats, the guest's function {i} read {guest_pasids[i]}")
        pasids.append(d["pasid"])
    if len(set(pasids)) != len(pasids):
        fail(f"the mdevs do not have PASIDs of their own: {pasids}")

    def units(path):
        return load(path)["units"]

    total0 = sum(u["total"] for u in units(f"{out}/faults-before.json"))
    total1 = sum(u["total"] for u in units(f"{out}/faults-after.json"))
    records = [r for u in units(f"{out}/faults-after.json") for r in u["records"]]
    if total1 <= total0:
        fail(f"umdev faults: the fault total did not grow ({total0} -> {total1})")
    for pasid in pasids:
        for access in ("read", "write"):
            hits = [r for r in records if r["addr"] == addr and r.get("pasid") == pasid and r["access"] == access]
            if not hits:
                fail(f"umdev faults has no {access} fault at {addr:#x} with PASID {pasid}")
            r = hits[-1]
            print(f"check_dma: fault {r['requester']} pasid {pasid} {access} {addr:#x}: {r['reason']}")
    print(f"check_dma: faults {total0} -> {total1}; all host checks passed")


if __name__ == "__main__":
    main()
