#!/usr/bin/env bash
# Three live nodes (KOR, JPN, USA) on loopback ports, federated over mutual TLS: the GSOMIA
# history played over the network, receipts and checkpoints cross-verified, and faults (a partner
# stopped during a release, SIGKILL mid-delivery, a batch answer spoiled on the way back, bad
# requests) that must lose nothing and deliver nothing twice.
# Usage: federation_test.sh ACCORD_BINARY SOURCE_DIR
set -uo pipefail
accord=$1
src=$2
work=$(mktemp -d)
source "$src/scripts/live-lib.sh"
# A user's ~/.curlrc or ~/.sqliterc would change what the tools print: a home of the test's own.
export HOME="$work/home"
mkdir "$HOME"
proxy_pid=""
cleanup() {
  [ -z "$proxy_pid" ] || kill "$proxy_pid" 2>/dev/null
  live_stop_all
  rm -rf "$work"
}
trap cleanup EXIT
export ACCORD_PASSPHRASE="test passphrase"
failures=0
passed=0
ok() { passed=$((passed + 1)); }
fail() {
  echo "FAIL $1"
  failures=$((failures + 1))
}
# check NAME PATTERN COMMAND...: the command's output matches PATTERN.
check() {
  local name=$1 pattern=$2
  shift 2
  "$@" >"$work/out" 2>&1
  if grep -qE -- "$pattern" "$work/out"; then ok; else
    fail "$name: output does not match /$pattern/"
    cat "$work/out"
  fi
}
# check_ok NAME PATTERN COMMAND...: the command exits 0 and its output matches PATTERN.
check_ok() {
  local name=$1 pattern=$2 status=0
  shift 2
  "$@" >"$work/out" 2>&1 || status=$?
  if [ "$status" = 0 ] && grep -qE -- "$pattern" "$work/out"; then ok; else
    fail "$name: exit $status, or output does not match /$pattern/"
    cat "$work/out"
  fi
}
# eventually NAME PATTERN COMMAND...: the output matches PATTERN within 60 s.
eventually() {
  local name=$1 pattern=$2 i
  shift 2
  for i in $(seq 1 300); do
    "$@" >"$work/out" 2>&1
    if grep -qE -- "$pattern" "$work/out"; then
      ok
      return 0
    fi
    sleep 0.2
  done
  fail "$name: output never matched /$pattern/"
  cat "$work/out"
  return 1
}
post() { # post PARTY USER PATH JSON
  live_curl "$1" "$2" -X POST -H 'Content-Type: application/json' -d "$4" "$(live_url "$1" "$3")"
}
get() { live_curl "$1" "$2" "$(live_url "$1" "$3")"; }
create() { # create PARTY USER ID LEVEL PAYLOAD REL_TO_JSON
  post "$1" "$2" /v1/objects "{\"id\":\"$3\",\"level\":\"$4\",\"topics\":[\"dprk-missile\"],\
\"rel_to\":$6,\"payload_base64\":\"$(printf '%s' "$5" | base64 -w0)\"}"
}
# sqlite3 on a live node's store, waiting for its write lock; db_change fails the test if it fails.
db() { sqlite3 -cmd '.timeout 5000' "$@"; }
db_change() { # db_change NAME DATABASE SQL
  if db "$2" "$3" >"$work/db.out" 2>&1; then ok; else
    fail "$1: sqlite3 failed"
    cat "$work/db.out"
  fi
}
start_all() { for p in KOR JPN USA; do live_start "$p" "$1" || exit 1; done; }
# The number of log entries of PARTY's node that mention PATTERN, over the whole log, page by
# page; a failed request prints its error instead of a count, so no count check passes on it.
entries() {
  local from=0 size n body
  : >"$work/entries"
  while :; do
    body=$(live_curl "$1" "$2" --fail-with-body \
      "$(live_url "$1" "/v1/log/entries?from=$from&count=1000")") || {
      echo "GET /v1/log/entries failed: $body"
      return 1
    }
    printf '%s\n' "$body" >>"$work/entries"
    size=$(grep -oE '^\{"size":[0-9]+' <<<"$body" | grep -oE '[0-9]+$')
    n=$(grep -oE '"v":1,"at":' <<<"$body" | wc -l)
    if [ -z "$size" ] || { [ "$n" = 0 ] && [ "$from" -lt "$size" ]; }; then
      echo "GET /v1/log/entries: no size, or no entry counted from $from: $body"
      return 1
    fi
    from=$((from + n))
    [ "$from" -lt "$size" ] || break
  done
  grep -oE "$3" "$work/entries" | wc -l
}
# The number of entries in the log of the stopped node's home HOME that mention PATTERN.
# A `log show` that fails prints no count, so that no check of a count can pass on it.
home_entries() {
  local shown
  shown=$("$accord" log show --home "$1") || { echo "log show failed"; return 1; }
  printf '%s\n' "$shown" | grep -cE "$2"
}

live_setup "$accord" "$work/net" "$src/examples/gsomia" --simulate || exit 1

# 1. 2015, before the Korea-Japan GSOMIA: Korea's information reaches Japan only through the US,
#    with Korea's consent (TISA), and the US node cannot read what was not released to it.
start_all 2015-03-01T10:00:00+09:00
# A node holds keys and payloads in memory: it never dumps core (accord/harden.h).
check_ok no-core-dumps '^Max core file size +0 +0 ' cat "/proc/$(cat "$work/net/run/KOR.pid")/limits"
# The passphrase came from ACCORD_PASSPHRASE: it is wiped from the node's environment once
# read (#127). Only root reads the environment of a process that is not dumpable.
if [ "$(id -u)" != 0 ]; then
  echo "skipped: passphrase-wiped (not root)"
elif ! tr '\0' '\n' <"/proc/$(cat "$work/net/run/KOR.pid")/environ" >"$work/environ" ||
  ! grep -q '^PATH=' "$work/environ"; then
  fail "passphrase-wiped: cannot read the node's environment"
elif grep -qF "$ACCORD_PASSPHRASE" "$work/environ"; then
  fail "passphrase-wiped: the passphrase is still in the node's environment"
else
  ok
fi
check tisa-create '"id":"k-2015"' create KOR kor-analyst k-2015 II "launch telemetry" '["USA","JPN"]'
check tisa-direct-refused '"code":"hub-only"' post KOR kor-analyst /v1/objects/k-2015/release '{"to":"JPN"}'
check tisa-release-usa '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-2015/release '{"to":"USA"}'
eventually tisa-usa-has-it '"reason":"released"' get USA usa-analyst /v1/objects/k-2015
check tisa-no-consent '"code":"no-consent"' post USA usa-analyst /v1/objects/k-2015/forward '{"to":"JPN"}'
# Only the originator consents: the holder is refused with the node's own reason code.
check tisa-not-originator '"code":"not-originator"' post USA usa-analyst /v1/objects/k-2015/consent '{"to":"JPN"}'
check tisa-consent '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-2015/consent '{"to":"JPN"}'
eventually tisa-consent-delivered '"USA":\{"pending":0,"delivered":2,"failed":0\}' get KOR kor-analyst /v1/outbox
check tisa-forward '"to":"JPN"' post USA usa-analyst /v1/objects/k-2015/forward '{"to":"JPN"}'
eventually tisa-jpn-reads '"level":"GOKUHI","name":"極秘"' get JPN jpn-analyst /v1/objects/k-2015
check tisa-payload "\"payload_base64\":\"$(printf 'launch telemetry' | base64 -w0)\"" get JPN jpn-analyst /v1/objects/k-2015
# An object Korea holds but did not release to the US is not on the US node (that its package
# to Japan is useless to the US is node_test's APackageForJapanIsUselessToTheUs).
check usa-kept-create '"id":"k-kept"' create KOR kor-analyst k-kept II "kept at home" '["USA","JPN"]'
check usa-kept-korea-reads '"reason":"originator-cleared"' get KOR kor-analyst /v1/objects/k-kept
check usa-not-released '"code":"not-found"' get USA usa-analyst /v1/objects/k-kept
live_stop_all

