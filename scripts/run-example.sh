#!/usr/bin/env bash
# The README's first command: installs what is needed, builds `accord`, and replays the GSOMIA
# example: each agreement's state and the flow matrix at every key instant of the real history,
# the decisions on examples/gsomia/requests.jsonl, and the same history had Korea not suspended
# its notice on 2019-11-22; then three nodes (KOR, JPN, USA) exchange sealed, signed packages,
# first carried by hand, then over the network between three live nodes left running until
# Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target accord
accord=build/release/src/cli/accord

banner() { printf '\n%s\n%s\n' "$1" "$(printf '%*s' ${#1} '' | tr ' ' '=')"; }

banner "1. The policy"
$accord check --policy examples/gsomia
$accord agreement list --policy examples/gsomia --at 2019-11-22T18:00:00+09:00

banner "2. The Korea–Japan GSOMIA, anniversary by anniversary"
$accord agreement timeline --policy examples/gsomia --id kor-jpn-gsomia --at 2024-01-01

banner "3. The real history, instant by instant"
$accord replay --policy examples/gsomia

banner "4. Decisions (examples/gsomia/requests.jsonl)"
$accord decide --policy examples/gsomia --requests examples/gsomia/requests.jsonl |
  python3 scripts/show-decisions.py

banner "5. Had Korea not suspended its notice"
$accord agreement status --policy examples/gsomia-no-suspension --id kor-jpn-gsomia \
  --at 2019-11-23T00:00:00+09:00
$accord flows --policy examples/gsomia-no-suspension --at 2019-11-23T00:00:00+09:00 --zone +09:00 | head -7

banner "6. Three nodes play the history with transfer packages (scripts/node-demo.sh)"
bash scripts/node-demo.sh "$accord"

banner "7. Three live nodes on loopback, federated over mutual TLS (scripts/live-demo.sh)"
bash scripts/live-demo.sh "$accord"

echo
echo "Try: $accord --help"
