#!/usr/bin/env bash
# Three live nodes (KOR, JPN, USA) on loopback, federated over mutual TLS on the system clock:
# a scripted exchange over the network (a release Korea -> Japan read by a cleared analyst and
# refused to a clerk; the TISA route through the US with Korea's consent), each node witnessing
# the other two's logs, then where each node listens and how to query it with curl. The nodes
# keep running until Ctrl-C when run from a terminal (ACCORD_LIVE_NO_WAIT=1: stop at once).
# Usage: live-demo.sh [path/to/accord]. ACCORD_LIVE_DIR keeps the deployment there (an earlier
# run's deployment there is replaced; a directory holding anything else is refused).
set -euo pipefail
cd "$(dirname "$0")/.."
accord=${1:-build/release/src/cli/accord}
source scripts/live-lib.sh
if [ -n "${ACCORD_LIVE_DIR:-}" ]; then
  dir=$ACCORD_LIVE_DIR
  # Only an earlier run's deployment (marked by live_setup) is replaced: never a directory that
  # holds something else.
  if [ -n "$(ls -A "$dir" 2>/dev/null)" ] && [ ! -f "$dir/.accord-live" ]; then
    echo "live-demo: $dir is not empty and holds no earlier deployment (.accord-live); not removing it" >&2
    exit 2
  fi
  rm -rf "$dir"
else
  dir=$(mktemp -d)
fi
cleanup() {
  live_stop_all || true  # a node that did not stop cleanly has said so
  [ -n "${ACCORD_LIVE_DIR:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
trap 'echo; echo "stopping the three nodes"; exit 0' INT TERM
# A demonstration passphrase; a real deployment reads it from --passphrase-file.
export ACCORD_PASSPHRASE="demo passphrase, not for real use"

step() { printf '\n-- %s\n' "$1"; }
# show PARTY USER METHOD PATH [JSON]: prints the request and the node's answer.
show() {
  local p=$1 user=$2 method=$3 path=$4 body=${5:-}
  printf '%s %s %s as %s' "$p" "$method" "$path" "$user"
  [ -z "$body" ] || printf ' %s' "$body"
  printf '\n   -> '
  if [ -n "$body" ]; then
    live_curl "$p" "$user" -X "$method" -H 'Content-Type: application/json' -d "$body" \
      "$(live_url "$p" "$path")"
  else
    live_curl "$p" "$user" -X "$method" "$(live_url "$p" "$path")"
  fi | cut -c1-400
  echo
}
# Waits until PARTY's outbox has nothing pending.
delivered() {
  local i outbox
  for i in $(seq 1 100); do
    if outbox=$(live_curl "$1" "$2" "$(live_url "$1" /v1/outbox)"); then
      case "$outbox" in *'"pending":'[1-9]*) ;; *) return 0 ;; esac
    fi
    sleep 0.1
  done
  echo "deliveries from $1 still pending" >&2
}

step "A development PKI, three homes on the system clock, keys exchanged, serve.toml each"
live_setup "$accord" "$dir" examples/gsomia
echo "PKI in $dir/pki; homes $dir/KOR, $dir/JPN, $dir/USA"
for p in "${LIVE_PARTIES[@]}"; do live_start "$p"; done
for p in "${LIVE_PARTIES[@]}"; do echo "$p listens on https://127.0.0.1:$(live_port "$p")/v1"; done

step "Korea creates an object and releases it to Japan; Japan's node receives it and receipts"
payload=$(printf 'KN-23 test site survey' | base64 -w0)
show KOR kor-analyst POST /v1/objects \
  "{\"id\":\"k-live\",\"level\":\"II\",\"topics\":[\"dprk-missile\"],\"rel_to\":[\"JPN\",\"USA\"],\"payload_base64\":\"$payload\"}"
show KOR kor-analyst POST /v1/objects/k-live/release '{"to":"JPN"}'
delivered KOR kor-analyst
show JPN jpn-analyst GET /v1/objects/k-live
show JPN jpn-clerk GET /v1/objects/k-live

step "The TISA route: Korea -> US; the US forwards to Japan only with Korea's consent"
show KOR kor-analyst POST /v1/objects/k-live/release '{"to":"USA"}'
delivered KOR kor-analyst
show USA usa-analyst POST /v1/objects/k-live/forward '{"to":"JPN"}'
show KOR kor-analyst POST /v1/objects/k-live/consent '{"to":"JPN"}'
delivered KOR kor-analyst
show USA usa-analyst POST /v1/objects/k-live/forward '{"to":"JPN"}'
delivered USA usa-analyst

step "Receipts, and each node witnessing its partners' logs"
show KOR kor-analyst GET /v1/outbox
sleep 1
for p in "${LIVE_PARTIES[@]}"; do
  show "$p" "$(echo "$p" | tr 'A-Z' 'a-z')-analyst" GET /v1/federation/peers
done
show KOR kor-analyst GET /v1/log/checkpoint

step "Query the nodes yourself"
for p in "${LIVE_PARTIES[@]}"; do
  u=$(echo "$p" | tr 'A-Z' 'a-z')-analyst
  echo "curl --cacert $dir/pki/ca.pem --cert $dir/pki/users/$u.pem --key $dir/pki/users/$u.key \\"
  echo "     https://127.0.0.1:$(live_port "$p")/v1/objects"
done
echo "API reference: docs/api.md. Logs: $dir/run/*.log"
if [ -t 0 ] && [ "${ACCORD_LIVE_NO_WAIT:-0}" != 1 ]; then
  echo
  echo "The three nodes keep running; press Ctrl-C to stop them."
  while true; do sleep 3600; done
fi
