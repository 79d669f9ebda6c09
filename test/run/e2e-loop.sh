#!/usr/bin/env bash
# `make e2e-loop`: hunt intermittent failures. Every end-to-end file (or the
# files named in FILES) runs RUNS times, JOBS files at a time, each in its own
# `node --test` process with its own PostgreSQL, control plane, proxy and
# agent. Runs go in passes (every file once, then again), so a loop cut short
# leaves every file with about the same count. One line per run goes to
# test-results/e2e-loop/results.tsv (pass, file, exit code, seconds, end time,
# load average); each run's output to test-results/e2e-loop/<pass>-<file>.log.
# At the end: runs and failures per file. Exit 1 when any run failed.
set -u
runs=${RUNS:-10}
jobs=${JOBS:-2}
out=test-results/e2e-loop
mkdir -p "$out"
: >"$out/results.tsv"
files=${FILES:-$(ls dist/test/e2e/*.test.js | xargs -n1 basename | sed 's/\.test\.js$//')}
queue=$(mktemp)
for i in $(seq 1 "$runs"); do for f in $files; do echo "$i $f"; done; done >"$queue"
total=$(wc -l <"$queue")
echo "# e2e loop: $(echo $files | wc -w) files × $runs runs = $total runs, $jobs at a time"

worker() {
  while :; do
    job=$(flock "$queue.lock" sh -c "head -1 '$queue'; sed -i 1d '$queue'")
    [ -z "$job" ] && return 0
    i=${job%% *}
    f=${job#* }
    t0=$(date +%s)
    node --test --test-reporter=spec "dist/test/e2e/$f.test.js" >"$out/$i-$f.log" 2>&1
    rc=$?
    line=$(printf '%s\t%s\t%s\t%s\t%s\t%s' "$i" "$f" "$rc" "$(($(date +%s) - t0))" "$(date +%T)" "$(cut -d' ' -f1 /proc/loadavg)")
    flock "$out/results.tsv.lock" sh -c "echo '$line' >>'$out/results.tsv'"
    done_n=$(wc -l <"$out/results.tsv")
    [ "$rc" -eq 0 ] && echo "# $done_n/$total ok $f (pass $i)" || echo "# $done_n/$total FAILED $f (pass $i): $out/$i-$f.log"
  done
}
for _ in $(seq 1 "$jobs"); do worker & done
wait
rm -f "$queue" "$queue.lock" "$out/results.tsv.lock"
echo "# file, runs, failures, mean s, max s"
awk -F'\t' '{c[$2]++; s[$2]+=$4; if ($4 > m[$2]) m[$2] = $4; if ($3 != 0) f[$2]++}
  END {for (k in c) printf "%s\t%d\t%d\t%.0f\t%d\n", k, c[k], f[k], s[k] / c[k], m[k]}' \
  "$out/results.tsv" | sort
! awk -F'\t' '$3 != 0 {bad = 1} END {exit !bad}' "$out/results.tsv"