# 2. 2018: a release Korea -> Japan arrives, is read by a cleared analyst and refused to a clerk.
start_all 2018-05-01T10:00:00+09:00
check create-2018 '"id":"k-2018"' create KOR kor-analyst k-2018 II "site survey" '["JPN"]'
check release-2018 '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-2018/release '{"to":"JPN"}'
eventually jpn-reads-2018 '"reason":"released"' get JPN jpn-analyst /v1/objects/k-2018
check clerk-refused '"code":"insufficient-clearance"' get JPN jpn-clerk /v1/objects/k-2018
check analyst-lists '"id":"k-2018"' get JPN jpn-analyst /v1/objects
check clerk-lists-nothing '^\{"objects":\[\],"next":null\}$' get JPN jpn-clerk /v1/objects
check usa-cannot-open '"code":"not-found"' get USA usa-analyst /v1/objects/k-2018
eventually receipt-2018 '"JPN":\{"pending":0,"delivered":1,"failed":0\}' get KOR kor-analyst /v1/outbox
check jpn-logged-receive '^1$' entries JPN jpn-analyst '"op":"receive"[^}]*"decision":"allow","reason":"releasable"[^}]*"object":"k-2018"'
check kor-logged-receipt '^1$' entries KOR kor-analyst '"op":"receipt"[^}]*"object":"k-2018"'

# 3. Faults. A partner stopped during releases receives each exactly once after it restarts, the
#    four queued meanwhile in one request (a batch); the one spoiled in the queue is refused
#    alone, for good, and the others are not held back by it.
# KOR's federation counters for JPN: "DELIVERED REQUESTS".
jpn_counters() {
  get KOR kor-analyst /v1/federation/peers | grep -oE '"party":"JPN"[^}]*' |
    sed -E 's/.*"delivered":([0-9]+),"requests":([0-9]+).*/\1 \2/'
}
live_stop JPN
for f in f1 f2 f3 f4; do
  check "create-$f" "\"id\":\"k-$f\"" create KOR kor-analyst "k-$f" II "while down" '["JPN"]'
  check "release-$f" '"delivery":"queued"' post KOR kor-analyst "/v1/objects/k-$f/release" '{"to":"JPN"}'
done
eventually f1-retried '"attempts":[1-9]' get KOR kor-analyst /v1/outbox
# Each failed pass records its attempt on every envelope due, so k-f4 has been tried too: it is
# checked before it is sent again.
eventually f4-tried '"object":"k-f4","state":"pending","attempts":[1-9]' get KOR kor-analyst /v1/outbox
check f1-pending '"JPN":\{"pending":4,' get KOR kor-analyst /v1/outbox
# k-f4's queued envelope no longer matches its signature (the signature's first character changed):
# Korea finds it damaged before it sends it again, and gives it up; the others go on.
db_change f4-corrupted "$work/net/KOR/state.db" "UPDATE outbox_envelopes SET envelope = CAST(( \
  SELECT substr(t, 1, p + 12) || iif(substr(t, p + 13, 1) = 'A', 'B', 'A') || substr(t, p + 14) \
  FROM (SELECT CAST(envelope AS TEXT) AS t, instr(CAST(envelope AS TEXT), '\"signature\":\"') AS p)) \
  AS BLOB) WHERE seq IN (SELECT seq FROM outbox WHERE object_id = 'k-f4')"
read -r delivered_before requests_before < <(jpn_counters)
live_start JPN 2018-05-01T10:00:00+09:00 || exit 1
eventually f1-delivered '"JPN":\{"pending":0,"delivered":4,"failed":1\}' get KOR kor-analyst /v1/outbox
check f4-given-up '"object":"k-f4".*"last_error":"damaged in this node.s outbox: its signature does not verify with this node.s key"' \
  get KOR kor-analyst /v1/outbox
check f4-said 'gave up the release `[^`]+` of `k-f4` to JPN: damaged in this node.s outbox' cat "$work/net/run/KOR.log"
check f4-not-received '"code":"not-found"' get JPN jpn-analyst /v1/objects/k-f4
read -r delivered_after requests_after < <(jpn_counters)
if [ $((delivered_after - delivered_before)) = 3 ] && [ $((requests_after - requests_before)) = 1 ]; then ok; else
  fail "f-batch: JPN's counters went from $delivered_before/$requests_before to $delivered_after/$requests_after, not +3/+1"
fi
for f in f1 f2 f3; do
  check "$f-read" '"reason":"released"' get JPN jpn-analyst "/v1/objects/k-$f"
  check "$f-once" '^1$' entries JPN jpn-analyst "\"op\":\"receive\"[^}]*\"decision\":\"allow\",\"reason\":\"releasable\"[^}]*\"object\":\"k-$f\""
done

# SIGKILL of the sender in the middle of a burst of releases, then of the receiver: every release
# acknowledged with 202 arrives exactly once.
acked=0
for i in $(seq 1 12); do
  create KOR kor-analyst "k-b$i" II "burst $i" '["JPN"]' >/dev/null
  if post KOR kor-analyst "/v1/objects/k-b$i/release" '{"to":"JPN"}' | grep -q queued; then
    acked=$((acked + 1))
  fi
  [ "$i" = 6 ] && live_stop KOR KILL && live_start KOR 2018-05-01T10:00:00+09:00
  [ "$i" = 9 ] && live_stop JPN KILL && live_start JPN 2018-05-01T10:00:00+09:00
done
if [ "$acked" = 12 ]; then ok; else fail "only $acked of 12 burst releases were acknowledged"; fi
eventually burst-delivered '"JPN":\{"pending":0,"delivered":16,"failed":1\}' get KOR kor-analyst /v1/outbox
check burst-once '^12$' entries JPN jpn-analyst '"op":"receive"[^}]*"decision":"allow","reason":"releasable"[^}]*"object":"k-b[0-9]+"'

# A batch whose answer is spoiled on the way back (tests/cli/batch_proxy.py between Korea and
# Japan): a 500 on the second line, then an answer a line short, then one followed by a megabyte
# of empty lines. Korea keeps what the answer proves, retries the rest, and Japan applies each
# envelope once.
proxy_round() { # proxy_round MODE ID...: releases while Japan is unreachable, then the proxy
  local mode=$1 id
  shift
  rm -f "$work/net/run/JPN.proxy.port"
  for id in "$@"; do
    create KOR kor-analyst "$id" II "through the proxy" '["JPN"]' >/dev/null
    post KOR kor-analyst "/v1/objects/$id/release" '{"to":"JPN"}' >/dev/null
  done
  python3 "$src/tests/cli/batch_proxy.py" "$work/net/pki" JPN KOR "$work/net/run/JPN.port" \
    "$work/net/run/JPN.proxy.port" "$mode" 2>>"$work/net/run/proxy.log" &
  proxy_pid=$!
}
cp "$work/net/KOR/serve.toml" "$work/kor-serve.toml"
sed -i 's|port_file = "../run/JPN.port"|port_file = "../run/JPN.proxy.port"|' "$work/net/KOR/serve.toml"
live_stop KOR; live_start KOR 2018-05-01T10:00:00+09:00 || exit 1
delivered=16
for mode in fail-second short long; do
  proxy_round "$mode" "k-$mode-1" "k-$mode-2" "k-$mode-3"
  delivered=$((delivered + 3))
  eventually "proxy-$mode-delivered" "\"JPN\":\\{\"pending\":0,\"delivered\":$delivered,\"failed\":1\\}" get KOR kor-analyst /v1/outbox
  kill "$proxy_pid" 2>/dev/null
  wait "$proxy_pid" 2>/dev/null
  for i in 1 2 3; do
    check "proxy-$mode-$i-once" '^1$' entries JPN jpn-analyst "\"op\":\"receive\"[^}]*\"object\":\"k-$mode-$i\""
  done
