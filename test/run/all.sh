#!/usr/bin/env bash
# `make test`: the main suite (one file at a time: unit, integration, end to
# end, then the attack suite in test/security/) and, beside it, the long
# tests in test/long/ (a watch held for 6.5 minutes; the sig-api-machinery
# conformance specs run direct and through kubegate, ~17 minutes: light on
# CPU, heavy on wall time; both files at once). Both must pass; the long
# tests' output follows the main suite's.
set -u
mkdir -p test-results
long_log=test-results/long.log
node --test --test-concurrency=2 --test-reporter=spec 'dist/test/long/**/*.test.js' >"$long_log" 2>&1 &
long_pid=$!
node --test --test-concurrency=1 --test-reporter=spec \
  'dist/test/unit/**/*.test.js' \
  'dist/test/integration/**/*.test.js' \
  'dist/test/e2e/**/*.test.js' \
  'dist/test/security/**/*.test.js'
main=$?
echo "# waiting for the long tests (test/long/, started beside the main suite)…"
wait "$long_pid"
long=$?
cat "$long_log"
echo "# main suite: exit $main; long tests: exit $long"
[ "$main" -eq 0 ] && [ "$long" -eq 0 ]
