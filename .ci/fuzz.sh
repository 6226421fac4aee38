#!/usr/bin/env bash
# Runs the fuzz targets (vfio-user: the decoder, and the whole session with
# the dispatcher; uAPI: the socket server on arbitrary frames) for a
# bounded time with the nightly toolchain. Fails on a crash, a leak or a
# hang; the crashing input is copied to <crate>/fuzz/regressions/<target>/,
# where the crate's tests/fuzz_regressions.rs replays it from then on
# (commit it with the fix).
#
# FUZZ_SECONDS (default 60) is split between the targets. Built without
# a sanitizer: the code under test is safe Rust, and a panic, abort, leak
# assertion or timeout is what the harness detects.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
targets=(crates/umdev-vfio-user/fuzz:decode crates/umdev-vfio-user/fuzz:session
         crates/umdev-uapi/fuzz:frames)
per_target=$(( seconds / ${#targets[@]} ))

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo +nightly install cargo-fuzz --locked
fi

status=0
for spec in "${targets[@]}"; do
    fuzz_dir=${spec%%:*}
    t=${spec#*:}
    corpus="$fuzz_dir/corpus/$t"
    artifacts="$fuzz_dir/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    cp -n "$fuzz_dir/seeds/$t"/* "$corpus"/ 2>/dev/null || true
    echo "== fuzz $t for ${per_target}s"
    if ! (cd "$fuzz_dir" && cargo +nightly fuzz run --sanitizer none "$t" "corpus/$t" -- \
            -max_total_time="$per_target" -timeout=30 -rss_limit_mb=4096 \
            -artifact_prefix="artifacts/$t/" -print_final_stats=1); then
        status=1
        mkdir -p "$fuzz_dir/regressions/$t"
        for f in "$artifacts"/*; do
            [ -f "$f" ] || continue
            cp "$f" "$fuzz_dir/regressions/$t/"
            echo "crash input: $fuzz_dir/regressions/$t/$(basename "$f")" >&2
        done
    fi
done
exit $status