done
check proxy-spoiled '^3$' grep -c 'spoiled a batch answer' "$work/net/run/proxy.log"
# A receipt whose format holds a line break and then a line of its own: Korea logs it as one
# line (a partner cannot write lines into Korea's log), and delivers the envelope again.
proxy_round forged-receipt k-forged-1
delivered=$((delivered + 1))
eventually proxy-forged-delivered "\"JPN\":\\{\"pending\":0,\"delivered\":$delivered,\"failed\":1\\}" get KOR kor-analyst /v1/outbox
kill "$proxy_pid" 2>/dev/null
wait "$proxy_pid" 2>/dev/null
check proxy-forged-spoiled 'forged a receipt' cat "$work/net/run/proxy.log"
check proxy-forged-one-line 'bad receipt: package: unknown format `x\\x0aWITNESS: forged by the proxy`' cat "$work/net/run/KOR.log"
check proxy-forged-no-line '^0$' grep -c '^WITNESS: forged' "$work/net/run/KOR.log"
check proxy-forged-once '^1$' entries JPN jpn-analyst '"op":"receive"[^}]*"object":"k-forged-1"'
# Proofs of the checkpoints Japan showed, answered to another tree: not evidence of anything.
# Korea says so once and proves them at a later round; no fork (decision #86). Three envelopes
# go as one batch, whose receipts show three sizes of Japan's log: the two smaller need proofs.
proxy_round other-root k-other-root-1 k-other-root-2 k-other-root-3
delivered=$((delivered + 3))
eventually proxy-other-root-delivered "\"JPN\":\\{\"pending\":0,\"delivered\":$delivered,\"failed\":1\\}" get KOR kor-analyst /v1/outbox
eventually proxy-other-root-spoiled 'spoiled a consistency answer' cat "$work/net/run/proxy.log"
eventually proxy-other-root-proved '"party":"JPN","reachable":true,"last_error":null,"fork":null,"witnessed_size":[0-9]+,"unproved_checkpoints":0' \
  get KOR kor-analyst /v1/federation/peers
kill "$proxy_pid" 2>/dev/null
wait "$proxy_pid" 2>/dev/null
check proxy-other-root-said 'the checkpoints it showed: malformed consistency proofs: not to the checkpoint of [0-9]+ entries cosigned' \
  cat "$work/net/run/KOR.log"
# A partner that takes envelopes but withholds its checkpoints (decision #131): Korea delivers, says
# why it cannot witness, and shows how long ago it last did.
proxy_round no-checkpoint k-no-checkpoint-1
delivered=$((delivered + 1))
eventually proxy-no-checkpoint-delivered "\"JPN\":\\{\"pending\":0,\"delivered\":$delivered,\"failed\":1\\}" get KOR kor-analyst /v1/outbox
eventually proxy-no-checkpoint-said '"party":"JPN","reachable":true,"last_error":"witness: no checkpoint: [^"]*withheld by the test proxy' \
  get KOR kor-analyst /v1/federation/peers
eventually proxy-no-checkpoint-stale '"party":"JPN"[^}]*"seconds_since_witnessed":([3-9]|[1-9][0-9]+)\}' \
  get KOR kor-analyst /v1/federation/peers
kill "$proxy_pid" 2>/dev/null
wait "$proxy_pid" 2>/dev/null
check proxy-kor-retried 'injected by the test proxy' cat "$work/net/run/KOR.log"
check proxy-kor-one-by-one 'did not take a batch of 3 envelopes \(2 answers\); sending them one by one' cat "$work/net/run/KOR.log"
check proxy-kor-too-many 'did not take a batch of 3 envelopes \(more answers than envelopes\); sending them one by one' cat "$work/net/run/KOR.log"
# SIGTERM while Korea's node works through a backlog to a slow partner (the proxy takes no batches,
# and half a second over each envelope): the node stops after the request in flight, not after
# the backlog (12 envelopes, 6 s), and what it did not deliver goes after its restart, once each.
slow_ids=()
for i in $(seq 1 12); do slow_ids+=("k-slow-$i"); done
proxy_round slow "${slow_ids[@]}"
delivered=$((delivered + 12))
eventually slow-first-delivered '^[1-9]' entries JPN jpn-analyst '"op":"receive"[^}]*"object":"k-slow-'
stop_start=$(date +%s%N)
live_stop KOR
stop_ms=$((($(date +%s%N) - stop_start) / 1000000))
if [ "$stop_ms" -lt 3000 ]; then ok; else fail "slow-stop: Korea's node took $stop_ms ms to stop"; fi
live_start KOR 2018-05-01T10:00:00+09:00 || exit 1
eventually slow-delivered "\"JPN\":\\{\"pending\":0,\"delivered\":$delivered," get KOR kor-analyst /v1/outbox
kill "$proxy_pid" 2>/dev/null
wait "$proxy_pid" 2>/dev/null
check slow-each-once '^12$' entries JPN jpn-analyst '"op":"receive"[^}]*"object":"k-slow-[0-9]+"'

# Another witness of Korea's home (`accord log witness`) cosigns Japan's log while Korea's
# federation witnesses it, between its read of the size cosigned last and its own cosignature
# (decision #94): the proxy runs that witness just before it passes on the federation's request
# for a proof. Korea witnesses the checkpoint in hand again from the new size; when that size is
# past the checkpoint, keeps it as shown and proves it later. No fork either way.
jpn_peer() { # jpn_peer FIELD: Korea's view of Japan in /v1/federation/peers
  get KOR kor-analyst /v1/federation/peers |
    python3 -c "import json,sys; print([p for p in json.load(sys.stdin)['peers'] if p['party'] == 'JPN'][0]['$1'])"
}
jpn_checkpoint() { # jpn_checkpoint FILE: Japan's checkpoint after one more entry (a read)
  get JPN jpn-analyst /v1/objects/k-slow-1 >/dev/null
  get JPN jpn-analyst /v1/log/checkpoint >"$1"
  sed -n 2p "$1"
}
witness_round() { # witness_round FROM CHECKPOINT [OLDER_CHECKPOINT]: the proxy, with its hook
  local proof
  proof=$(get JPN jpn-analyst "/v1/log/consistency?from=$1&to=$(sed -n 2p "$2")" |
    python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)["proof"]))')
  printf '"%s" log witness --home "%s" --checkpoint "%s" --proof %s --from %s\n' "$accord" \
    "$work/net/KOR" "$2" "$proof" "$1" >"$work/hook.sh"
  rm -f "$work/net/run/JPN.proxy.port"
  PROXY_HOOK="bash $work/hook.sh >>$work/net/run/hook.log 2>&1" PROXY_CHECKPOINT=${3:-} \
    python3 "$src/tests/cli/batch_proxy.py" "$work/net/pki" JPN KOR "$work/net/run/JPN.port" \
    "$work/net/run/JPN.proxy.port" witness 2>>"$work/net/run/proxy.log" &
  proxy_pid=$!
}
# From the size cosigned last (a) to a checkpoint of Japan's log (c), while the hook cosigns one
# between them (b). Korea cannot reach Japan meanwhile (the proxy is down), so a holds still.
kor_log_lines=$(wc -l <"$work/net/run/KOR.log")
a=$(jpn_peer witnessed_size)
b=$(jpn_checkpoint "$work/cp-b")
c=$(jpn_checkpoint "$work/cp-c")
if [ "$a" -gt 0 ] && [ "$a" -lt "$b" ] && [ "$b" -lt "$c" ]; then ok; else
  fail "witness-between-sizes: want 0 < $a < $b < $c"
