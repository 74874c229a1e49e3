#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for a bounded
# time on a copy of its seed corpus, so a run never grows the repository.
#
#   tests/fuzz/run.sh [seconds_per_target] [target ...]     (default 30 s, all)
#
# Per target it prints executions, exec/s, corpus size before -> after and
# crashes found; the last line is "N passed, N failed" (one test per target),
# and the exit status is non-zero when any target crashed, leaked, timed out
# or could not run. Findings are kept in $FUZZ_OUT (default build-fuzz/fuzz-out)
# with the log; reproduce one with: build-fuzz/tests/fuzz/fuzz_<name> <file>.
# Environment: FUZZ_BUILD_DIR (build-fuzz), FUZZ_JOBS (ninja -j, 2),
# FUZZ_OUT, FUZZ_KEEP_CORPUS=1 to keep the grown corpora in $FUZZ_OUT.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
secs="${1:-30}"
shift || true
build="${FUZZ_BUILD_DIR:-build-fuzz}"
out="${FUZZ_OUT:-$build/fuzz-out}"

all_targets=()
for f in tests/fuzz/fuzz_*.c; do
    n="${f##*/fuzz_}"
    all_targets+=("${n%.c}")
done
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")

fail_all() {
    echo "fuzz: $1"
    echo "0 passed, ${#targets[@]} failed"
    exit 1
}

command -v clang >/dev/null 2>&1 || fail_all "clang not found (scripts/deps.sh --test installs it)"
if [[ ! -f "$build/build.ninja" ]]; then
    setup_log="$(mktemp /tmp/tessera-fuzz-setup.XXXXXX)"
    CC=clang meson setup "$build" -Dfuzzing=true -Db_lundef=false -Dbuildtype=debug \
        >"$setup_log" 2>&1 || {
        tail -20 "$setup_log"
        rm -f "$setup_log"
        fail_all "meson setup failed"
    }
    rm -f "$setup_log"
fi
exes=()
for t in "${targets[@]}"; do exes+=("tests/fuzz/fuzz_$t"); done
if ! ninja -C "$build" -j "${FUZZ_JOBS:-2}" "${exes[@]}" >"$build/fuzz-build.log" 2>&1; then
    tail -40 "$build/fuzz-build.log"
    fail_all "build failed"
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

work="$(mktemp -d /tmp/tessera-fuzz-run.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
passed=0
failed=0
for t in "${targets[@]}"; do
    exe="$build/tests/fuzz/fuzz_$t"
    seeds="tests/fuzz/corpus/$t"
    corpus="$work/corpus-$t"
    mkdir -p "$corpus" "$work/art-$t"
    [[ -d "$seeds" ]] && cp -r "$seeds/." "$corpus/"
    before=$(find "$corpus" -type f | wc -l)
    dict=()
    [[ -f "tests/fuzz/dict/$t.dict" ]] && dict=("-dict=tests/fuzz/dict/$t.dict")
    log="$work/$t.log"
    TMPDIR="$work" "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/art-$t/" "${dict[@]}" "$corpus" >"$log" 2>&1
    rc=$?
    after=$(find "$corpus" -type f | wc -l)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    crashes=$(find "$work/art-$t" -type f | wc -l)
    if [[ $rc -eq 0 && $crashes -eq 0 ]]; then
        passed=$((passed + 1))
        status=ok
    else
        failed=$((failed + 1))
        status=FAILED
        rm -rf "${out:?}/$t"
        mkdir -p "$out/$t"
        cp "$log" "$out/$t/"
        find "$work/art-$t" -type f -exec cp {} "$out/$t/" \;
    fi
    printf 'fuzz_%-14s %-6s %10s execs %7s exec/s  corpus %4d -> %4d  crashes %d\n' \
        "$t" "$status" "${execs:-0}" "${rate:-0}" "$before" "$after" "$crashes"
    if [[ $status == FAILED ]]; then
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -5 | sed 's/^/    /'
        [[ $crashes -eq 0 ]] && tail -5 "$log" | sed 's/^/    /'
        echo "    log and inputs: $out/$t/"
    fi
    if [[ "${FUZZ_KEEP_CORPUS:-0}" == 1 ]]; then
        rm -rf "${out:?}/corpus-$t"
        cp -r "$corpus" "$out/corpus-$t"
    fi
done
echo "fuzz: ${#targets[@]} targets x ${secs}s: $passed passed, $failed failed"
echo "$passed passed, $failed failed"
((failed == 0))
