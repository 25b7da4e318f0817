#!/usr/bin/env bash
# End-to-end throughput of `accord decide`: JSON Lines in, JSON Lines out, JSON parsing and
# printing included. Generates the workload (30 parties, 200 agreements, requests mixing read,
# release and forward), runs each configuration 3 times and prints the median rate and the
# largest resident set size, for 1 and 3 million requests (memory must not grow with the stream).
# Usage: bench/decide_stream.sh [REQUESTS...]   (default: 1000000 3000000)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target accord accord_bench_gen >/dev/null
accord=build/release/src/cli/accord
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 3000000)

printf '%-10s %-28s %12s %14s %10s\n' requests configuration seconds requests/s "max RSS"
for n in "${sizes[@]}"; do
  build/release/bench/accord_bench_gen "$work" "$n"
  for config in "threads=1" "threads=2" "threads=2 no-explain"; do
    args=(--threads "${config:8:1}")
    [[ $config == *no-explain* ]] && args+=(--no-explain)
    times=()
    rss=0
    for run in 1 2 3; do
      /usr/bin/time -f '%e %M' -o "$work/time" "$accord" decide "${args[@]}" --policy "$work/policy" \
        --requests "$work/requests.jsonl" >/dev/null
      read -r t m <"$work/time"
      times+=("$t")
      [ "$m" -gt "$rss" ] && rss=$m
    done
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
    rate=$(awk -v n="$n" -v t="$median" 'BEGIN { printf "%d", n / t }')
    printf '%-10s %-28s %12s %14s %7d MB\n' "$n" "$config" "$median" "$rate" $((rss / 1024))
  done
done