fi
witness_round "$a" "$work/cp-b"
eventually witness-between-hook "ran the hook before /v1/log/consistency\?from=$a&to=[0-9]+: exit 0" \
  cat "$work/net/run/proxy.log"
eventually witness-between-said "JPN: another witness of this home cosigned $b entries of its log meanwhile" \
  cat "$work/net/run/KOR.log"
eventually witness-between-cosigned '"party":"JPN","reachable":true,"last_error":null,"fork":null,"witnessed_size":[0-9]+,"unproved_checkpoints":0' \
  get KOR kor-analyst /v1/federation/peers
now=$(jpn_peer witnessed_size)
if [ "$now" -ge "$c" ]; then ok; else fail "witness-between-size: $now, want at least $c"; fi
kill "$proxy_pid" 2>/dev/null
wait "$proxy_pid" 2>/dev/null
# The proxy serves an older checkpoint of Japan's (c) while the hook cosigns a later one (d).
a=$(jpn_peer witnessed_size)
c=$(jpn_checkpoint "$work/cp-c")
d=$(jpn_checkpoint "$work/cp-d")
witness_round "$a" "$work/cp-d" "$work/cp-c"
eventually witness-past-said "JPN: another witness of this home cosigned $d entries of its log meanwhile" \
  cat "$work/net/run/KOR.log"
check witness-past-served 'served an older checkpoint' cat "$work/net/run/proxy.log"
eventually witness-past-proved '^1$' db "$work/net/KOR/state.db" \
  "SELECT state FROM shown_checkpoints WHERE origin = 'accord/JPN' AND size = $c"
eventually witness-past-peer '"party":"JPN","reachable":true,"last_error":null,"fork":null,"witnessed_size":[0-9]+,"unproved_checkpoints":0' \
  get KOR kor-analyst /v1/federation/peers
kill "$proxy_pid" 2>/dev/null
wait "$proxy_pid" 2>/dev/null
check witness-no-fork '^0$' db "$work/net/KOR/state.db" "SELECT count(*) FROM log_evidence"
tail -n "+$((kor_log_lines + 1))" "$work/net/run/KOR.log" >"$work/kor-witness.log"
# The window read is the one in which Korea said what it witnessed (an empty one proves nothing).
check witness-window-read "cosigned $d entries of its log meanwhile" cat "$work/kor-witness.log"
check witness-no-fork-said '^0$' grep -cE 'cannot keep its checkpoint|cannot witness|WITNESS:' "$work/kor-witness.log"
cp "$work/kor-serve.toml" "$work/net/KOR/serve.toml"
live_stop KOR; live_start KOR 2018-05-01T10:00:00+09:00 || exit 1

# A partner whose limit for envelopes is below a batch answers 413: those envelopes go one by one,
# and no batch as large goes to it again, however many envelopes go alone in between.
cp "$work/net/JPN/serve.toml" "$work/jpn-serve.toml"
big_round() { # big_round ID...: released while Japan is down, delivered once it is back
  local id
  live_stop JPN
  for id in "$@"; do
    create KOR kor-analyst "$id" II "a partner with a small body limit" '["JPN"]' >/dev/null
    post KOR kor-analyst "/v1/objects/$id/release" '{"to":"JPN"}' >/dev/null
  done
  if [ ! -s "$work/big-limit" ]; then # room for two envelopes, not three
    db "$work/net/KOR/state.db" "SELECT 2 * max(length(e.envelope)) + 64 FROM outbox o \
      JOIN outbox_envelopes e USING (seq) WHERE o.object_id LIKE 'k-big-%'" >"$work/big-limit"
    printf '\n[limits]\nmax_envelope_bytes = %s\n' "$(cat "$work/big-limit")" >>"$work/net/JPN/serve.toml"
  fi
  read -r big_d0 big_r0 < <(jpn_counters)
  live_start JPN 2018-05-01T10:00:00+09:00 || exit 1
  eventually "big-$1-delivered" '"JPN":\{"pending":0,' get KOR kor-analyst /v1/outbox
  read -r big_d1 big_r1 < <(jpn_counters)
  check "big-$1-alone" '^3 3$' echo "$((big_d1 - big_d0)) $((big_r1 - big_r0))"
}
big_round k-big-1 k-big-2 k-big-3
big_round k-big-4 k-big-5 k-big-6
check big-413-once '^1$' grep -c 'did not take a batch of 3 envelopes (body-too-large' "$work/net/run/KOR.log"
cp "$work/jpn-serve.toml" "$work/net/JPN/serve.toml"
live_stop JPN; live_start JPN 2018-05-01T10:00:00+09:00 || exit 1

# A partner that does not know the calling node (its keys removed, or not imported yet) refuses
# the node, not its envelope: the envelope waits, and arrives once the partner knows Korea again.
kor_keys=$(db "$work/net/JPN/state.db" "SELECT 'X''' || hex(sign_public) || ''', X''' || \
  hex(wrap_public) || '''' FROM partners WHERE party = 'KOR'")
db_change unknown-forget "$work/net/JPN/state.db" "DELETE FROM partners WHERE party = 'KOR'"
check unknown-create '"id":"k-unknown"' create KOR kor-analyst k-unknown II "to a partner that forgot" '["JPN"]'
check unknown-release '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-unknown/release '{"to":"JPN"}'
eventually unknown-waits '"object":"k-unknown","state":"pending","attempts":[1-9][0-9]*,"last_error":"permission-denied: ' get KOR kor-analyst /v1/outbox
check unknown-refused-node 'not a known partner' cat "$work/net/run/JPN.log"
db_change unknown-known-again "$work/net/JPN/state.db" \
  "INSERT INTO partners (party, sign_public, wrap_public) VALUES ('KOR', $kor_keys)"
eventually unknown-delivered '"JPN":\{"pending":0,' get KOR kor-analyst /v1/outbox
check unknown-read '"reason":"released"' get JPN jpn-analyst /v1/objects/k-unknown
check unknown-once '^1$' entries JPN jpn-analyst '"op":"receive"[^}]*"decision":"allow","reason":"releasable"[^}]*"object":"k-unknown"'
# A partner that holds another key for Korea (its keys imported wrong, or Korea's home made anew)
# cannot verify the envelope: it waits for the right keys, rather than be given up (decision #97).
db_change wrongkey-swap "$work/net/JPN/state.db" \
  "UPDATE partners SET sign_public = (SELECT sign_public FROM partners WHERE party = 'USA') WHERE party = 'KOR'"
check wrongkey-create '"id":"k-wrongkey"' create KOR kor-analyst k-wrongkey II "to a partner with another key" '["JPN"]'
check wrongkey-release '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-wrongkey/release '{"to":"JPN"}'
eventually wrongkey-waits '"object":"k-wrongkey","state":"pending","attempts":[1-9][0-9]*,"last_error":"unavailable: the signature does not verify with `KOR`.s key held here' \
  get KOR kor-analyst /v1/outbox
check wrongkey-said 'cannot check the release `[^`]+` from KOR: the signature does not verify' cat "$work/net/run/JPN.log"
db_change wrongkey-right-again "$work/net/JPN/state.db" "DELETE FROM partners WHERE party = 'KOR'; \
  INSERT INTO partners (party, sign_public, wrap_public) VALUES ('KOR', $kor_keys)"
eventually wrongkey-delivered '"JPN":\{"pending":0,' get KOR kor-analyst /v1/outbox
check wrongkey-read '"reason":"released"' get JPN jpn-analyst /v1/objects/k-wrongkey
check wrongkey-once '^1$' entries JPN jpn-analyst '"op":"receive"[^}]*"decision":"allow","reason":"releasable"[^}]*"object":"k-wrongkey"'
# Damage to the keys Japan holds for Korea (a wrapping key of the wrong size) stops every envelope
# of Korea's alike: the release waits (Japan finds it as it looks its caller up, and answers 503
# as Node::Receive would). Japan's health, sound until an envelope meets the damage,
# then says it is not whole and stays so until Japan restarts, after the repair too (decision
# #190; the restart is the next section's).
check keys-healthy '^\{"status":"ok","party":"JPN"' get JPN jpn-analyst /v1/health
db_change keys-damaged "$work/net/JPN/state.db" "CREATE TABLE saved_keys AS SELECT * FROM partners \
  WHERE party = 'KOR'; PRAGMA ignore_check_constraints = ON; \
  UPDATE partners SET wrap_public = X'00' WHERE party = 'KOR'"
