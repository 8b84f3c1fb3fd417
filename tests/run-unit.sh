#!/bin/sh
# Runs every Check suite given on the command line from the project root and
# prints one closing line "unit: N passed, N failed" (suites, not checks: each
# suite prints its own Check summary above it).
pass=0; fail=0; failed=""
for t in "$@"; do
    if "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $t"; fi
done
[ -z "$failed" ] || echo "failed suites:$failed"
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
