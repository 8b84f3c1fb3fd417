#!/bin/sh
# run.sh FUZZDIR SECONDS HARNESS... — `make fuzz`: runs each libFuzzer harness
# FUZZDIR/fuzz_<h> for SECONDS, one after another at nice 10, on a working copy
# of tests/fuzz/corpus/<h>/ (plus the hand-written real inputs of
# tests/fuzz/seeds/<h>/, tests/fuzz/crashes/<h>/ and the dictionary
# tests/fuzz/<h>.dict when present), then merges what it found back into
# tests/fuzz/corpus/<h>/ as a minimized corpus (-merge=1 -use_counters=0: one
# input per covered edge rather than per hit count, which keeps the committed
# corpus to a few hundred small files). Crashes are left in
# FUZZDIR/artifacts/<h>/. Prints a summary with libFuzzer's final counts
# (stat::number_of_executed_units) and fails when any harness found a crash.
# FUZZ_ARGS adds libFuzzer options. Run from the project root.
set -u
fuzzdir=$1; secs=$2; shift 2
summary="$fuzzdir/summary.txt"
status=0
printf '%-8s %8s %14s %10s %8s  %s\n' harness seconds executions exec/s corpus result > "$summary"
for h in "$@"; do
    bin="$fuzzdir/fuzz_$h"
    work="$fuzzdir/corpus/$h"; art="$fuzzdir/artifacts/$h"; log="$fuzzdir/$h.log"
    mkdir -p "$work" "$art" "tests/fuzz/corpus/$h"
    seeds="tests/fuzz/corpus/$h"
    [ -d "tests/fuzz/seeds/$h" ] && seeds="$seeds tests/fuzz/seeds/$h"
    [ -d "tests/fuzz/crashes/$h" ] && seeds="$seeds tests/fuzz/crashes/$h"
    dict=""
    [ -f "tests/fuzz/$h.dict" ] && dict="-dict=tests/fuzz/$h.dict"
    echo "fuzz: $h for ${secs}s (log: $log)"
    # shellcheck disable=SC2086
    nice -n 10 "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=20 \
        -rss_limit_mb=2048 -max_len=8192 -artifact_prefix="$art/" $dict ${FUZZ_ARGS:-} \
        "$work" $seeds > "$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    result=ok
    if [ $rc -ne 0 ]; then
        result="FAILED (rc $rc): $(ls "$art" | head -n 3 | tr '\n' ' ')"
        grep -m 3 -E 'ERROR: |invariant failed|runtime error' "$log" | sed 's/^/  /'
        status=1
    fi
    # merge the working corpus into a minimized copy, which replaces the committed one
    merged="$fuzzdir/merged/$h"
    rm -rf "$merged"; mkdir -p "$merged"
    if nice -n 10 "$bin" -merge=1 -use_counters=0 -max_len=8192 -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$art/" \
            "$merged" "tests/fuzz/corpus/$h" "$work" > "$fuzzdir/$h.merge.log" 2>&1 &&
        [ -n "$(ls "$merged")" ]; then
        rm -f "tests/fuzz/corpus/$h"/*
        cp "$merged"/* "tests/fuzz/corpus/$h/"
    else
        echo "fuzz: $h: merge failed, corpus left as it was (see $fuzzdir/$h.merge.log)"
    fi
    n=$(ls "tests/fuzz/corpus/$h" | wc -l)
    printf '%-8s %8s %14s %10s %8s  %s\n' "$h" "$secs" "${execs:-?}" "${rate:-?}" "$n" "$result" >> "$summary"
done
echo
cat "$summary"
exit $status