check keys-create '"id":"k-keys"' create KOR kor-analyst k-keys II "to a partner with damaged keys" '["JPN"]'
check keys-release '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-keys/release '{"to":"JPN"}'
eventually keys-waits '"object":"k-keys","state":"pending","attempts":[1-9][0-9]*,"last_error":"unavailable: ' \
  get KOR kor-analyst /v1/outbox
check keys-unhealthy '^\{"error":\{"code":"data-loss","message":"stored data failed its integrity check"' \
  get JPN jpn-analyst /v1/health
check keys-waits-said "reading the partner .KOR.: unavailable: this node's own stored state is damaged, not the envelope: corrupt wrapping key of .KOR. in the store" \
  cat "$work/net/run/JPN.log"
check keys-unhealthy-said "checking the node's stored state: data-loss: .*/JPN/state.db. was found damaged since the node opened it \(corrupt wrapping key of .KOR. in the store\)" \
  cat "$work/net/run/JPN.log"
db_change keys-mended "$work/net/JPN/state.db" "UPDATE partners SET wrap_public = \
  (SELECT wrap_public FROM saved_keys) WHERE party = 'KOR'; DROP TABLE saved_keys"
eventually keys-delivered '"JPN":\{"pending":0,' get KOR kor-analyst /v1/outbox
check keys-still-unhealthy '^\{"error":\{"code":"data-loss"' get JPN jpn-analyst /v1/health
check keys-unhealthy-said-once '^1$' grep -c "checking the node's stored state" "$work/net/run/JPN.log"
# Damage to Japan's own log (the hash of its last entry spoiled and its tiles moved away while it
# was stopped, so that an append meets one or the other whatever the log's size) is no fault of
# Korea's envelope, which fails at its entry: Japan answers 503 and says why in its process log,
# and the envelope waits, rather than be refused for good. It arrives once Japan's log is mended
# (decision #186).
live_stop JPN
db_change damaged-here "$work/net/JPN/state.db" "CREATE TABLE saved_leaf AS SELECT idx, leaf_hash \
  FROM log_entries WHERE idx = (SELECT max(idx) FROM log_entries); \
  CREATE TABLE saved_tiles AS SELECT * FROM log_tiles; DELETE FROM log_tiles; \
  PRAGMA ignore_check_constraints = ON; \
  UPDATE log_entries SET leaf_hash = X'00' WHERE idx = (SELECT idx FROM saved_leaf)"
live_start JPN 2018-05-01T10:00:00+09:00 || exit 1
check damaged-create '"id":"k-damaged"' create KOR kor-analyst k-damaged II "to a damaged partner" '["JPN"]'
check damaged-release '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-damaged/release '{"to":"JPN"}'
eventually damaged-waits '"object":"k-damaged","state":"pending","attempts":[1-9][0-9]*,"last_error":"unavailable: ' \
  get KOR kor-analyst /v1/outbox
check damaged-said "receiving the release .*own stored state is damaged, not the envelope: the log's [a-z ]+ are missing or damaged" \
  cat "$work/net/run/JPN.log"
# Japan's health says it is not whole, and its process log why (decision #190).
check damaged-unhealthy '^\{"error":\{"code":"data-loss","message":"stored data failed its integrity check"' \
  get JPN jpn-analyst /v1/health
check damaged-unhealthy-said "checking the node's stored state: data-loss: .*/JPN/state.db. was found damaged since the node opened it \((sqlite: a log leaf hash|the log's tiles)" \
  cat "$work/net/run/JPN.log"
live_stop JPN
db_change damaged-mended "$work/net/JPN/state.db" "UPDATE log_entries SET leaf_hash = \
  (SELECT leaf_hash FROM saved_leaf) WHERE idx = (SELECT idx FROM saved_leaf); DROP TABLE saved_leaf; \
  INSERT INTO log_tiles SELECT * FROM saved_tiles; DROP TABLE saved_tiles"
live_start JPN 2018-05-01T10:00:00+09:00 || exit 1
eventually damaged-delivered '"JPN":\{"pending":0,' get KOR kor-analyst /v1/outbox
check damaged-healthy '^\{"status":"ok","party":"JPN"' get JPN jpn-analyst /v1/health
check damaged-read '"reason":"released"' get JPN jpn-analyst /v1/objects/k-damaged
check damaged-once '^1$' entries JPN jpn-analyst '"op":"receive"[^}]*"decision":"allow","reason":"releasable"[^}]*"object":"k-damaged"'
# An envelope due an hour from now, as a clock that went back an hour after queuing it leaves it:
# Korea brings it forward to within its longest backoff, rather than hold Japan's queue an hour.
live_stop JPN
check clock-create '"id":"k-clock"' create KOR kor-analyst k-clock II "queued by a clock ahead" '["JPN"]'
check clock-release '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-clock/release '{"to":"JPN"}'
# A partner stopped cleanly has removed its port file: that is why it cannot be reached.
eventually stopped-said '"party":"JPN","reachable":false,"last_error":"its port file `[^`]*JPN.port` names no port' \
  get KOR kor-analyst /v1/federation/peers
eventually clock-tried '"object":"k-clock","state":"pending","attempts":[1-9]' get KOR kor-analyst /v1/outbox
db_change clock-ahead "$work/net/KOR/state.db" \
  "UPDATE outbox SET next_attempt_us = $(($(date +%s%N) / 1000 + 3600000000)) WHERE object_id = 'k-clock'"
live_start JPN 2018-05-01T10:00:00+09:00 || exit 1
eventually clock-delivered '"JPN":\{"pending":0,' get KOR kor-analyst /v1/outbox
check clock-said 'JPN: 1 envelope\(s\) were due later than the longest backoff from now \(the clock went back\)' \
  cat "$work/net/run/KOR.log"
check clock-once '^1$' entries JPN jpn-analyst '"op":"receive"[^}]*"object":"k-clock"'

# An object near the limit of an analyst's request (8 MiB) makes an envelope larger than that
# (its ciphertext in base64, inside a body in base64 again): Japan takes it from Korea's node,
# whose envelopes may be as large as the largest payload makes them.
head -c 5000000 /dev/urandom >"$work/large.bin"
printf '{"id":"k-large","level":"II","topics":["dprk-missile"],"rel_to":["JPN"],"payload_base64":"%s"}' \
  "$(base64 -w0 "$work/large.bin")" >"$work/large.json"
check large-create '"id":"k-large"' live_curl KOR kor-analyst -X POST -H 'Content-Type: application/json' \
  --data-binary "@$work/large.json" "$(live_url KOR /v1/objects)"
check large-release '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-large/release '{"to":"JPN"}'
eventually large-delivered '"JPN":\{"pending":0,' get KOR kor-analyst /v1/outbox
check large-envelope-over-8mib '^1$' db "$work/net/KOR/state.db" \
  "SELECT length(e.envelope) > 8388608 FROM outbox o JOIN outbox_envelopes e USING (seq) \
   WHERE o.object_id = 'k-large'"
