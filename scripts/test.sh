#!/usr/bin/env bash
# The README's test command, and what CI runs (.ci/run): installs what is needed, then
#   1. checks module dependencies and formatting,
#   2. builds and runs every test (RelWithDebInfo; ctest runs two at a time, as the presets say,
#      and those with wall-time limits alone: RUN_SERIAL),
#   3. builds and runs every test again under AddressSanitizer + UBSan,
#   4. runs the threaded `accord decide`, the server's tests, the store's threaded tests and the
#      three-node federation test under ThreadSanitizer,
#   5. builds the libFuzzer targets with clang (only them and the libraries they link: the
#      command and the tests are built by g++ above) and runs each for FUZZ_SECONDS (default 60).
# Exits non-zero on the first failure. About 35 minutes on 2 cores from a clean clone (the three
# builds take about half, the two ctest runs and the fuzzers the rest).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { printf '\n== %s (%ds)\n' "$1" $((SECONDS - start)); }

step "install dependencies"
bash scripts/install-deps.sh

step "module dependencies and formatting"
bash scripts/check-deps.sh
find src include bench fuzz tests -name '*.cc' -o -name '*.h' | grep -v node_modules |
  xargs clang-format --dry-run --Werror
echo "format: clean"

passed=0
for preset in default asan; do
  step "build and test: $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  ctest --preset "$preset" | tee "build/$preset/ctest.log"
  # ctest exits non-zero on a failure (set -o pipefail); count what passed for the summary.
  passed=$((passed + $(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' "build/$preset/ctest.log")))
done

step "ThreadSanitizer: the threaded decide stream, the server, the live nodes"
cmake --preset tsan >/dev/null
cmake --build --preset tsan
tsan_work=$(mktemp -d)
trap 'rm -rf "$tsan_work"' EXIT
build/tsan/accord_bench_gen "$tsan_work" 20000 >/dev/null
TSAN_OPTIONS="halt_on_error=1 exitcode=66" build/tsan/src/cli/accord decide --threads 2 \
  --policy "$tsan_work/policy" --requests "$tsan_work/requests.jsonl" >"$tsan_work/threads2.jsonl"
build/tsan/src/cli/accord decide --threads 1 --policy "$tsan_work/policy" \
  --requests "$tsan_work/requests.jsonl" >"$tsan_work/threads1.jsonl"
cmp "$tsan_work/threads1.jsonl" "$tsan_work/threads2.jsonl"
echo "tsan: no data race; 2 threads answer exactly as 1 ($(wc -l <"$tsan_work/threads2.jsonl") requests)"
rm -rf "$tsan_work"
# The server's io, node and sync threads (group commit), and the store's sync and checkpoints from
# other threads (a failed sync among them). Each for 15 minutes at most (they take about 3 and 1).
TSAN_OPTIONS="halt_on_error=1 exitcode=66" timeout -k 1m 15m \
  build/tsan/src/server/server_test --gtest_brief=1
TSAN_OPTIONS="halt_on_error=1 exitcode=66" timeout -k 1m 15m \
  build/tsan/src/store/store_test --gtest_brief=1 \
  --gtest_filter='*Unsynced*:*Nested*:*FailedSync*:*SyncFails*'
# Three live nodes: each runs its server, its federation thread and its signal thread. The
# whole output is kept for a failure; 20 minutes at most (it takes about 2).
if TSAN_OPTIONS="halt_on_error=1 exitcode=66" timeout -k 2m 20m \
  bash tests/cli/federation_test.sh build/tsan/src/cli/accord "$PWD" >build/tsan/federation.log 2>&1; then
  tail -n 1 build/tsan/federation.log
else
  cat build/tsan/federation.log
  echo "tsan: the federation test failed (or ran past 20 minutes)"
  exit 1
fi

step "fuzz"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}"

step "all checks passed"
echo "ctest: $passed passed, 0 failed"
