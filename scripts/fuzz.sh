#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60) on
# a copy of its committed corpus, FUZZ_JOBS targets at a time (default 2: one per core; each
# target is one process). Exits non-zero if any target crashed, leaving the input in
# build/fuzz/artifacts/. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
jobs=${FUZZ_JOBS:-2}
# libFuzzer reads -max_total_time=0 as "no limit".
case "$seconds" in
  '' | *[!0-9]*) seconds=0 ;;
esac
if [ "$((10#$seconds))" -eq 0 ]; then
  echo "fuzz.sh: SECONDS must be a positive number, not \`${1:-}'" >&2
  exit 2
fi
seconds=$((10#$seconds))
case "$jobs" in
  '' | *[!0-9]* | 0) echo "fuzz.sh: FUZZ_JOBS must be a positive number, not \`$jobs'" >&2; exit 2 ;;
esac
bash scripts/install-deps.sh
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
mkdir -p build/fuzz/artifacts

# Runs one target on a copy of its corpus; its output goes to build/fuzz/TARGET.log.
fuzz_one() {
  local target=$1 work
  rm -f "build/fuzz/$target.log"
  work=$(mktemp -d)
  local status=0
  cp -r "fuzz/corpus/$target/." "$work/" || { rm -rf "$work"; return 1; }
  build/fuzz/fuzz/${target}_fuzz -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/ "$work" \
    >"build/fuzz/$target.log" 2>&1 || status=$?
  rm -rf "$work"
  return "$status"
}

# Says how a finished target did; false if it crashed.
report() {
  local target=$1 status=$2
  if [ "$status" != 0 ]; then
    [ ! -f "build/fuzz/$target.log" ] || tail -n 40 "build/fuzz/$target.log"
    echo "fuzz: $target FAILED; the input is in build/fuzz/artifacts/ (add it to fuzz/corpus/$target/ once fixed)"
    return 1
  fi
  echo "fuzz: $target: $(grep -E "^stat::number_of_executed_units|^Done" "build/fuzz/$target.log" | tr '\n' ' ')"
}

targets=(policy_loader request proof note package api json serve_config string_list keystore)
failed=0
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
  group=("${targets[@]:i:jobs}")
  echo "fuzz: ${group[*]} for ${seconds}s"
  pids=()
  for target in "${group[@]}"; do
    fuzz_one "$target" &
    pids+=($!)
  done
  for k in "${!group[@]}"; do
    status=0
    wait "${pids[$k]}" || status=$?
    report "${group[$k]}" "$status" || failed=1
  done
  [ "$failed" = 0 ] || exit 1
done