get JPN jpn-analyst /v1/objects/k-large >"$work/large.out"
check large-payload '^same$' python3 -c 'import base64, json, sys
got = base64.b64decode(json.load(open(sys.argv[1]))["payload_base64"])
print("same" if got == open(sys.argv[2], "rb").read() else "different")' "$work/large.out" "$work/large.bin"
# A partner whose limit is below one envelope refuses it before it is uploaded (Korea announces a
# large body with `Expect: 100-continue`): the envelope is refused for good, not retried. (One
# attempt may first meet Japan's old port, if Korea has not looked since the restart.)
cp "$work/net/JPN/serve.toml" "$work/jpn-serve.toml"
printf '\n[limits]\nmax_envelope_bytes = 2000000\nmax_requests_per_caller = 16\n' >>"$work/net/JPN/serve.toml"
live_stop JPN; live_start JPN 2018-05-01T10:00:00+09:00 || exit 1
sed 's/"id":"k-large"/"id":"k-large-2"/' "$work/large.json" >"$work/large2.json"
check large2-create '"id":"k-large-2"' live_curl KOR kor-analyst -X POST -H 'Content-Type: application/json' \
  --data-binary "@$work/large2.json" "$(live_url KOR /v1/objects)"
check large2-release '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-large-2/release '{"to":"JPN"}'
eventually large2-refused '"object":"k-large-2","state":"failed","attempts":[12],"last_error":"refused: body-too-large: the body exceeds 2000000 bytes' get KOR kor-analyst /v1/outbox
cp "$work/jpn-serve.toml" "$work/net/JPN/serve.toml"
live_stop JPN; live_start JPN 2018-05-01T10:00:00+09:00 || exit 1

# Bad requests get 4xx while the node keeps serving.
check bad-json '"code":"invalid-argument"' post KOR kor-analyst /v1/objects '{"id":'
check wrong-type '"code":"invalid-argument"' post KOR kor-analyst /v1/objects/k-2018/release '{"to":7}'
check unknown-field '"code":"invalid-argument"' post KOR kor-analyst /v1/objects/k-2018/release '{"too":"JPN"}'
check user-on-federation '"code":"permission-denied"' post KOR kor-analyst /v1/federation/envelopes '{}'
check still-serving '"status":"ok"' get KOR kor-analyst /v1/health
# A partner's node certificate reaches the node routes only.
as_jpn_node() {
  curl -sS --max-time 30 --cacert "$work/net/pki/ca.pem" --cert "$work/net/pki/nodes/JPN.pem" \
    --key "$work/net/pki/nodes/JPN.key" "$(live_url KOR "$1")"
}
check node-checkpoint '^accord/KOR$' as_jpn_node /v1/log/checkpoint
check node-no-objects '"code":"permission-denied"' as_jpn_node /v1/objects
check node-no-entries '"code":"permission-denied"' as_jpn_node /v1/log/entries
# Envelopes posted by a partner's node, parsed once and then vetted: garbage is 400, an envelope
# another node signed is 403, and one delivered before gets the same receipt again.
node_post() { # node_post FROM TO FILE [CURL_ARGS...]: the answer's body
  local from=$1 to=$2 file=$3
  shift 3
  curl -sS --max-time 30 --cacert "$work/net/pki/ca.pem" \
    --cert "$work/net/pki/nodes/$from.pem" --key "$work/net/pki/nodes/$from.key" -X POST --data-binary "@$file" "$@" \
    "$(live_url "$to" "${NODE_PATH:-/v1/federation/envelopes}")"
}
node_status() { node_post "$@" -w ' HTTP %{http_code}'; } # ... and its status
printf 'not an envelope' >"$work/garbage"
check node-garbage '"code":"invalid-argument".* HTTP 400$' node_status JPN KOR "$work/garbage"
k2018=$(db "$work/net/KOR/state.db" \
  "SELECT id FROM outbox WHERE object_id = 'k-2018' AND to_party = 'JPN' LIMIT 1")
db "$work/net/KOR/state.db" \
  "SELECT writefile('$work/k2018.env', e.envelope) FROM outbox o JOIN outbox_envelopes e \
   USING (seq) WHERE o.id = '$k2018'" >/dev/null
check node-not-its-own 'not by `JPN`.* HTTP 403$' node_status JPN KOR "$work/k2018.env"
db "$work/net/JPN/state.db" "SELECT writefile('$work/k2018.receipt', bytes) FROM receipts \
  WHERE package_id = '$k2018' AND by_party = 'JPN'" >/dev/null
node_post KOR JPN "$work/k2018.env" >"$work/again"
if [ -s "$work/k2018.receipt" ] && cmp -s "$work/again" "$work/k2018.receipt"; then ok; else
  fail "node-replay: the receipt given again is not the first one"
  head -c 300 "$work/again"
fi
# A replay whose receipt cannot be read now (Japan's receipts table moved away for a moment) is
# a 5xx, which the sender retries, and not a refusal, which it would take as final.
db_change receipts-away "$work/net/JPN/state.db" "ALTER TABLE receipts RENAME TO receipts_away"
check node-replay-store-failing ' HTTP 5[0-9][0-9]$' node_status KOR JPN "$work/k2018.env"
db_change receipts-back "$work/net/JPN/state.db" "ALTER TABLE receipts_away RENAME TO receipts"
# A batch: one answer line per envelope, in order, each as the envelope alone would get it.
cat "$work/k2018.env" "$work/garbage" >"$work/batch"
NODE_PATH=/v1/federation/batches node_post KOR JPN "$work/batch" >"$work/batch.out"
if [ "$(wc -l <"$work/batch.out")" = 2 ] &&
  [ "$(head -n1 "$work/batch.out")" = "$(tr -d '\n' <"$work/k2018.receipt")" ] &&
  sed -n 2p "$work/batch.out" | grep -qE '^\{"status":400,"error":\{"code":"invalid-argument"'; then ok; else
  fail "node-batch: the answers are not the same receipt and a 400"
  head -c 600 "$work/batch.out"
fi
printf '\n' >"$work/blank"
batch_status() { NODE_PATH=/v1/federation/batches node_status "$@"; }
check node-batch-blank '"code":"invalid-argument".* HTTP 400$' batch_status KOR JPN "$work/blank"
# Japan's store fails under the first envelope of a batch (a trigger, added beside the running
# node): that line is a 5xx, the line after it is "not applied" (the order holds) and nothing of
# it is kept; once the store works again, Korea's node delivers both, each once.
db_change fault-trigger "$work/net/JPN/state.db" "CREATE TRIGGER test_fault BEFORE INSERT ON packages \
  WHEN NEW.object_id = 'k-fault-1' BEGIN SELECT RAISE(ABORT, 'injected by the test'); END"
: >"$work/fault-batch"
fault_start=$(date +%s%N)
for id in k-fault-1 k-fault-2; do
  create KOR kor-analyst "$id" II "store fault" '["JPN"]' >/dev/null
  post KOR kor-analyst "/v1/objects/$id/release" '{"to":"JPN"}' >/dev/null
  db "$work/net/KOR/state.db" "SELECT writefile('$work/$id.env', e.envelope) FROM outbox o \
    JOIN outbox_envelopes e USING (seq) WHERE o.object_id = '$id' AND o.to_party = 'JPN'" \
    >/dev/null
  cat "$work/$id.env" >>"$work/fault-batch"
done
NODE_PATH=/v1/federation/batches node_post KOR JPN "$work/fault-batch" >"$work/fault.out"
if [ "$(wc -l <"$work/fault.out")" = 2 ] &&
  head -n1 "$work/fault.out" | grep -qE '^\{"status":5[0-9][0-9],"error":' &&
  sed -n 2p "$work/fault.out" | grep -qE '^\{"status":503,"error":\{"code":"unavailable","message":"not applied: envelope 1 of'; then ok; else
  fail "node-batch-fault: the answers are not a 5xx and a 503 not applied"
  head -c 600 "$work/fault.out"
