#!/usr/bin/env bash
# What the egg optimiser buys: every ir/ model, the W3a/W6/W9 workloads and the
# models of benches/opt/ (written from primitives) timed with `dlc bench` at -O0
# and -O2 (one thread, the calling thread's minimum CPU time), with the
# optimiser's own time and the rules that changed the extracted graph.
# Prints a Markdown table for BENCHMARKS.md. Usage: tools/opt_table.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
cargo build --release --quiet --bin dlc
dlc=${CARGO_TARGET_DIR:-target}/release/dlc
cpu_min() { sed -n 's/.*CPU time: median [0-9.]* ms, min \([0-9.]*\) ms.*/\1/p'; }
echo "| model | -O0 | -O2 | -O0 / -O2 | optimiser | rules that changed the graph |"
echo "|---|---|---|---|---|---|"
for f in ir/*.ir benches/workloads/w3a.ir benches/workloads/w6.ir benches/workloads/w9.ir benches/opt/*.ir; do
  o0=$("$dlc" bench "$f" -O0 --threads 1 --runs "$runs" | cpu_min)
  o2=$("$dlc" bench "$f" -O2 --threads 1 --runs "$runs" | cpu_min)
  explain=$("$dlc" compile "$f" -O2 --explain)
  opt=$(echo "$explain" | sed -n 's/^optimiser:.*; \([0-9.]*\) ms (.*/\1/p')
  rules=$(echo "$explain" | awk '/changed the result/ { printf "%s%s", sep, $1; sep=", " }')
  ratio=$(awk -v a="$o0" -v b="$o2" 'BEGIN { printf "%.2f", a / b }')
  echo "| $f | $o0 ms | $o2 ms | $ratio | $opt ms | ${rules:-none} |"
done
