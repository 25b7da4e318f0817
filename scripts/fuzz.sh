#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60) on
# a copy of its committed corpus. Exits non-zero on the first crash, leaving the input in
# build/fuzz/artifacts/. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
bash scripts/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
mkdir -p build/fuzz/artifacts
for target in policy_loader request proof note package api; do
  work=$(mktemp -d)
  cp -r "fuzz/corpus/$target/." "$work/"
  echo "fuzz: $target for ${seconds}s"
  if ! build/fuzz/fuzz/${target}_fuzz -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
       -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/ "$work" >"build/fuzz/$target.log" 2>&1; then
    tail -n 40 "build/fuzz/$target.log"
    echo "fuzz: $target FAILED; the input is in build/fuzz/artifacts/ (add it to fuzz/corpus/$target/ once fixed)"
    rm -rf "$work"
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^Done" "build/fuzz/$target.log" | tr '\n' ' '
  echo
  rm -rf "$work"
done