fi
check fault-none-kept '^0$' entries JPN jpn-analyst '"op":"receive"[^}]*"object":"k-fault-[12]"'
# Meanwhile Korea's node retries with a growing backoff (100, 200, 400, 800 ms, then every
# second in this setup): at most five attempts and one a second after that, where retrying
# every 100 ms makes ten a second.
sleep 2
attempts=$(db "$work/net/KOR/state.db" \
  "SELECT attempts FROM outbox WHERE object_id = 'k-fault-1' AND to_party = 'JPN'")
elapsed_ms=$((($(date +%s%N) - fault_start) / 1000000))
if [ "${attempts:-0}" -ge 2 ] && [ "$attempts" -le $((5 + elapsed_ms / 1000 + 1)) ]; then ok; else
  fail "fault-backoff: $attempts attempts in $elapsed_ms ms"
fi
db_change fault-trigger-dropped "$work/net/JPN/state.db" "DROP TRIGGER test_fault"
eventually fault-delivered '"JPN":\{"pending":0,' get KOR kor-analyst /v1/outbox
for i in 1 2; do
  check "fault-$i-once" '^1$' entries JPN jpn-analyst "\"op\":\"receive\"[^}]*\"object\":\"k-fault-$i\""
done

# A queued envelope whose bytes are missing from the store (decision #183), found before its first
# attempt: Korea gives it up as damaged without sending it, and the release queued after it goes.
live_stop JPN
for g in g1 g2; do
  check "create-$g" "\"id\":\"k-$g\"" create KOR kor-analyst "k-$g" II "bytes lost" '["JPN"]'
  check "release-$g" '"delivery":"queued"' post KOR kor-analyst "/v1/objects/k-$g/release" '{"to":"JPN"}'
done
live_stop KOR
db_change g1-bytes-lost "$work/net/KOR/state.db" "DELETE FROM outbox_envelopes WHERE seq IN \
  (SELECT seq FROM outbox WHERE object_id = 'k-g1'); UPDATE outbox SET attempts = 0, \
  next_attempt_us = 0, last_error = '' WHERE object_id IN ('k-g1', 'k-g2')"
live_start JPN 2018-05-01T10:00:00+09:00 || exit 1
live_start KOR 2018-05-01T10:00:00+09:00 || exit 1
eventually g-done '"JPN":\{"pending":0,' get KOR kor-analyst /v1/outbox
check g1-given-up '"object":"k-g1"[^}]*"last_error":"damaged in this node.s outbox: not an envelope' \
  get KOR kor-analyst /v1/outbox
check g1-said 'gave up the release `[^`]+` of `k-g1` to JPN: damaged in this node.s outbox' cat "$work/net/run/KOR.log"
check g2-read '"reason":"released"' get JPN jpn-analyst /v1/objects/k-g2

# Receipts and checkpoints cross-verified: every node witnessed both partners, with no fork.
for p in KOR JPN USA; do
  user=$(echo "$p" | tr 'A-Z' 'a-z')-analyst
  eventually "$p-witnesses" '"witnessed_size":[1-9].*"witnessed_size":[1-9]' get "$p" "$user" /v1/federation/peers
  # ... and proved every checkpoint its partners showed as evidence on the chain it cosigned
  # (decision #86): none left, and none a fork.
  proved='"fork":null,"witnessed_size":[1-9][0-9]*,"unproved_checkpoints":0,'
  eventually "$p-proved" "$proved.*$proved" get "$p" "$user" /v1/federation/peers
done
# A private branch of Japan's log (a copy of its home, which no partner witnesses) releases to
# Korea: a real envelope signed with Japan's key, which Korea takes (decision #86). While Japan's
# real log is smaller than the checkpoint the release showed, Korea reports that Japan showed
# more than it gives as its log; once the real log is as large, Korea proves the checkpoint
# against it, finds the fork, and keeps both checkpoints as evidence.
# Nothing on its way to Japan, whose real log must stay behind the branch until the test grows it.
to_jpn() { # to_jpn PARTY USER: "quiet" unless PARTY's node has envelopes pending for Japan
  local body
  body=$(live_curl "$1" "$2" --fail-with-body "$(live_url "$1" /v1/outbox)") || {
    echo "GET /v1/outbox failed: $body"
    return 1
  }
  grep -qE '"JPN":\{"pending":[1-9]' <<<"$body" && echo pending || echo quiet
}
for p in KOR USA; do
  eventually "branch-$p-quiet" '^quiet$' to_jpn "$p" "$(echo "$p" | tr 'A-Z' 'a-z')-analyst"
done
live_stop JPN
cp -a "$work/net/JPN" "$work/jpn-branch"
live_start JPN 2018-05-01T10:00:00+09:00 || exit 1
branch_at=2018-05-01T10:00:00+09:00
for i in 1 2 3; do
  printf 'kept from the partners' | "$accord" put --home "$work/jpn-branch" --at "$branch_at" \
    --id "j-branch-$i" --level HI --rel-to KOR >/dev/null
done
"$accord" release --home "$work/jpn-branch" --at "$branch_at" --id j-branch-1 --to KOR \
  --out "$work/j-branch.env" >/dev/null
check branch-taken '^\{"format":.*"kind":"receipt"' node_post JPN KOR "$work/j-branch.env"
eventually branch-ahead-found \
  '"party":"JPN"[^}]*"fork":"it showed a checkpoint of [0-9]+ entries, then gave one of [0-9]+ as its latest"' \
  get KOR kor-analyst /v1/federation/peers
for i in 1 2 3 4 5 6; do
  check "branch-real-$i" "\"id\":\"j-real-$i\"" create JPN jpn-analyst "j-real-$i" HI "real" '["KOR"]'
done
eventually branch-proved '"party":"JPN"[^}]*"unproved_checkpoints":0,' get KOR kor-analyst /v1/federation/peers
# A partner that is down, with no port file to find it by: Korea's node waits for its next look,
# not a millisecond at a time (it once did while the partner's retry time was past: 250 ms of CPU
# in 5 s, against 10 ms). Compared with its CPU while both partners are up and witnessed, so that
# a slower build (TSan) is held to its own pace.
kor_cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' \
  "/proc/$(cat "$work/net/run/KOR.pid")/stat"; }
cpu0=$(kor_cpu_ms)
sleep 3
cpu_up=$(($(kor_cpu_ms) - cpu0))
live_stop JPN
rm -f "$work/net/run/JPN.port"
sleep 2
cpu0=$(kor_cpu_ms)
sleep 3
cpu_down=$(($(kor_cpu_ms) - cpu0))
if [ "$cpu_down" -le $((2 * cpu_up + 20)) ]; then ok; else
  fail "partner-down-idle: Korea's node used $cpu_down ms of CPU in 3 s with Japan down, $cpu_up with it up"
fi
live_stop_all
for p in KOR JPN USA; do
  check_ok "$p-log-verify" '^log verified: [0-9]+ entries' "$accord" log verify --home "$work/net/$p"
done
for p in JPN USA; do
  check_ok "$p-no-evidence" '^no evidence: no partner' "$accord" log evidence --home "$work/net/$p"
done
check_ok KOR-branch-evidence 'accord/JPN' "$accord" log evidence --home "$work/net/KOR"
check branch-fork-logged '^1$' home_entries "$work/net/KOR" '"op":"witness"[^}]*"decision":"deny","reason":"fork"'

# 4. 2019-11-23, after the anniversary: the release is allowed under the real history (the notice
#    was suspended) and refused under the history without the suspension (then only the TISA
#    route through the US remains: hub-only).
start_all 2019-11-23T01:00:00+09:00
check suspended-allows '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-2018/release '{"to":"JPN"}'
live_stop_all
live_setup "$accord" "$work/nosusp" "$src/examples/gsomia-no-suspension" --simulate || exit 1
live_start KOR 2019-11-22T23:00:00+09:00 || exit 1
check ns-create '"id":"k-ns"' create KOR kor-analyst k-ns II "late" '["JPN"]'
check ns-before '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-ns/release '{"to":"JPN"}'
live_stop KOR
live_start KOR 2019-11-23T00:00:00+09:00 || exit 1
check ns-after-refused '"code":"hub-only"' post KOR kor-analyst /v1/objects/k-ns/release '{"to":"JPN"}'
live_stop_all

