#!/usr/bin/env bash
# Times every workload of benches/workloads/ with `dlc bench`, one thread and
# two, and prints a Markdown table for BENCHMARKS.md (median wall time; for one
# thread also the calling thread's minimum CPU time, which other load on the
# machine inflates less). Usage: tools/bench_table.sh [RUNS] [PATTERN]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
pattern=${2:-}
cargo build --release --quiet --bin dlc
dlc=${CARGO_TARGET_DIR:-target}/release/dlc
echo "| workload | 1 thread median | 1 thread CPU min | 2 threads median | GFLOP/s (1t, CPU min) | compile |"
echo "|---|---|---|---|---|---|"
for f in benches/workloads/*${pattern}*.ir; do
  id=$(basename "$f" .ir | tr a-z A-Z)
  flops=$(sed -n 's/^# flops: //p' "$f")
  one=$("$dlc" bench "$f" --threads 1 --runs "$runs")
  two=$("$dlc" bench "$f" --threads 2 --runs "$runs")
  med1=$(echo "$one" | sed -n 's/.*: median \([0-9.]*\) ms.*/\1/p' | head -1)
  cpu1=$(echo "$one" | sed -n 's/.*CPU time: median [0-9.]* ms, min \([0-9.]*\) ms.*/\1/p')
  comp=$(echo "$one" | sed -n 's/.*(compile \([0-9.]*\) ms).*/\1/p')
  med2=$(echo "$two" | sed -n 's/.*: median \([0-9.]*\) ms.*/\1/p' | head -1)
  gf="-"
  if [ -n "$flops" ]; then gf=$(awk -v f="$flops" -v t="$cpu1" 'BEGIN { printf "%.1f", f / (t * 1e6) }'); fi
  echo "| $id | $med1 ms | $cpu1 ms | $med2 ms | $gf | $comp ms |"
done
