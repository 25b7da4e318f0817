#!/usr/bin/env bash
# Load: 8 concurrent clients issue 10,000 mixed requests each (reads, decisions, creates,
# releases delivered to Japan, health, checkpoints, agreements) against Korea's live node, with
# Japan's and the US's nodes running. Every request must succeed, every release must be
# delivered exactly once, and the three logs must verify and witness each other without a fork.
# Usage: load_test.sh ACCORD_BINARY ACCORD_LOAD_BINARY SOURCE_DIR [REQUESTS_PER_CLIENT]
set -uo pipefail
accord=$1
load=$2
src=$3
requests=${4:-10000}
work=$(mktemp -d)
source "$src/scripts/live-lib.sh"
trap 'live_stop_all; rm -rf "$work"' EXIT
export ACCORD_PASSPHRASE="test passphrase"
fail() {
  echo "FAIL $1"
  exit 1
}

live_setup "$accord" "$work/net" "$src/examples/gsomia" || fail "setup"
for p in KOR JPN USA; do live_start "$p" || fail "start $p"; done
pki=$work/net/pki
kor_client=(--port "$(live_port KOR)" --ca "$pki/ca.pem" --cert "$pki/users/kor-analyst.pem"
  --key "$pki/users/kor-analyst.key")
"$load" "${kor_client[@]}" --clients 8 --requests "$requests" --mix | tee "$work/load.txt" ||
  fail "the load client failed"
grep -q ' errors 0 ' "$work/load.txt" || fail "requests failed"
# The event-driven clients of bench/api_bench.sh: 8 connections on 2 threads, every answer
# counted, and an unexpected status counted as an error.
as_kor=("${kor_client[@]}" --clients 8 --threads 2)
"$load" "${as_kor[@]}" --requests 200 --decide 10 >"$work/evented.txt" || fail "evented decide: $(cat "$work/evented.txt")"
grep -Eq '^decide +1600 ' "$work/evented.txt" && grep -q ' errors 0 ' "$work/evented.txt" ||
  fail "evented decide: $(cat "$work/evented.txt")"
if "$load" "${as_kor[@]}" --requests 5 --get /v1/no-such-route >"$work/evented.txt" 2>&1; then
  fail "evented clients counted a 404 as a success"
fi
grep -q ' errors 40 ' "$work/evented.txt" || fail "evented 404s: $(cat "$work/evented.txt")"
# 96 readers at once: every read is answered, and each is logged once (counted below).
live_curl KOR kor-analyst -X POST -H 'Content-Type: application/json' \
  -d '{"id":"k-many","level":"II","topics":["dprk-missile"],"payload_base64":"bWFueQ=="}' \
  "$(live_url KOR /v1/objects)" >/dev/null || fail "create k-many"
"$load" "${kor_client[@]}" --clients 96 --threads 2 --requests 40 --read k-many >"$work/many.txt" || fail "96 readers: $(cat "$work/many.txt")"
grep -Eq '^read +3840 ' "$work/many.txt" && grep -q ' errors 0 ' "$work/many.txt" ||
  fail "96 readers: $(cat "$work/many.txt")"
releases=$(sed -n 's/.* releases \([0-9]*\)$/\1/p' "$work/load.txt")
[ "$releases" -gt 0 ] || fail "no release was made"
echo "waiting for $releases releases to be delivered"
delivered=""
for i in $(seq 1 600); do
  if live_curl KOR kor-analyst "$(live_url KOR /v1/outbox)" |
    grep -q "\"JPN\":{\"pending\":0,\"delivered\":$releases,\"failed\":0}"; then
    delivered=yes
    break
  fi
  sleep 0.5
done
[ -n "$delivered" ] || fail "not every release was delivered: $(live_curl KOR kor-analyst "$(live_url KOR /v1/outbox)" | head -c 400)"
sleep 2  # a witnessing round after the last delivery
for p in KOR JPN USA; do
  user=$(echo "$p" | tr 'A-Z' 'a-z')-analyst
  live_curl "$p" "$user" "$(live_url "$p" /v1/federation/peers)" >"$work/peers.$p" ||
    fail "$p's peers: $(cat "$work/peers.$p")"
  # "fork" stays set once a fork (or a rollback) was seen, whatever came after: both partners
  # must show none.
  [ "$(grep -o '"fork":null' "$work/peers.$p" | wc -l)" = 2 ] ||
    fail "$p saw a fork: $(cat "$work/peers.$p")"
done
live_stop_all
[ "$LIVE_BAD_STOPS" = 0 ] || fail "$LIVE_BAD_STOPS node(s) did not stop cleanly (above)"
if reports=$(live_sanitizer_reports "$work"); then
  for f in $reports; do tail -n 60 "$f"; done
  fail "a sanitizer reported in: $reports"
fi
received=$("$accord" log show --home "$work/net/JPN" --json | grep -c '"op":"receive".*"decision":"allow"')
[ "$received" = "$releases" ] || fail "JPN received $received packages for $releases releases"
"$accord" log show --home "$work/net/KOR" --json >"$work/kor-log.jsonl" || fail "KOR's log show"
receipts=$(grep -c '"op":"receipt"' "$work/kor-log.jsonl")
[ "$receipts" = "$releases" ] || fail "KOR logged $receipts receipts for $releases releases"
reads=$(grep '"op":"read"' "$work/kor-log.jsonl" | grep -c '"object":"k-many"')
[ "$reads" = 3840 ] || fail "KOR logged $reads reads of k-many for 3840"
for p in KOR JPN USA; do
  "$accord" log verify --home "$work/net/$p" >/dev/null || fail "$p's log does not verify"
  evidence=$("$accord" log evidence --home "$work/net/$p" 2>&1) || fail "$p's log evidence: $evidence"
  [ "$evidence" = "no evidence: no partner's log was caught rewritten" ] ||
    fail "$p kept evidence of a fork: $evidence"
done
echo "load_test: $((8 * requests)) requests, $releases releases delivered once each, logs verified"
