#!/usr/bin/env bash
# accord vs Cedar (cedar-wasm) on the same release decisions. See README.md beside this file.
#
#   bash bench/cedar/run.sh [N]      N requests in the workload (default 300000; a third are releases)
#
# Uses the release build in build/release (it never builds anything): accord, accord_bench_gen and,
# when present, accord_decide_bench. Works in a temporary directory under /tmp, removed at the end.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
N="${1:-300000}"
ACCORD="$ROOT/build/release/src/cli/accord"
GEN="$ROOT/build/release/bench/accord_bench_gen"
DECIDE_BENCH="$ROOT/build/release/bench/accord_decide_bench"

# A binary may be missing for a while when a build is under way: wait for it (10 minutes at most).
wait_for() {
  local tries=0
  until [[ -x "$1" ]]; do
    if (( tries++ == 10 )); then
      echo "run.sh: $1 is missing; build the release preset first" >&2
      exit 1
    fi
    echo "run.sh: waiting for $1 ..." >&2
    sleep 60
  done
}

# The median of numbers given one per line.
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

ACCORD_WITH_NODE=1 bash "$ROOT/scripts/install-deps.sh"  # Node.js and npm for cedar-wasm

WORK="$(mktemp -d /tmp/accord-cedar.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

echo "== npm dependencies"
if [[ -f "$HERE/package-lock.json" ]]; then
  (cd "$HERE" && npm ci --no-audit --no-fund)
else
  (cd "$HERE" && npm install --no-audit --no-fund)
fi

echo "== workload: $N requests"
wait_for "$GEN"
"$GEN" "$WORK" "$N"

echo "== accord decide --no-explain, 3 runs"
wait_for "$ACCORD"
for run in 1 2 3; do
  start=$(date +%s%N)
  "$ACCORD" decide --no-explain --policy "$WORK/policy" --requests "$WORK/requests.jsonl" > "$WORK/accord.jsonl"
  end=$(date +%s%N)
  echo "$(( end - start ))" >> "$WORK/accord-ns.txt"
  echo "run $run: $(awk -v ns="$(( end - start ))" 'BEGIN { printf "%.3f", ns / 1e9 }') s"
done
accord_seconds=$(median < "$WORK/accord-ns.txt" | awk '{ printf "%.6f", $1 / 1e9 }')
accord_rate=$(awk -v n="$N" -v s="$accord_seconds" 'BEGIN { printf "%.0f", n / s }')

echo "== Cedar (cedar-wasm), release requests only"
node "$HERE/compare.mjs" --accord "$ACCORD" --policy "$WORK/policy" --requests "$WORK/requests.jsonl" \
  --accord-out "$WORK/accord.jsonl" --summary "$WORK/cedar.json"

inprocess_rate=""
if [[ -x "$DECIDE_BENCH" ]]; then
  echo "== accord in process: accord_decide_bench BM_DecideRelease"
  "$DECIDE_BENCH" --benchmark_filter=BM_DecideRelease --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_format=json > "$WORK/decide_bench.json"
  inprocess_rate=$(node -e '
    const { benchmarks } = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const m = benchmarks.find((b) => b.aggregate_name === "median" && b.run_name.startsWith("BM_DecideRelease"));
    if (!m || m.items_per_second === undefined) throw new Error("no BM_DecideRelease median with items_per_second");
    console.log(Math.round(m.items_per_second));' "$WORK/decide_bench.json")
fi

# The summary (compare.mjs has exited non-zero, stopping this script, if any decision differed).
node -e '
  const [summaryFile, n, accordSeconds, accordRate, inprocessRate] = process.argv.slice(1);
  const s = JSON.parse(require("fs").readFileSync(summaryFile, "utf8"));
  const f = (x) => Math.round(x).toLocaleString("en-US");
  const ratio = (a, b) => `${(a / b).toFixed(1)}x`;
  const rows = [
    ["requests (all actions) / releases / compared", `${f(n)} / ${f(s.releases)} / ${f(s.compared)}, all identical`],
    ["accord decide, end to end (all actions)", `${f(accordRate)} requests/s (median ${Number(accordSeconds).toFixed(3)} s)`],
    [`Cedar ${s.cedarVersion} statefulIsAuthorized`, `${f(s.statefulDecisionsPerSecond)} decisions/s (${f(s.statefulCallsPerSecond)} Cedar calls/s)`],
    [`Cedar ${s.cedarVersion} isAuthorized`, `${f(s.plainDecisionsPerSecond)} decisions/s (${f(s.plainCallsPerSecond)} Cedar calls/s)`],
    ["ratio accord end to end / Cedar stateful", ratio(accordRate, s.statefulDecisionsPerSecond)],
    ["ratio accord end to end / Cedar isAuthorized", ratio(accordRate, s.plainDecisionsPerSecond)],
  ];
  if (inprocessRate) {
    rows.push(["accord in process (BM_DecideRelease median)", `${f(inprocessRate)} decisions/s`]);
    rows.push(["ratio accord in process / Cedar stateful", ratio(inprocessRate, s.statefulDecisionsPerSecond)]);
  }
  console.log("\n== summary (medians of 3 runs)");
  for (const [k, v] of rows) console.log(`${k.padEnd(46)} ${v}`);
' "$WORK/cedar.json" "$N" "$accord_seconds" "$accord_rate" "$inprocess_rate"
