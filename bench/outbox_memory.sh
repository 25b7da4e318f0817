#!/usr/bin/env bash
# Peak memory (VmHWM) of Korea's node with a backlog of 12 releases of 5 MB payloads to Japan,
# queued while Japan is down, then delivered once it is back (decision #96). Three live nodes on
# loopback, as tests/cli/federation_test.sh starts them.
# Usage: bench/outbox_memory.sh [ACCORD_BINARY]   (default: build/release/src/cli/accord)
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
accord=$(realpath "${1:-$src/build/release/src/cli/accord}")
work=$(mktemp -d)
source "$src/scripts/live-lib.sh"
export ACCORD_PASSPHRASE="test passphrase"
trap 'live_stop_all; rm -rf "$work"' EXIT
live_setup "$accord" "$work/net" "$src/examples/gsomia" --simulate >/dev/null || exit 1
for p in KOR JPN USA; do live_start $p 2018-05-01T10:00:00+09:00 || exit 1; done
live_stop JPN
head -c 5000000 /dev/urandom >"$work/large.bin"
for i in $(seq 1 12); do
  printf '{"id":"k-big-%s","level":"II","topics":["dprk-missile"],"rel_to":["JPN"],"payload_base64":"%s"}' \
    "$i" "$(base64 -w0 "$work/large.bin")" >"$work/large.json"
  live_curl KOR kor-analyst -s -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data-binary "@$work/large.json" "$(live_url KOR /v1/objects)"
  live_curl KOR kor-analyst -s -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data '{"to":"JPN"}' "$(live_url KOR /v1/objects/k-big-$i/release)"
done
pid=$(cat "$work/net/run/KOR.pid")
before=$(grep VmHWM /proc/$pid/status | awk '{print $2}')
live_start JPN 2018-05-01T10:00:00+09:00 || exit 1
for i in $(seq 1 600); do
  live_curl KOR kor-analyst -s "$(live_url KOR /v1/outbox)" | grep -q '"JPN":{"pending":0,' && break
  sleep 0.2
done
after=$(grep VmHWM /proc/$pid/status | awk '{print $2}')
echo "$accord: KOR peak RSS before delivery ${before} kB, after ${after} kB; $(live_curl KOR kor-analyst -s "$(live_url KOR /v1/outbox)" | grep -o '"JPN":{[^}]*}')"