# 5. A fork. Japan's node goes back to a copy of its home taken before Korea cosigned its log, and
#    grows another history to the same size: Korea's node, restarted meanwhile, finds the other
#    root at that size, keeps the evidence, and reports the fork for Japan in
#    /v1/federation/peers whatever succeeds afterwards.
live_setup "$accord" "$work/fork" "$src/examples/gsomia" --simulate || exit 1
start_all 2018-05-01T10:00:00+09:00
check fork-create-1 '"id":"j-fork-1"' create JPN jpn-analyst j-fork-1 HI "one" '["KOR"]'
live_stop JPN
cp -a "$work/fork/JPN" "$work/fork/JPN.before"
live_start JPN 2018-05-01T10:00:00+09:00 || exit 1
check fork-create-2 '"id":"j-fork-2"' create JPN jpn-analyst j-fork-2 HI "two" '["KOR"]'
size=$(get JPN jpn-analyst /v1/log/checkpoint | sed -n 2p)
eventually fork-cosigned "\"party\":\"JPN\"[^}]*\"fork\":null,\"witnessed_size\":$size," \
  get KOR kor-analyst /v1/federation/peers
# 5a. First a rollback: Japan's node comes back from that copy, with fewer entries than Korea
#     cosigned, while Korea's runs. Korea reports it, and keeps no evidence: an earlier
#     checkpoint contradicts nothing.
live_stop JPN
rm -rf "$work/fork/JPN" && cp -a "$work/fork/JPN.before" "$work/fork/JPN"
live_start JPN 2018-05-01T10:00:00+09:00 || exit 1
eventually rollback-found "\"party\":\"JPN\"[^}]*\"fork\":\"rolled back: from $size to [0-9]+ entries\"" \
  get KOR kor-analyst /v1/federation/peers
live_stop KOR
live_stop JPN
check_ok rollback-no-evidence '^no evidence: no partner' "$accord" log evidence --home "$work/fork/KOR"
rm -rf "$work/fork/JPN" && mv "$work/fork/JPN.before" "$work/fork/JPN"
live_start JPN 2018-05-01T10:00:00+09:00 || exit 1
check fork-create-3 '"id":"j-fork-3"' create JPN jpn-analyst j-fork-3 HI "other" '["KOR"]'
check fork-same-size "^$size\$" eval "get JPN jpn-analyst /v1/log/checkpoint | sed -n 2p"
live_start KOR 2018-05-01T10:00:00+09:00 || exit 1
eventually fork-found '"party":"JPN"[^}]*"fork":"log `accord/JPN` is not consistent' \
  get KOR kor-analyst /v1/federation/peers
# Deliveries to Japan go on, and the fork stays reported once they succeed.
check fork-k-create '"id":"k-fork"' create KOR kor-analyst k-fork II "after the fork" '["JPN"]'
check fork-k-release '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-fork/release '{"to":"JPN"}'
eventually fork-k-delivered '"JPN":\{"pending":0,"delivered":[1-9][0-9]*,"failed":0\}' \
  get KOR kor-analyst /v1/outbox
check fork-k-read "\"payload_base64\":\"$(printf 'after the fork' | base64 -w0)\"" \
  get JPN jpn-analyst /v1/objects/k-fork
eventually fork-kept '"party":"JPN","reachable":true,"last_error":null,"fork":"log ' \
  get KOR kor-analyst /v1/federation/peers
# Japan's log grew with the delivery: its later checkpoints add no evidence and no log entry
# (two witnessing rounds of 500 ms at least pass before the nodes stop).
sleep 1.2
live_stop_all
check_ok fork-evidence 'accord/JPN' "$accord" log evidence --home "$work/fork/KOR"
check fork-logged-once '^1$' home_entries "$work/fork/KOR" '"op":"witness"[^}]*"decision":"deny","reason":"fork"'
check fork-witnessing-stopped 'witnessing JPN stops until this node restarts' cat "$work/fork/run/KOR.log"

# 6. Revocation. Korea's node reads its deployment's revocation lists ([tls] crl). Once they
#    revoke Japan's node certificate, Korea's node refuses Japan's node both ways: its federation
#    does not deliver to Japan's server (the release waits in the outbox) and its server refuses
#    Japan's node as a client.
live_setup "$accord" "$work/rev" "$src/examples/gsomia" --simulate || exit 1
"$accord" pki revoke --pki "$work/rev/pki" >/dev/null || fail "rev: pki revoke (no certificate)"
sed -i 's|^key = .*|&\ncrl = "../pki/crl.pem"|' "$work/rev/KOR/serve.toml"
for p in KOR JPN; do live_start "$p" 2018-05-01T10:00:00+09:00 || exit 1; done
check rev-create-1 '"id":"k-rev-1"' create KOR kor-analyst k-rev-1 II "before" '["JPN"]'
check rev-release-1 '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-rev-1/release '{"to":"JPN"}'
eventually rev-delivered-1 '"JPN":\{"pending":0,"delivered":[1-9][0-9]*,"failed":0\}' \
  get KOR kor-analyst /v1/outbox
check rev-read-1 "\"payload_base64\":\"$(printf 'before' | base64 -w0)\"" \
  get JPN jpn-analyst /v1/objects/k-rev-1
check_ok rev-revoke '1 certificate\(s\) revoked \(1 new\)' "$accord" pki revoke --pki "$work/rev/pki" "$work/rev/pki/nodes/JPN.pem"
eventually rev-lists-read 'JPN, USA: revocation lists: 1 from .*, revoking 1 certificate' \
  cat "$work/rev/run/KOR.log"
# Korea's server reads them on its own second (and then ends Japan's connections made before):
# Japan's node calls only after that.
eventually rev-server-read 'accord server: revocation lists: 1 from .*, revoking 1 certificate' \
  cat "$work/rev/run/KOR.log"
check rev-create-2 '"id":"k-rev-2"' create KOR kor-analyst k-rev-2 II "after" '["JPN"]'
check rev-release-2 '"delivery":"queued"' post KOR kor-analyst /v1/objects/k-rev-2/release '{"to":"JPN"}'
eventually rev-refused '"party":"JPN","reachable":false,"last_error":"[^"]*certificate revoked' \
  get KOR kor-analyst /v1/federation/peers
check rev-pending '"JPN":\{"pending":1,' get KOR kor-analyst /v1/outbox
check j-rev-create '"id":"j-rev"' create JPN jpn-analyst j-rev HI "to a node that refuses" '["KOR"]'
check j-rev-release '"delivery":"queued"' post JPN jpn-analyst /v1/objects/j-rev/release '{"to":"KOR"}'
eventually j-rev-refused '"party":"KOR","reachable":false,"last_error":"[^"]*certificate revoked' \
  get JPN jpn-analyst /v1/federation/peers
live_stop_all
check rev-not-received '^0$' home_entries "$work/rev/JPN" 'k-rev-2'
check rev-j-not-received '^0$' home_entries "$work/rev/KOR" 'j-rev'

# Every node stopped by SIGTERM exited 0 (live_stop), and no sanitizer reported in any node's log
# (a report in a node kept running is seen by nothing else).
live_stop_all
if [ "$LIVE_BAD_STOPS" = 0 ]; then ok; else fail "clean-stops: $LIVE_BAD_STOPS node(s) did not stop cleanly (above)"; fi
if reports=$(live_sanitizer_reports "$work"); then
  for f in $reports; do tail -n 60 "$f"; done
  fail "no-sanitizer-report: a sanitizer reported in $reports"
else
  ok
fi

echo "federation_test: $passed passed, $failures failed"
[ "$failures" = 0 ]
