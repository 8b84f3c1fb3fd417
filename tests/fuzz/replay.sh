#!/bin/sh
# replay.sh BINDIR HARNESS... — `make check`'s regression run of the fuzz
# corpora: BINDIR/fuzz_<h> (built with replay_main.c, no libFuzzer) reads every
# file of tests/fuzz/seeds/<h>/, tests/fuzz/corpus/<h>/ and tests/fuzz/crashes/<h>/. Prints one line
# per harness and the total "fuzz-replay: N passed, M failed"; fails on any
# failure. Run from the project root.
bindir=$1; shift
# a sanitizer's report ends in abort(), so that replay_main names the input
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}abort_on_error=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}abort_on_error=1:print_stacktrace=1"
passed=0; failed=0
for h in "$@"; do
    dirs="tests/fuzz/corpus/$h"
    [ -d "tests/fuzz/seeds/$h" ] && dirs="tests/fuzz/seeds/$h $dirs"
    [ -d "tests/fuzz/crashes/$h" ] && dirs="$dirs tests/fuzz/crashes/$h"
    out=$("$bindir/fuzz_$h" $dirs)
    rc=$?
    echo "$out"
    p=$(echo "$out" | sed -n 's/.* \([0-9][0-9]*\) passed.*/\1/p')
    f=$(echo "$out" | sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p')
    passed=$((passed + ${p:-0}))
    if [ $rc -ne 0 ]; then
        failed=$((failed + ${f:-0}))
        [ "${f:-0}" -eq 0 ] && failed=$((failed + 1))   # died on a file: that one failed
    fi
done
echo "fuzz-replay: $passed passed, $failed failed"
[ $failed -eq 0 ]
