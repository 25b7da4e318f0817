#!/usr/bin/env bash
# The README's test command, and what CI runs (.ci/run): installs what is needed, then
#   1. checks module dependencies and formatting,
#   2. builds and runs every test (RelWithDebInfo),
#   3. builds and runs every test again under AddressSanitizer + UBSan,
#   4. builds the libFuzzer targets with clang and runs each for FUZZ_SECONDS (default 60).
# Exits non-zero on the first failure. About 15 minutes on 2 cores from a clean clone.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { printf '\n== %s (%ds)\n' "$1" $((SECONDS - start)); }

step "install dependencies"
bash scripts/install-deps.sh

step "module dependencies and formatting"
bash scripts/check-deps.sh
find src include bench fuzz -name '*.cc' -o -name '*.h' | grep -v node_modules |
  xargs clang-format --dry-run --Werror
echo "format: clean"

for preset in default asan; do
  step "build and test: $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  ctest --preset "$preset"
done

step "fuzz"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}"

step "all checks passed"
