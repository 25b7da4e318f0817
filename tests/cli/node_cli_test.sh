#!/usr/bin/env bash
# End-to-end tests of the node commands: the three-node demo (scripts/node-demo.sh) with its
# outputs checked, then the errors an operator meets (wrong passphrase, --at on a real home, a
# tampered package, a replay, a missing partner key) and a home whose KEK lives on a SoftHSM2
# token, and the making of a home on a disk that fails (calls made to fail by the preloaded
# FAULTS_LIBRARY, tests/faults/faults.cc). Usage: node_cli_test.sh ACCORD_BINARY SOURCE_DIR
# FAULTS_LIBRARY
set -uo pipefail
accord=$1
src=$2
faults=$3
# Without symbolic links: the fault rules below match the paths the kernel resolves.
work=$(realpath "$(mktemp -d)")
serve_pid=""
trap '[ -z "$serve_pid" ] || kill -KILL "$serve_pid" 2>/dev/null; rm -rf "$work"' EXIT
failures=0
# The servers are on loopback, and a user's ~/.curlrc or ~/.sqliterc would change what the tools
# print: no proxy, and a home of the test's own.
export no_proxy='*' NO_PROXY='*' HOME="$work/home"
mkdir "$HOME"
passed=0

ok() { passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
# expect NAME EXIT PATTERN COMMAND...: the exit code is EXIT and the output matches PATTERN.
expect() {
  local name=$1 code=$2 pattern=$3
  shift 3
  local got=0
  "$@" >"$work/out" 2>&1 || got=$?
  if [ "$got" != "$code" ]; then
    fail "$name: exit $got, expected $code"
    cat "$work/out"
  elif ! grep -qE -- "$pattern" "$work/out"; then
    fail "$name: output does not match /$pattern/"
    cat "$work/out"
  else
    ok
  fi
}

# faulty RULES COMMAND...: runs COMMAND with the file system calls that RULES name made to fail
# (tests/faults/faults.cc says how to write them).
# In the background, a function is a shell of its own whose pid `$!` names: `faulty_env RULES`
# sets `fenv` for `env "${fenv[@]}" COMMAND... &` instead, whose pid is the command's.
faulty_env() {
  fenv=(LD_PRELOAD="$faults" ACCORD_FAULTS="$1"
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
}
faulty() {
  faulty_env "$1"
  shift
  env "${fenv[@]}" "$@"
}

# 1. The demo, with what each step must show.
export ACCORD_DEMO_DIR=$work/demo
if bash "$src/scripts/node-demo.sh" "$accord" >"$work/demo.txt" 2>&1; then ok; else
  fail "node-demo.sh exited non-zero"
  cat "$work/demo.txt"
fi
for line in \
  'refused: accord: hub-only: release of `k-2015` to `JPN` refused' \
  'refused: accord: no-consent: forward of `k-2015` to `JPN` refused' \
  'forward of `k-2015` from USA under `usa-jpn-gsomia`, marked JPN GOKUHI \(originator KOR\)' \
  '^DPRK launch telemetry, 2015-03$' \
  'allow \(released\): marked JPN GOKUHI \(極秘\), originator KOR, under kor-jpn-gsomia' \
  '^KN-23 test site survey, 2018-05$' \
  'refused: accord: insufficient-clearance: `jpn-clerk` may not read `k-2018`' \
  'allow \(released\): marked JPN HI \(秘\), originator KOR, under kor-jpn-gsomia' \
  'released k-2019 to JPN at 2019-11-23T00:10:00Z' \
  'refused: accord: hub-only: release of `k-2019` to `JPN` refused' \
  'JPN reports a compromise of `k-2015`: courier bag opened in transit' \
  'refused: accord: destroyed: `jpn-analyst` may not read `k-2018`'; do
  if grep -qE -- "$line" "$work/demo.txt"; then ok; else fail "demo output lacks /$line/"; fi
done
unset ACCORD_DEMO_DIR
d=$work/demo
export ACCORD_PASSPHRASE="demo passphrase, not for real use"

# 2. Errors that leave the store unchanged.
expect wrong-passphrase 1 'wrong passphrase' env ACCORD_PASSPHRASE=nope "$accord" ls --home "$d/KOR"
expect no-passphrase 2 'a passphrase is needed' env -u ACCORD_PASSPHRASE "$accord" ls --home "$d/KOR"
expect not-a-home 1 'not an accord home' "$accord" ls --home "$work/nowhere"
# A package received twice is not applied again; the receipt given the first time is written
# again (its file lost, say), as a live node answers a delivery made twice.
cp "$d/k-2018.jpn.receipt" "$work/receipt-first"
rm "$d/k-2018.jpn.receipt"
expect replay 0 'already received before, nothing applied again: .*a replay' \
  "$accord" receive --home "$d/JPN" --at 2018-05-02T00:00:00+09:00 "$d/k-2018.jpn"
if cmp -s "$d/k-2018.jpn.receipt" "$work/receipt-first"; then ok; else
  fail "the receipt written again is not the one given the first time"
fi
expect misaddressed 1 'addressed to `JPN`, not to this node \(`USA`\)' \
  "$accord" receive --home "$d/USA" --at 2018-05-02T00:00:00+09:00 "$d/k-2018.jpn"
"$accord" ls --home "$d/JPN" >"$work/before" || fail "ls before the refusals"
grep -q k-2018 "$work/before" || fail "ls before the refusals shows no k-2018"
python3 - "$d/k-2019.jpn" "$work/tampered" <<'PY'
import base64, json, sys
env = json.load(open(sys.argv[1]))
body = json.loads(base64.b64decode(env["body"]))
body["marking"]["level"] = "HI"          # a lower marking than the agreement gives
env["body"] = base64.b64encode(json.dumps(body).encode()).decode()
open(sys.argv[2], "w").write(json.dumps(env))
PY
expect tampered 5 'signature does not verify' \
  "$accord" receive --home "$d/JPN" --at 2019-11-23T12:00:00+09:00 "$work/tampered"
# Damage to this home's own log (the hash of its last entry spoiled, its tiles gone) is no fault
# of the package: it is not refused (the exit code still says an integrity check failed), so a
# repaired home would take it, as node_test and federation_test show (decision #186).
cp -r "$d/JPN" "$work/JPN-damaged"
sqlite3 "$work/JPN-damaged/state.db" "DELETE FROM log_tiles; PRAGMA ignore_check_constraints = ON; \
  UPDATE log_entries SET leaf_hash = X'00' WHERE idx = (SELECT max(idx) FROM log_entries)"
expect damaged-here 5 "^accord: this node's own stored state is damaged, not the envelope: the log's" \
  "$accord" receive --home "$work/JPN-damaged" --at 2019-11-23T12:00:00+09:00 \
  --receipt-out "$work/damaged.receipt" "$d/k-2019.jpn"
# A partner's text reaches the operator's terminal as one line with nothing it would act on.
"$accord" report --home "$d/JPN" --at 2023-04-02T09:00:00+09:00 --id k-2015 --kind compromise \
  --text "$(printf 'bag opened\n\033[2K\033]0;owned\007')" --out "$work/escape.report" \
  >/dev/null || fail "report with control characters"
expect report-escaped 0 'bag opened\\x0a\\x1b\[2K\\x1b\]0;owned\\x07' \
  "$accord" receive --home "$d/KOR" --at 2023-04-02T10:00:00+09:00 "$work/escape.report"
if grep -q "$(printf '\033')" "$work/out"; then fail "an escape character reached the terminal"; else ok; fi
# A report's text is optional, as in the API's.
expect report-no-text 0 'reported a loss of k-2015' "$accord" report --home "$d/JPN" \
  --at 2023-04-02T09:30:00+09:00 --id k-2015 --kind loss --out "$work/loss.report"
# A receipt that could not be written where it goes by default is refused before the package is
# taken (the default path is a directory here); with --receipt-out it is taken.
cp "$d/k-2019.jpn" "$work/k-2019.jpn" && mkdir "$work/k-2019.jpn.receipt"
expect receive-receipt-nowhere 3 'nothing received' \
  "$accord" receive --home "$d/JPN" --at 2019-11-23T12:00:00+09:00 "$work/k-2019.jpn"
rmdir "$work/k-2019.jpn.receipt"
printf 'not a package\n' >"$work/garbage"
expect garbage 1 'package is not valid JSON' \
  "$accord" receive --home "$d/JPN" --at 2019-11-23T12:00:00+09:00 "$work/garbage"
# A package larger than any --max-payload allows is refused before it is read.
expect package-endless 3 '`/dev/zero` is larger than [0-9]+ bytes \(the largest package for --max-payload\)' \
  "$accord" receive --home "$d/JPN" --at 2019-11-23T12:00:00+09:00 /dev/zero
head -c 1100000 /dev/urandom >"$work/huge.jpn"
expect package-over-max 3 '`.*huge.jpn` is larger than 1050352 bytes' "$accord" receive \
  --home "$d/JPN" --at 2019-11-23T12:00:00+09:00 --max-payload 1000 "$work/huge.jpn"
"$accord" ls --home "$d/JPN" >"$work/after" || fail "ls after the refusals"
if cmp -s "$work/before" "$work/after"; then ok; else fail "refused packages changed the store"; fi
# With `-`, standard output holds the receipt alone (what the command says goes to stderr), and
# the originator takes it.
expect good-after-refusals 0 'release of `k-2019` from KOR under `kor-jpn-gsomia`' sh -c \
  "\"$accord\" receive --home \"$d/JPN\" --at 2019-11-23T12:00:00+09:00 - \
    <\"$d/k-2019.jpn\" >\"$work/k-2019.receipt\""
mkdir "$work/k-2019.receipt.receipt"  # a receipt gives no receipt: its path is not checked
expect receipt-from-stdout 0 'accepted at' "$accord" receive --home "$d/KOR" \
  --at 2019-11-23T13:00:00+09:00 "$work/k-2019.receipt"
expect not-originator 4 'not-originator' "$accord" reclassify --home "$d/JPN" \
  --at 2019-12-01T00:00:00+09:00 --id k-2019 --level III --out "$work/x"
printf x | "$accord" put --home "$d/KOR-no-suspension" --at 2019-11-01T00:00:00+09:00 --id k-us \
  --level II --rel-to USA >/dev/null
expect unknown-partner 1 'no public keys for `USA`' "$accord" release \
  --home "$d/KOR-no-suspension" --at 2019-11-01T00:00:00+09:00 --id k-us --to USA --out "$work/x"
expect oversize 3 '`-` is larger than 10 bytes \(--max-payload\)' sh -c "printf '12345678901' | \"$accord\" put \
  --home \"$d/KOR\" --at 2019-12-01T00:00:00+09:00 --max-payload 10 --id big --level III"
expect bad-level 1 'unknown level `IV` for party `KOR`' sh -c "printf x | \"$accord\" put \
  --home \"$d/KOR\" --at 2019-12-01T00:00:00+09:00 --id lvl --level IV"
expect subject-add 0 'subject kor-clerk \(KOR III\)' "$accord" subject add --home "$d/KOR" \
  --at 2019-12-01T00:00:00+09:00 --id kor-clerk --clearance III --need-to-know dprk-missile
expect subject-ls 0 'kor-clerk +KOR III' "$accord" subject ls --home "$d/KOR"
expect subject-add-temp 0 'subject kor-temp \(KOR II\)' "$accord" subject add --home "$d/KOR" \
  --at 2019-12-01T00:00:00+09:00 --id kor-temp --clearance II --need-to-know dprk-missile
expect subject-remove 0 'removed subject kor-temp of KOR' "$accord" subject remove \
  --home "$d/KOR" --at 2019-12-01T00:00:00+09:00 --id kor-temp
expect subject-removed-reads 1 'no subject `kor-temp`' "$accord" get --home "$d/KOR" \
  --at 2019-12-01T00:00:00+09:00 --id k-2019 --as kor-temp
expect subject-remove-again 1 'no subject `kor-temp`' "$accord" subject remove \
  --home "$d/KOR" --at 2019-12-01T00:00:00+09:00 --id kor-temp
# The listing runs (and lists the others), and the removed subject is not in it.
expect subject-ls-after-remove 0 'kor-analyst' "$accord" subject ls --home "$d/KOR"
if grep -q kor-temp "$work/out"; then fail "subject ls still lists a removed subject"; else ok; fi
expect subject-remove-logged 0 '"op":"subject-remove","party":"KOR","subject":"kor-temp"' \
  "$accord" log show --home "$d/KOR"

# 2a2. A backup of a home is a home: its objects read and its log verifies with the same
# passphrase; it is private, and never written into a directory that holds something.
expect node-backup 0 'the store \([0-9]+ bytes, schema [0-9]+, a log of [0-9]+ entries\), keystore, policy/, public.json$' \
  "$accord" node backup --home "$d/KOR" --out "$work/KOR-backup"
expect backup-get 0 'allow' "$accord" get --home "$work/KOR-backup" \
  --at 2019-12-01T00:00:00+09:00 --id k-2019 --as kor-analyst --out "$work/backup-payload"
"$accord" get --home "$d/KOR" --at 2019-12-01T00:00:00+09:00 --id k-2019 --as kor-analyst \
  --out "$work/home-payload" >/dev/null
if cmp -s "$work/backup-payload" "$work/home-payload"; then ok; else fail "the backup's payload differs"; fi
expect backup-log-verify 0 'log verified' "$accord" log verify --home "$work/KOR-backup"
if [ "$(stat -c %a "$work/KOR-backup")" = 700 ] && [ "$(stat -c %a "$work/KOR-backup/keystore")" = 600 ] &&
  [ "$(stat -c %a "$work/KOR-backup/state.db")" = 600 ]; then ok; else
  fail "backup modes: $(stat -c '%n %a' "$work/KOR-backup" "$work/KOR-backup/"*)"
fi
expect backup-again 1 'already exists: a backup needs a new directory' "$accord" node backup --home "$d/KOR" \
  --out "$work/KOR-backup"
# A directory named with a trailing slash is the same directory (its parent made, then it).
expect backup-slash 0 'backup of the home' "$accord" node backup --home "$d/KOR/" \
  --out "$work/KOR-backup-slash/"
if [ ! -e "$work/KOR-backup-slash/.unfinished" ] && [ -f "$work/KOR-backup-slash/state.db" ]; then ok; else
  fail "backup-slash: no whole copy at $work/KOR-backup-slash"
fi
expect backup-no-home 1 'is not an accord home' "$accord" node backup --home "$work/nowhere" \
  --out "$work/nowhere-backup"
expect own-clearance 4 'insufficient-clearance' "$accord" get --home "$d/KOR" \
  --at 2019-12-01T00:00:00+09:00 --id k-2019 --as kor-clerk
expect ls-json 0 '"id":"k-2015","originator":"KOR".*"topics":\["dprk-missile"\],"compartments":\[\],"rel_to":\["USA","JPN"\]' "$accord" ls --home "$d/USA" --json

# 2b. Files written for an operator: a payload is mode 0600 and never written through a file
# planted beside it; an output that cannot be written is refused before the operation commits;
# stdout that cannot be written is an error; a passphrase file written on Windows works.
# (The staged file's name is random, mkostemp's; a link planted at the path itself is replaced.)
ln -s "$work/victim" "$d/payload.txt"
expect get-out 0 'allow' "$accord" get --home "$d/KOR" --at 2019-12-01T00:00:00+09:00 \
  --id k-2019 --as kor-analyst --out "$d/payload.txt"
if [ "$(stat -c %a "$d/payload.txt")" = 600 ] && [ ! -L "$d/payload.txt" ] &&
  [ ! -e "$work/victim" ]; then ok; else
  fail "get --out: mode $(stat -c %a "$d/payload.txt"), or written through the planted link"
fi
entries_before=$("$accord" log show --home "$d/KOR" | wc -l) && [ "$entries_before" -gt 0 ] ||
  fail "log show before the refused outputs"
expect get-out-nowhere 3 'cannot write .*no-such-dir' "$accord" get --home "$d/KOR" \
  --at 2019-12-01T00:00:00+09:00 --id k-2019 --as kor-analyst --out "$work/no-such-dir/p"
expect release-out-nowhere 3 'cannot write .*no-such-dir' "$accord" release --home "$d/KOR" \
  --at 2019-12-01T00:00:00+09:00 --id k-2019 --to JPN --out "$work/no-such-dir/p"
# An output replaces what is at its path: never a directory, a device or FIFO, or a file of the
# home; all refused before anything is logged.
mkfifo "$work/fifo" && mkdir "$work/out-dir"
expect get-out-fifo 3 'not a regular file' "$accord" get --home "$d/KOR" \
  --at 2019-12-01T00:00:00+09:00 --id k-2019 --as kor-analyst --out "$work/fifo"
expect release-out-dir 3 'is a directory' "$accord" release --home "$d/KOR" \
  --at 2019-12-01T00:00:00+09:00 --id k-2019 --to JPN --out "$work/out-dir"
expect get-out-home 3 'inside the home' "$accord" get --home "$d/KOR" \
  --at 2019-12-01T00:00:00+09:00 --id k-2019 --as kor-analyst --out "$d/KOR/keystore"
if [ -p "$work/fifo" ]; then ok; else fail "the FIFO was replaced"; fi
entries_after=$("$accord" log show --home "$d/KOR" | wc -l) || fail "log show after them"
if [ "$entries_before" = "$entries_after" ]; then ok; else
  fail "a refused output still logged an operation ($entries_before -> $entries_after lines)"
fi
expect stdout-full 3 'cannot write the output' sh -c \
  "\"$accord\" keys export-public --home \"$d/KOR\" >/dev/full"
# Standard output closed: held by /dev/null, opened for reading (decision #203), so that the
# payload is not written into a file opened later, and the failure is said.
expect get-stdout-closed 3 'cannot write the output: Bad file descriptor' sh -c \
  "\"$accord\" get --home \"$d/KOR\" --at 2019-12-01T00:00:00+09:00 --id k-2019 \
  --as kor-analyst --out - >&-"
printf '%s\r\n' "$ACCORD_PASSPHRASE" >"$work/crlf-passphrase"
expect crlf-passphrase 0 'k-2019' env -u ACCORD_PASSPHRASE "$accord" ls --home "$d/KOR" \
  --passphrase-file "$work/crlf-passphrase"
# A payload read from a file (past the reader's first 64 KiB) comes back byte for byte; a
# missing one is an I/O error that says why.
head -c 200000 /dev/urandom >"$work/big-in"
expect put-file 0 'stored k-file' "$accord" put --home "$d/KOR" --at 2019-12-01T00:00:00+09:00 \
  --id k-file --level III --topics dprk-missile --in "$work/big-in"
"$accord" get --home "$d/KOR" --at 2019-12-01T00:00:00+09:00 --id k-file --as kor-analyst \
  --out "$d/big-out" >/dev/null 2>&1
if cmp -s "$work/big-in" "$d/big-out"; then ok; else fail "put --in FILE, get --out: bytes differ"; fi
expect put-missing 3 'cannot read `.*no-such-file`: No such file' "$accord" put --home "$d/KOR" \
  --at 2019-12-01T00:00:00+09:00 --id k-none --level III --in "$work/no-such-file"
# A payload larger than --max-payload is refused before it is read (a file), or once more than
# that has arrived (a device, or a pipe as in `oversize` above): it is never read whole.
expect put-over-max 3 '`.*big-in` is larger than 100000 bytes \(--max-payload\)' "$accord" put \
  --home "$d/KOR" --at 2019-12-01T00:00:00+09:00 --id k-none --level III --in "$work/big-in" \
  --max-payload 100000
expect put-endless 3 '`/dev/zero` is larger than 67108864 bytes \(--max-payload\)' "$accord" put \
  --home "$d/KOR" --at 2019-12-01T00:00:00+09:00 --id k-none --level III --in /dev/zero
# A bound that bounds: at most 1 GiB (near 2^64 there was none).
expect put-max-payload-range 2 '--max-payload: Value 1073741825 not in range' "$accord" put \
  --home "$d/KOR" --at 2019-12-01T00:00:00+09:00 --id k-none --level III --in /dev/zero \
  --max-payload 1073741825
expect put-max-payload-zero 2 '--max-payload: Value 0 not in range' "$accord" put \
  --home "$d/KOR" --at 2019-12-01T00:00:00+09:00 --id k-none --level III --in /dev/zero \
  --max-payload 0
expect passphrase-endless 3 '`/dev/zero` is larger than 16777216 bytes' env -u ACCORD_PASSPHRASE \
  "$accord" ls --home "$d/KOR" --passphrase-file /dev/zero

# 2c. The outbox: what a home without a network queued for its partners, and an envelope written
# out again, byte for byte, when its file is lost; the receipt carried back closes its delivery.
expect outbox-ls 0 'release of k-2018 to JPN  failed .*last error: the object was destroyed' \
  "$accord" outbox ls --home "$d/KOR"
if grep -qE '^JPN  pending [0-9]+  delivered [0-9]+  failed 1$' "$work/out"; then ok; else
  fail "outbox ls counts no failed envelope for JPN"
  cat "$work/out"
fi
destroy_id=$(awk '$2 == "destroy" && $4 == "k-2018" && $6 == "JPN" && $7 == "pending" {print $1}' "$work/out")
failed_id=$(awk '$2 == "release" && $4 == "k-2018" && $7 == "failed" {print $1}' "$work/out")
[ -n "$destroy_id" ] || fail "outbox ls lists no pending destroy of k-2018 to JPN"
[ -n "$failed_id" ] || fail "outbox ls lists no given-up release of k-2018"
expect outbox-export 0 "exported the destroy of k-2018 for JPN \\($destroy_id\\)" "$accord" outbox \
  export --home "$d/KOR" --id "$destroy_id" --to JPN --out "$work/destroy.again"
if [ -n "$destroy_id" ] && cmp -s "$work/destroy.again" "$d/k-2018.destroy"; then ok; else
  fail "outbox export did not write the notice destroy --everywhere wrote (id '$destroy_id')"
fi
"$accord" outbox export --home "$d/KOR" --id "$destroy_id" --to JPN --out - >"$work/destroy.stdout" \
  2>/dev/null || fail "outbox export --out -"
if cmp -s "$work/destroy.stdout" "$d/k-2018.destroy"; then ok; else
  fail "outbox export --out - wrote more or less than the notice"
fi
expect outbox-export-given-up 1 'given up at .*the object was destroyed before delivery.*not exported' \
  "$accord" outbox export --home "$d/KOR" --id "$failed_id" --to JPN --out "$work/nothing"
# A release whose object was destroyed here keeps no envelope, delivered (its receipt taken
# after it was given up, here) or not.
expect outbox-late-receipt 0 'JPN acknowledges the release of `k-2018`' "$accord" receive \
  --home "$d/KOR" --at 2023-04-01T10:00:00+09:00 "$d/k-2018.jpn.receipt"
expect outbox-export-destroyed 1 'kept no more: this node destroyed its copy of `k-2018`' \
  "$accord" outbox export --home "$d/KOR" --id "$failed_id" --to JPN --out "$work/nothing"
# An envelope that is not the one its row names (another signed envelope of this node's, put
# there by a damaged store) is refused: it would reach the wrong party under this one's name.
"$accord" node backup --home "$d/KOR" --out "$work/kor-swapped" >/dev/null || fail "backup to swap"
python3 - "$work/kor-swapped/state.db" "$destroy_id" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
other = db.execute("SELECT e.envelope FROM outbox o JOIN outbox_envelopes e USING (seq) "
                   "WHERE o.kind = 'consent' LIMIT 1").fetchone()[0]
db.execute("UPDATE outbox_envelopes SET envelope = ? WHERE seq = "
           "(SELECT seq FROM outbox WHERE id = ? AND to_party = 'JPN')", (other, sys.argv[2]))
db.commit()
PY
expect outbox-export-swapped 5 'is not that one: the store is damaged; not exported' "$accord" \
  outbox export --home "$work/kor-swapped" --id "$destroy_id" --to JPN --out "$work/nothing"
expect outbox-export-unknown 1 'no envelope `nope` for `JPN` in the outbox of KOR' \
  "$accord" outbox export --home "$d/KOR" --id nope --to JPN --out "$work/nothing"
expect outbox-export-in-home 3 'inside the home' \
  "$accord" outbox export --home "$d/KOR" --id "$destroy_id" --to JPN --out "$d/KOR/store.db"
if [ -e "$work/nothing" ]; then fail "a refused export wrote its file"; else ok; fi
expect outbox-receive-again 0 'already received before' "$accord" receive --home "$d/JPN" \
  --at 2023-04-01T10:00:00+09:00 --receipt-out "$work/destroy.receipt" "$work/destroy.again"
expect outbox-receipt 0 'JPN acknowledges' "$accord" receive --home "$d/KOR" \
  --at 2023-04-01T10:00:00+09:00 "$work/destroy.receipt"
expect outbox-delivered 0 'delivered already at .*the partner answers it with the receipt it gave' \
  "$accord" outbox export --home "$d/KOR" --id "$destroy_id" --to JPN --out "$work/destroy.third"
"$accord" outbox ls --home "$d/KOR" >"$work/outbox.after" 2>&1 || fail "outbox ls after the receipt"
if grep -q "^$destroy_id " "$work/outbox.after"; then fail "a delivered envelope is listed"; else ok; fi
expect outbox-ls-limit 0 '^… and [0-9]+ more not delivered \(--limit\)$' \
  "$accord" outbox ls --home "$d/KOR" --limit 0

# 3. A home on the system clock refuses --at.
"$accord" node init --home "$work/real" --party JPN --policy "$src/examples/gsomia" --kdf-cost 10 >/dev/null
expect real-clock 1 'runs on the system clock' "$accord" ls --home "$work/real" \
  --at 2019-01-01T00:00:00Z
expect init-twice 1 'is not empty' "$accord" node init --home "$work/real" --party JPN \
  --policy "$src/examples/gsomia"
expect init-unknown-party 1 'party `FRA` is not in the policy' "$accord" node init \
  --home "$work/fra" --party FRA --policy "$src/examples/gsomia"
if [ ! -e "$work/fra" ]; then ok; else fail "a failed init left $work/fra behind"; fi
# A passphrase file that cannot be read is a file error (3), as for every other command; no
# passphrase at all is a usage error (2).
expect init-unreadable-passphrase 3 'no-such-file' "$accord" node init --home "$work/kor3" \
  --party KOR --policy "$src/examples/gsomia" --passphrase-file "$work/no-such-file"
expect init-no-passphrase 2 'a passphrase is needed' env -u ACCORD_PASSPHRASE "$accord" node init \
  --home "$work/kor3" --party KOR --policy "$src/examples/gsomia"
# A new home's passphrase has 12 characters or more, counted as characters, not bytes (four
# Hangul syllables are 12 bytes); an existing home opens with the passphrase it has.
expect init-short-passphrase 2 'at least 12 characters, and this one has 11' env \
  ACCORD_PASSPHRASE='short pass!' "$accord" node init --home "$work/kor3" --party KOR \
  --policy "$src/examples/gsomia"
expect init-short-hangul 2 'this one has 4:' env ACCORD_PASSPHRASE='비밀번호' "$accord" node init \
  --home "$work/kor3" --party KOR --policy "$src/examples/gsomia"
if [ ! -e "$work/kor3" ]; then ok; else fail "a refused passphrase left $work/kor3 behind"; fi
# A `node init` killed part way (here during the key store's scrypt, which cost 18 makes last
# about a second) leaves a directory that every command, `node backup` and `node init` again
# refuse as a home, saying what to do; once it is removed, the home is made.
gsomia=(--party JPN --policy "$src/examples/gsomia")
stopped=""
for _ in 1 2 3; do
  rm -rf "$work/killed"
  "$accord" node init --home "$work/killed" "${gsomia[@]}" --kdf-cost 18 >/dev/null 2>&1 &
  init_pid=$!
  for _ in $(seq 1 1000); do [ -d "$work/killed/policy" ] && break; sleep 0.01; done
  kill -KILL "$init_pid" 2>/dev/null
  wait "$init_pid" 2>/dev/null
  if [ -e "$work/killed/.unfinished" ]; then stopped=1 && break; fi
done
if [ -n "$stopped" ]; then ok; else fail "node init was not stopped part way in 3 tries"; fi
expect init-killed-ls 1 'holds no usable home: its making did not finish .*stopped part way\): remove the directory' \
  "$accord" ls --home "$work/killed"
expect init-killed-again 1 'its making did not finish' "$accord" node init --home "$work/killed" \
  "${gsomia[@]}" --kdf-cost 10
expect init-killed-backup 1 'its making did not finish' "$accord" node backup \
  --home "$work/killed" --out "$work/killed-copy"
if [ ! -e "$work/killed-copy" ]; then ok; else fail "a refused backup made $work/killed-copy"; fi
rm -rf "$work/killed"
expect init-after-kill 0 'created the home of JPN' "$accord" node init --home "$work/killed/" \
  "${gsomia[@]}" --kdf-cost 10
if "$accord" ls --home "$work/killed" >"$work/out" 2>&1; then ok; else
  fail "init-after-kill-ls: the home made again does not open"
  cat "$work/out"
fi

# 3b. A home's making, and files written, on a disk that fails (`faulty`, above).
# The library is loaded: a rule it cannot read stops the command as it starts.
expect faults-loaded 97 'unknown call `fsink`' faulty 'fsink:x:1' "$accord" node init \
  --home "$work/f-none" "${gsomia[@]}" --kdf-cost 10
# A failure before the mark goes removes all that was made, the directory with it.
expect faults-removed 1 'cannot write `.*/f-removed/public.json`: Input/output error$' \
  faulty "fsync:$work/f-removed/public.json:1" "$accord" node init --home "$work/f-removed" \
  "${gsomia[@]}" --kdf-cost 10
if [ ! -e "$work/f-removed" ]; then ok; else fail "faults-removed: $work/f-removed is left"; fi
# A mark made but not written whole is this making's: it goes with the directory.
expect faults-mark-unwritten 1 'cannot write `.*/f-mark/.unfinished`: Input/output error$' \
  faulty "fsync:$work/f-mark/.unfinished:1" "$accord" node init --home "$work/f-mark" \
  "${gsomia[@]}" --kdf-cost 10
if [ ! -e "$work/f-mark" ]; then ok; else fail "faults-mark-unwritten: $work/f-mark is left"; fi
# A removal cut short (the policy's copy cannot be removed) leaves the directory marked, and
# says so: it is then refused as a home, and not made again over what it holds.
expect faults-cut-short 1 'public.json`: Input/output error; what was made could not all be removed: `.*/f-cut` is left, marked as unfinished' \
  faulty "fsync:$work/f-cut/public.json:1;rmdir:$work/f-cut/policy:*" "$accord" node init \
  --home "$work/f-cut" "${gsomia[@]}" --kdf-cost 10
if [ -e "$work/f-cut/.unfinished" ] && [ ! -e "$work/f-cut/state.db" ]; then ok; else
  fail "faults-cut-short: no mark, or a store, in $work/f-cut"
fi
expect faults-cut-short-again 1 'its making did not finish' "$accord" node init \
  --home "$work/f-cut" "${gsomia[@]}" --kdf-cost 10
# The directory's sync fails once the mark is gone: the home is whole, kept, and opens.
expect faults-after-mark 1 '`.*/f-kept` is made and whole, but cannot make `.*/f-kept` durable' \
  faulty "fsync:$work/f-kept:*@unlink:$work/f-kept/.unfinished" "$accord" node init \
  --home "$work/f-kept" "${gsomia[@]}" --kdf-cost 10
if "$accord" ls --home "$work/f-kept" >"$work/out" 2>&1; then ok; else
  fail "faults-after-mark-ls: the kept home does not open"
  cat "$work/out"
fi
# Another init made the mark first (its O_EXCL open lost the race): nothing of it is touched.
expect faults-race 1 '`.*/f-race` is being made by another process .*nothing it holds was touched' \
  faulty "open:$work/f-race/.unfinished:1:EEXIST" "$accord" node init --home "$work/f-race" \
  "${gsomia[@]}" --kdf-cost 10
if [ "$(ls -A "$work/f-race")" = .unfinished ]; then ok; else
  fail "faults-race: $work/f-race holds more than the other's mark: $(ls -A "$work/f-race")"
fi
# A store made on a full disk fails at once: a full disk is `unavailable`, as a locked store is
# (decision #175), but it is not retried until the busy timeout as a lock is.
started=$(date +%s)
expect faults-store-full 1 'database or disk is full' faulty \
  "write:$work/f-full/state.db:*:ENOSPC" "$accord" node init --home "$work/f-full" \
  "${gsomia[@]}" --kdf-cost 10
if [ $(($(date +%s) - started)) -lt 8 ]; then ok; else
  fail "faults-store-full: took $(($(date +%s) - started)) s (a full disk retried)"
fi
# A payload whose staged copy cannot be made durable is not put in place, and its staged copy
# is removed; should that removal fail too, the error names the copy (it holds the payload).
expect faults-get-out 3 'cannot write `.*/g.bin`: Input/output error$' faulty \
  "fsync:$work/g.bin.tmp-:1" "$accord" get --home "$d/KOR" --at 2019-12-01T00:00:00+09:00 \
  --id k-2019 --as kor-analyst --out "$work/g.bin"
if [ -z "$(find "$work" -maxdepth 1 -name 'g.bin*')" ]; then ok; else
  fail "faults-get-out: left: $(find "$work" -maxdepth 1 -name 'g.bin*')"
fi
expect faults-get-out-left 3 'its staged copy `.*/g.bin.tmp-[A-Za-z0-9]{6}` could not be removed: Input/output error \(remove it\)' \
  faulty "fsync:$work/g.bin.tmp-:1;unlink:$work/g.bin.tmp-:*" "$accord" get --home "$d/KOR" \
  --at 2019-12-01T00:00:00+09:00 --id k-2019 --as kor-analyst --out "$work/g.bin"
if [ "$(find "$work" -maxdepth 1 -name 'g.bin.tmp-*' | wc -l)" = 1 ] && [ ! -e "$work/g.bin" ]; then
  ok
else
  fail "faults-get-out-left: not one staged copy alone: $(find "$work" -maxdepth 1 -name 'g.bin*')"
fi
rm -f "$work"/g.bin.tmp-*
# A release whose package cannot be written is committed all the same; the error says how to
# write the package again, and the outbox has it.
expect faults-put 0 'stored k-faults' sh -c "printf 'FAULTS' | \"$accord\" put --home \"$d/KOR\" \
  --at 2019-12-01T00:00:00+09:00 --id k-faults --level III --topics dprk-missile --rel-to JPN"
expect faults-release-out 3 'released k-faults to JPN at .* all the same: it is committed and logged.*`accord outbox export` writes it again' \
  faulty "fsync:$work/r.pkg.tmp-:1" "$accord" release --home "$d/KOR" \
  --at 2019-12-01T00:00:00+09:00 --id k-faults --to JPN --out "$work/r.pkg"
expect faults-release-queued 0 'release of k-faults to JPN' "$accord" outbox ls --home "$d/KOR"
# The package written again from the outbox; Japan takes it, but its receipt cannot be written:
# receiving the package again writes the receipt given then.
package_id=$("$accord" outbox ls --home "$d/KOR" | awk '/release of k-faults to JPN/ { print $1; exit }')
if "$accord" outbox export --home "$d/KOR" --id "$package_id" --to JPN --out "$work/r.pkg" \
  >"$work/out" 2>&1; then ok; else
  fail "faults-release-export: outbox export of '$package_id'"
  cat "$work/out"
fi
# (On a copy of Japan's home: the checkpoints Korea shows Japan are counted in section 5.)
cp -r "$d/JPN" "$work/JPN-faults"
expect faults-receipt-out 3 'accepted all the same; receiving `.*/r.pkg` again writes its receipt' \
  faulty "fsync:$work/r.pkg.receipt.tmp-:1" "$accord" receive --home "$work/JPN-faults" \
  --at 2019-12-01T00:00:00+09:00 "$work/r.pkg"
expect faults-receipt-again 0 'the receipt given then → .*/r.pkg.receipt$' "$accord" receive \
  --home "$work/JPN-faults" --at 2019-12-01T00:00:00+09:00 "$work/r.pkg"
if [ -s "$work/r.pkg.receipt" ]; then ok; else fail "faults-receipt-again: no receipt written"; fi
# The store on a failing disk, on copies of the homes: a commit whose -wal file cannot be
# written (a full disk) is rolled back whole; one whose sync fails is not committed, and a
# command, whose earlier commits all synced, closes the store without it. The error names the
# store, and the same command runs again once the disk is back. Nothing is stored, released or
# received twice.
cp -r "$d/KOR" "$work/KOR-store"
cp -r "$d/JPN" "$work/JPN-store"
expect store-put-full 1 "commit: database or disk is full: the transaction is rolled back" \
  faulty "write:$work/KOR-store/state.db-wal:*:ENOSPC" sh -c "printf 'STORE' | \"$accord\" put \
  --home \"$work/KOR-store\" --at 2019-12-01T00:00:00+09:00 --id k-store --level III \
  --topics dprk-missile --rel-to JPN"
if "$accord" ls --home "$work/KOR-store" >"$work/out" 2>&1 && ! grep -q 'k-store' "$work/out"; then
  ok
else
  fail "store-put-full: k-store is listed, or the store does not open"
  cat "$work/out"
fi
expect store-put-again 0 'stored k-store' sh -c "printf 'STORE' | \"$accord\" put --home \
  \"$work/KOR-store\" --at 2019-12-01T00:00:00+09:00 --id k-store --level III \
  --topics dprk-missile --rel-to JPN"
# (The first sync of a new -wal file is of its header, before any frame: the second is the
# commit's, after its frames are written.)
not_committed='`.*/state.db`: sqlite: commit: disk I/O error: the transaction is not committed now, but the next open of the store may find it committed$'
expect store-release-unsynced 1 "$not_committed" faulty "fdatasync:$work/KOR-store/state.db-wal:2" \
  "$accord" release --home "$work/KOR-store" --at 2019-12-01T00:00:00+09:00 --id k-store --to JPN \
  --out "$work/s.pkg"
if [ ! -e "$work/s.pkg" ] && "$accord" outbox ls --home "$work/KOR-store" >"$work/out" 2>&1 &&
  ! grep -q 'of k-store' "$work/out"; then ok; else
  fail "store-release-unsynced: a package was written or queued, or the outbox cannot be read"
  cat "$work/out"
fi
expect store-release-again 0 'released k-store to JPN' "$accord" release --home "$work/KOR-store" \
  --at 2019-12-01T00:00:00+09:00 --id k-store --to JPN --out "$work/s.pkg"
if "$accord" outbox ls --home "$work/KOR-store" >"$work/out" 2>&1 &&
  [ "$(grep -c 'release of k-store to JPN' "$work/out")" = 1 ]; then ok; else
  fail "store-release-again: not one release of k-store queued"
  cat "$work/out"
fi
expect store-receive-unsynced 1 "$not_committed" faulty "fdatasync:$work/JPN-store/state.db-wal:2" \
  "$accord" receive --home "$work/JPN-store" --at 2019-12-01T00:00:00+09:00 "$work/s.pkg"
if [ ! -e "$work/s.pkg.receipt" ]; then ok; else fail "store-receive-unsynced: a receipt was written"; fi
expect store-receive-again 0 'accepted at .*: release of `k-store` from KOR' "$accord" receive \
  --home "$work/JPN-store" --at 2019-12-01T00:00:00+09:00 "$work/s.pkg"
expect store-receive-replay 0 'already received before, nothing applied again' "$accord" receive \
  --home "$work/JPN-store" --at 2019-12-01T00:00:00+09:00 "$work/s.pkg"
if "$accord" ls --home "$work/JPN-store" >"$work/out" 2>&1 &&
  [ "$(grep -c '^k-store ' "$work/out")" = 1 ]; then ok; else
  fail "store-receive-again: Japan does not hold one copy of k-store"
  cat "$work/out"
fi
# The commit's frames were written, though: when the -wal file outlives the command (here its
# removal fails; a crash would leave it too), the next open recovers them, and the release the
# command called not committed is there, as the message warns.
cp -r "$d/KOR" "$work/KOR-store2"
expect store-put-2 0 'stored k-store' sh -c "printf 'STORE' | \"$accord\" put --home \
  \"$work/KOR-store2\" --at 2019-12-01T00:00:00+09:00 --id k-store --level III \
  --topics dprk-missile --rel-to JPN"
expect store-release-unsynced-wal-kept 1 "$not_committed" faulty \
  "fdatasync:$work/KOR-store2/state.db-wal:2;unlink:$work/KOR-store2/state.db-wal:*" "$accord" \
  release --home "$work/KOR-store2" --at 2019-12-01T00:00:00+09:00 --id k-store --to JPN \
  --out "$work/s2.pkg"
expect store-release-recovered 0 'release of k-store to JPN' "$accord" outbox ls \
  --home "$work/KOR-store2"
for home in KOR-store JPN-store; do
  expect "store-log-$home" 0 'log verified' "$accord" log verify --home "$work/$home"
done
expect store-unopened 1 '`.*/KOR-store/state.db`: sqlite: read schema: unable to open database file' \
  faulty "open:$work/KOR-store/state.db-wal:1" "$accord" ls --home "$work/KOR-store"
# A payload whose staged copy meets a full disk is not put in place either.
expect faults-get-full 3 'cannot write `.*/g.bin`: No space left on device$' faulty \
  "write:$work/g.bin.tmp-:1:ENOSPC" "$accord" get --home "$work/KOR-store" \
  --at 2019-12-01T00:00:00+09:00 --id k-store --as kor-analyst --out "$work/g.bin"
if [ -z "$(find "$work" -maxdepth 1 -name 'g.bin*')" ]; then ok; else
  fail "faults-get-full: left: $(find "$work" -maxdepth 1 -name 'g.bin*')"
fi
# A backup whose copy cannot be made durable goes whole; one whose sync fails after its mark
# went is kept, and opens.
expect faults-backup-removed 1 'cannot make `.*/f-bk/state.db` durable' \
  faulty "fsync:$work/f-bk/state.db:1" "$accord" node backup --home "$d/KOR" --out "$work/f-bk"
if [ ! -e "$work/f-bk" ]; then ok; else fail "faults-backup-removed: $work/f-bk is left"; fi
expect faults-backup-copy 1 'cannot back up `.*/KOR/state.db` to `.*/f-bk3/state.db`: disk I/O error' \
  faulty "fdatasync:$work/f-bk3/state.db:1" "$accord" node backup --home "$d/KOR" --out "$work/f-bk3"
if [ ! -e "$work/f-bk3" ]; then ok; else fail "faults-backup-copy: $work/f-bk3 is left"; fi
expect faults-backup-kept 1 '`.*/f-bk2` is made and whole, but' \
  faulty "fsync:$work/f-bk2:*@unlink:$work/f-bk2/.unfinished" "$accord" node backup \
  --home "$d/KOR" --out "$work/f-bk2"
if "$accord" ls --home "$work/f-bk2" >"$work/out" 2>&1; then ok; else
  fail "faults-backup-kept: the kept backup does not open"
  cat "$work/out"
fi

# 4. The KEK on a PKCS#11 token (SoftHSM2): the home holds no key store file.
mkdir -p "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$work/tokens" >"$work/softhsm2.conf"
export SOFTHSM2_CONF=$work/softhsm2.conf
if softhsm2-util --init-token --free --label accord-cli --so-pin 1234 --pin 5678 >/dev/null; then
  ok
else
  fail "softhsm2-util could not create a token"
fi
export ACCORD_PKCS11_PIN=5678
expect hsm-init 0 'pkcs11 key store' "$accord" node init --home "$work/hsm" --party KOR \
  --policy "$src/examples/gsomia" --simulate --key-store pkcs11 --pkcs11-token accord-cli
if [ ! -e "$work/hsm/keystore" ]; then ok; else fail "a PKCS#11 home has a key store file"; fi
expect hsm-put 0 'stored h-1' sh -c "printf 'HSM-SEALED-MARKER' | \"$accord\" put \
  --home \"$work/hsm\" --at 2018-01-01T00:00:00+09:00 --id h-1 --level III"
expect hsm-get 0 '^HSM-SEALED-MARKER' "$accord" get --home "$work/hsm" \
  --at 2018-01-01T00:00:00+09:00 --id h-1 --as kor-analyst
expect hsm-wrong-pin 1 'wrong PIN' env ACCORD_PKCS11_PIN=0000 "$accord" ls --home "$work/hsm"
# An init that fails after making its key on the token destroys that key: the label is free.
expect hsm-faults-key-destroyed 1 'cannot write `.*/hsm2/public.json`' faulty \
  "fsync:$work/hsm2/public.json:1" "$accord" node init --home "$work/hsm2" --party KOR \
  --policy "$src/examples/gsomia" --simulate --key-store pkcs11 --pkcs11-token accord-cli \
  --pkcs11-key-label accord-cli-2
expect hsm-faults-label-free 0 'pkcs11 key store' "$accord" node init --home "$work/hsm2" \
  --party KOR --policy "$src/examples/gsomia" --simulate --key-store pkcs11 \
  --pkcs11-token accord-cli --pkcs11-key-label accord-cli-2
[ -d "$work/hsm" ] && [ -d "$work/tokens" ] || fail "no HSM home or token directory to search"
if grep -rq 'HSM-SEALED-MARKER' "$work/hsm" "$work/tokens"; then
  fail "the payload is in the clear on disk"
else
  ok
fi

# 5. The audit log: shown, proved, verified; an edited entry is caught; a witness catches a fork.
for line in 'verified with only the public key: valid' \
  'KOR: log verified: [0-9]+ entries' 'checkpoint consistent with the last one cosigned' \
  '"op":"release","party":"KOR","decision":"deny","reason":"hub-only"'; do
  if grep -qE -- "$line" "$work/demo.txt"; then ok; else fail "demo output lacks /$line/"; fi
done
expect log-show-json 0 '^\{"index":0,"leaf_hash":"[0-9a-f]{64}","entry":\{"v":1' \
  "$accord" log show --home "$d/JPN" --json --count 1
expect log-prove-range 1 'not below the tree size' "$accord" log prove --home "$d/JPN" --index 999
# Sizes, indexes and counts are decimal numbers from 0: `-1` is not read as 2^64 - 1.
for args in "log show --from -1" "log show --count -1" "log prove --index -1" \
  "log prove --index 0 --size 010" "log consistency --from 1,-1" "log consistency --from 1 --to -1"; do
  # shellcheck disable=SC2086 # the words of $args are the command's
  expect "negative-${args// /_}" 2 'is not a decimal number from 0' "$accord" $args --home "$d/JPN"
done
# Korea cosigns Japan's checkpoint with its own key and name (on a copy of its home, which has
# cosigned nothing of Japan's). Korea's key opens that note, but it is Japan's checkpoint: checked
# with Korea's key, verify-proof refuses it as another log's; with Japan's, valid.
cp -r "$d/KOR" "$work/KOR-cosigner"
"$accord" log checkpoint --home "$d/JPN" --out "$work/jpn.cp"
"$accord" log witness --home "$work/KOR-cosigner" --at 2023-05-02T00:00:00+09:00 \
  --checkpoint "$work/jpn.cp" --out "$work/jpn-cosigned.cp" >/dev/null && ok || fail "kor-cosigns-jpn"
"$accord" log prove --home "$d/JPN" --index 0 --entry-out "$work/e0.json" >"$work/e0.proof"
e0_proof=$(sed -n 's/^proof //p' "$work/e0.proof")
expect verify-proof-other-log 1 'it is of the log `accord/JPN`, not of `accord/KOR`' "$accord" log verify-proof \
  --log-key "$("$accord" log key --home "$d/KOR")" --checkpoint "$work/jpn-cosigned.cp" \
  --entry "$work/e0.json" --index 0 --proof "$e0_proof"
expect verify-proof-own-log 0 '^valid$' "$accord" log verify-proof \
  --log-key "$("$accord" log key --home "$d/JPN")" --checkpoint "$work/jpn-cosigned.cp" \
  --entry "$work/e0.json" --index 0 --proof "$e0_proof"
# The checkpoints Korea showed Japan as evidence, proved by hand in the demo (decision #87).
for line in 'KOR: [1-9][0-9]* checkpoint\(s\) of its log shown as evidence and not yet proved' \
  'ask KOR for `accord log consistency --from [0-9,]+ --to [0-9]+ --json`' \
  'KOR: [1-9][0-9]* checkpoint\(s\) proved consistent with the one of [0-9]+ entries cosigned, 0 still unproved'; do
  if grep -qE -- "$line" "$work/demo.txt"; then ok; else fail "demo output lacks /$line/"; fi
done
# k-2019, received in section 2 after the demo's proofs, shows one more.
expect shown-one-left 0 '^KOR: 1 checkpoint\(s\)' "$accord" log shown --home "$d/JPN" --party KOR
expect shown-forks-need-proofs 2 '--record-forks requires --proofs' "$accord" log shown \
  --home "$d/JPN" --party KOR --record-forks
expect shown-no-witness 0 'JPN: this node has cosigned no checkpoint of its log' "$accord" log shown \
  --home "$d/KOR" --party JPN
# A proof that does not connect, on a copy of Japan's home: left unproved without
# --record-forks (a file passed by hand may have been altered), kept as a fork with it.
cp -r "$d/JPN" "$work/JPN-fork"
"$accord" log shown --home "$work/JPN-fork" --party KOR >"$work/out"
from_sizes() { sed -n 's/.*--from \([0-9,]*\) --to.*/\1/p' "$1"; }
seen=$(sed -n 2p "$d/KOR.checkpoint")
"$accord" log consistency --home "$d/KOR" --from "$(from_sizes "$work/out")" --to "$seen" --json |
  python3 -c 'import json,sys; d=json.load(sys.stdin); p=d["proofs"][0]["proof"]; p[0]=("0" if p[0][0]!="0" else "1")+p[0][1:]; print(json.dumps(d))' \
    >"$work/bent.json"
expect shown-bent 5 'NOT CONNECTED: the checkpoint of [0-9]+ entries' "$accord" log shown \
  --home "$work/JPN-fork" --party KOR --proofs "$work/bent.json"
expect shown-bent-left 0 '^KOR: 1 checkpoint\(s\)' "$accord" log shown --home "$work/JPN-fork" \
  --party KOR
expect shown-bent-no-evidence 0 'no evidence' "$accord" log evidence --home "$work/JPN-fork"
expect shown-fork 5 "FORK: KOR's log: the checkpoint of [0-9]+ entries it showed" "$accord" log shown \
  --home "$work/JPN-fork" --party KOR --proofs "$work/bent.json" --record-forks
expect shown-fork-evidence 0 'accord/KOR at .*not consistent with the one of' "$accord" log evidence \
  --home "$work/JPN-fork"
expect shown-fork-settled 0 '^KOR: 0 checkpoint\(s\)' "$accord" log shown --home "$work/JPN-fork" \
  --party KOR
# Proofs that do not fit what Japan cosigned change nothing: on a copy of its home whose
# checkpoints are unproved again.
cp -r "$d/JPN" "$work/JPN-shown"
sqlite3 "$work/JPN-shown/state.db" "UPDATE shown_checkpoints SET state = 0 WHERE origin = 'accord/KOR'"
expect shown-again 0 '^KOR: [2-9] checkpoint\(s\)' "$accord" log shown --home "$work/JPN-shown" \
  --party KOR
sizes=$(from_sizes "$work/out")
"$accord" log consistency --home "$d/KOR" --from "$sizes" --to "$seen" --json >"$work/proofs.json"
edit() { # FILE PYTHON: the proofs document with PYTHON applied to it (as d)
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $2; print(json.dumps(d))" "$1"
}
edit "$work/proofs.json" 'd["root"]="00"*32' >"$work/other-root.json"
edit "$work/proofs.json" 'd["root"]="00"*32; d["proofs"]=[]' >"$work/other-root-none.json"
edit "$work/proofs.json" 'd["to"]-=1' >"$work/other-size.json"
edit "$work/proofs.json" 'd["proofs"].append(dict(d["proofs"][0], proof=[]))' >"$work/twice.json"
edit "$work/proofs.json" 'd["proofs"]=d["proofs"][1:]' >"$work/one-short.json"
printf '{"to":1}' >"$work/bad-proofs.json"
for bad in other-root:'with root 0{64}, but the one of KOR.s log cosigned last has' \
  other-root-none:'with root 0{64}, but' other-size:'proofs to a checkpoint of [0-9]+ entries' \
  twice:'two different proofs from [0-9]+ entries' bad-proofs:'malformed consistency proofs: `root`'; do
  expect "shown-${bad%%:*}" 1 "${bad#*:}" "$accord" log shown --home "$work/JPN-shown" --party KOR \
    --proofs "$work/${bad%%:*}.json"
done
expect shown-unchanged 0 '^KOR: [2-9] checkpoint\(s\)' "$accord" log shown \
  --home "$work/JPN-shown" --party KOR
expect shown-one-short 0 "one-short.json has no proof from ${sizes%%,*} entries: those stay unproved" \
  "$accord" log shown --home "$work/JPN-shown" --party KOR --proofs "$work/one-short.json"
expect shown-proved 0 ' proved consistent with the one of [0-9]+ entries cosigned, 0 still unproved' \
  "$accord" log shown --home "$work/JPN-shown" --party KOR --proofs "$work/proofs.json"
expect shown-no-evidence 0 'no evidence' "$accord" log evidence --home "$work/JPN-shown"
# Several sizes at once, without --json: one block each.
expect consistency-several 0 '^size1 [0-9]+$' "$accord" log consistency --home "$d/KOR" \
  --from "$sizes" --to "$seen"
if [ "$(grep -c '^size1 ' "$work/out")" = "$(echo "$sizes" | tr ',' '\n' | wc -l)" ]; then ok; else
  fail "log consistency printed $(grep -c '^size1 ' "$work/out") blocks for --from $sizes"
fi
cp -r "$d/USA" "$work/USA-edited"
sqlite3 "$work/USA-edited/state.db" \
  "UPDATE log_entries SET entry = CAST(replace(CAST(entry AS TEXT), 'USA/SECRET', 'USA/TOP-SECRET') AS BLOB)"
expect log-verify-edited 5 'does not match the entries' "$accord" log verify --home "$work/USA-edited"
# Japan witnessed Korea's checkpoint in the demo; a copy of Korea's home that rewrites its
# history from there is caught, and the evidence kept.
cp -r "$d/KOR" "$work/KOR-fork"
sqlite3 "$work/KOR-fork/state.db" "DELETE FROM log_entries WHERE idx >= 10; \
  DELETE FROM log_tiles"
printf x | "$accord" put --home "$work/KOR-fork" --at 2023-05-01T00:00:00+09:00 --id k-x \
  --level III >/dev/null
for i in 1 2 3 4 5; do
  "$accord" subject add --home "$work/KOR-fork" --at 2023-05-01T00:00:00+09:00 --id s-$i \
    --clearance III >/dev/null
done
"$accord" log checkpoint --home "$work/KOR-fork" --out "$work/fork.cp"
seen=$(sed -n 2p "$d/KOR.checkpoint")
# The rewritten copy agrees with itself, which is all `log verify` alone checks; a checkpoint
# Korea signed before (the demo's, which Japan witnessed) is what no rewrite can move.
expect log-verify-rewritten-alone 0 'log verified' "$accord" log verify --home "$work/KOR-fork"
expect log-verify-rewritten 5 "do not lead to the root of the checkpoint of $seen entries this node signed" \
  "$accord" log verify --home "$work/KOR-fork" --checkpoint "$d/KOR.checkpoint"
# Korea's own checkpoint, and the one Japan cosigned (whose other signature is ignored).
expect log-verify-anchored 0 'lead to the root of each of the 2 checkpoint' "$accord" log verify \
  --home "$d/KOR" --checkpoint "$d/KOR.checkpoint" --checkpoint - <"$d/KOR.cosigned"
sed '3s/^./=/' "$d/KOR.checkpoint" >"$work/edited.cp"  # its root edited: the signature fails
expect log-verify-forged 5 "a checkpoint.s signature by this node does not verify" "$accord" \
  log verify --home "$d/KOR" --checkpoint "$work/edited.cp"
expect log-verify-not-signed-here 1 'a checkpoint not signed by this node.s key `accord/JPN`' \
  "$accord" log verify --home "$d/JPN" --checkpoint "$d/KOR.checkpoint"
# Of several, the one refused is named.
expect log-verify-not-a-note 1 '`/dev/null`: a checkpoint that is not a signed note' "$accord" \
  log verify --home "$d/KOR" --checkpoint "$d/KOR.checkpoint" --checkpoint /dev/null
# Japan's signature on Korea's checkpoint is a cosignature, not a checkpoint of Japan's log.
expect log-verify-not-own-log 1 'a checkpoint of `accord/KOR`, not of this node.s log `accord/JPN`' \
  "$accord" log verify --home "$d/JPN" --checkpoint "$d/KOR.cosigned"
proof=$("$accord" log consistency --home "$work/KOR-fork" --from "$seen" | sed -n 's/^proof //p')
# A proof said to start at another size than the one cosigned last (another witness of the home
# moved on): refused, and nothing kept.
expect witness-moved-on 1 'cosigned last has [0-9]+ entries, and the proof starts at' \
  "$accord" log witness --home "$d/JPN" --at 2023-05-02T00:00:00+09:00 \
  --checkpoint "$work/fork.cp" --proof "$proof" --from $((seen - 1))
expect witness-moved-on-no-evidence 0 'no evidence' "$accord" log evidence --home "$d/JPN"
expect witness-no-from 2 '--proof requires --from' "$accord" log witness --home "$d/JPN" \
  --at 2023-05-02T00:00:00+09:00 --checkpoint "$work/fork.cp" --proof "$proof"
expect witness-no-proof 1 'and the proof starts at 0' "$accord" log witness --home "$d/JPN" \
  --at 2023-05-02T00:00:00+09:00 --checkpoint "$work/fork.cp"
expect witness-fork 5 'proof|consistent|differs' "$accord" log witness --home "$d/JPN" \
  --at 2023-05-02T00:00:00+09:00 --checkpoint "$work/fork.cp" --proof "$proof" --from "$seen"
expect witness-evidence 0 'accord/KOR at .*' "$accord" log evidence --home "$d/JPN"
# Korea's log as it stood earlier (a log rolled back to 5 entries): refused, and no evidence,
# since an earlier checkpoint contradicts nothing.
cp -r "$d/KOR" "$work/KOR-earlier"
sqlite3 "$work/KOR-earlier/state.db" "DELETE FROM log_entries WHERE idx >= 5; DELETE FROM log_tiles"
"$accord" log checkpoint --home "$work/KOR-earlier" --out "$work/earlier.cp"
expect log-verify-rolled-back 5 "the log holds 5 entries, fewer than the $seen of a checkpoint" \
  "$accord" log verify --home "$work/KOR-earlier" --checkpoint "$d/KOR.checkpoint"
expect witness-older 1 'has 5 entries, older than the one of' "$accord" log witness \
  --home "$d/JPN" --at 2023-05-02T00:00:00+09:00 --checkpoint "$work/earlier.cp"
if [ "$("$accord" log evidence --home "$d/JPN" | grep -c '^accord/KOR at ')" = 1 ]; then ok; else
  fail "an older checkpoint was kept as evidence"
fi
"$accord" log consistency --home "$d/KOR" --from "$seen" >/dev/null && ok || fail "log consistency"

# 6. A development PKI for mutual TLS, checked with the openssl command.
expect pki-init 0 '3 node certificate\(s\) in nodes/, 4 user certificate\(s\)' "$accord" pki init \
  --out "$work/pki" --policy "$src/examples/gsomia" --days 30
expect pki-verify 0 'jpn-analyst.pem: OK' openssl verify -CAfile "$work/pki/ca.pem" \
  -purpose sslclient "$work/pki/nodes/KOR.pem" "$work/pki/users/jpn-analyst.pem"
expect pki-subject 0 'O = JPN, CN = jpn-analyst' openssl x509 -noout -subject \
  -in "$work/pki/users/jpn-analyst.pem"
if [ "$(stat -c %a "$work/pki/users/jpn-analyst.key")" = 600 ]; then ok; else fail "key mode"; fi
# Dated five minutes back (kIssueBackdateSeconds), for a node whose clock is a little behind.
start=$(date -d "$(openssl x509 -noout -startdate -in "$work/pki/users/jpn-analyst.pem" |
  cut -d= -f2)" +%s)
back=$(($(date +%s) - start))
if [ "$back" -ge 300 ] && [ "$back" -lt 360 ]; then ok; else fail "pki init: notBefore ${back}s back"; fi
expect pki-again 1 'already holds a CA' "$accord" pki init --out "$work/pki" --nodes KOR
# A mistake in the names is found before anything is written: mended, the command runs again.
expect pki-bad-host 1 '`1.2.3` is neither an IP address nor a DNS name' "$accord" pki init \
  --out "$work/pki2" --nodes KOR --hosts 1.2.3
expect pki-no-host 1 'no host for the node certificates' "$accord" pki init --out "$work/pki2" \
  --nodes KOR --hosts ,
expect pki-user-two-parties 1 'user `alice` is given for two parties, `KOR` and `JPN`' \
  "$accord" pki init --out "$work/pki2" --nodes KOR --users alice:KOR,alice:JPN
# A disk that fails part way leaves no CA behind: every file is staged before any is put in
# place, the CA's certificate last. The next run is then not refused as "already holds a CA".
expect pki-disk-fails 1 'cannot write `.*/pki-f/users/u2.key`: Input/output error' faulty \
  "fsync:$work/pki-f/users/u2.key:1" "$accord" pki init --out "$work/pki-f" --nodes KOR,JPN \
  --users u1:KOR,u2:JPN
if [ -z "$(find "$work/pki-f" -type f)" ]; then ok; else
  fail "pki-disk-fails: files left: $(find "$work/pki-f" -type f)"
fi
expect pki-leaf-rename-fails 1 'cannot write `.*/pki-f/users/u2.pem`: Input/output error' faulty \
  "rename:$work/pki-f/users/u2.pem:1" "$accord" pki init --out "$work/pki-f" --nodes KOR,JPN \
  --users u1:KOR,u2:JPN
if [ ! -e "$work/pki-f/ca.pem" ] && [ -z "$(find "$work/pki-f" -name '*.tmp-*')" ]; then ok; else
  fail "pki-leaf-rename-fails: a CA certificate or a staged file is left in $work/pki-f"
fi
expect pki-dir-sync-fails 1 '`.*/pki-f/nodes/KOR.key` is in place, but cannot make `.*/pki-f/nodes` durable' \
  faulty "fsync:$work/pki-f/nodes:*@rename:$work/pki-f/nodes/KOR.key" "$accord" pki init \
  --out "$work/pki-f" --nodes KOR,JPN --users u1:KOR,u2:JPN
if [ ! -e "$work/pki-f/ca.pem" ] && [ -z "$(find "$work/pki-f" -name '*.tmp-*')" ]; then ok; else
  fail "pki-dir-sync-fails: ca.pem or a staged file in $work/pki-f"
fi
# The PKI directory's entry in its parent (the second sync after `ca.key` is in place, the first
# being its own directory's) is made durable before `ca.pem` goes in, even by a run that found
# the directory made.
expect pki-parent-sync-fails 1 'cannot make `.*/pki-f/..` durable: Input/output error' faulty \
  "fsync:$work:2@rename:$work/pki-f/ca.key" "$accord" pki init --out "$work/pki-f" \
  --nodes KOR,JPN --users u1:KOR,u2:JPN
if [ ! -e "$work/pki-f/ca.pem" ]; then ok; else fail "pki-parent-sync-fails: ca.pem in place"; fi
expect pki-after-failures 0 '2 node certificate\(s\) in nodes/, 2 user certificate\(s\)' \
  "$accord" pki init --out "$work/pki-f" --nodes KOR,JPN --users u1:KOR,u2:JPN
# A node or user of the policy named again by a flag is made once, and counted once.
expect pki-policy-and-flags 0 '4 node certificate\(s\) in nodes/, 4 user certificate\(s\)' \
  "$accord" pki init --out "$work/pki3" --policy "$src/examples/gsomia" --nodes KOR,NZL \
  --users jpn-analyst:JPN
expect pki-ipv6 0 'IP Address:2001:DB8:0:0:0:0:0:1' sh -c "\"$accord\" pki init --out \"$work/pki2\" \
  --nodes KOR --hosts 2001:db8::1,kor.example >/dev/null &&
  openssl x509 -noout -ext subjectAltName -in \"$work/pki2/nodes/KOR.pem\""

# 7. `accord serve`: the node's API over mutual TLS with the PKI above, stopped by SIGTERM. It
# also trusts a partner's CA (for its node's certificate), which must not issue its users'.
"$accord" pki init --out "$work/pki-jpn" --nodes JPN --users kor-analyst:KOR >/dev/null ||
  fail "a partner's PKI"
cat "$work/pki/ca.pem" "$work/pki-jpn/ca.pem" >"$work/bundle.pem"
expect pki-revoke-new 0 'crl.pem: 0 certificate\(s\) revoked \(0 new\), next update' \
  "$accord" pki revoke --pki "$work/pki"
expect pki-revoke-foreign 1 'was not issued by the CA' "$accord" pki revoke --pki "$work/pki" \
  "$work/pki-jpn/users/kor-analyst.pem"
"$accord" node init --home "$work/srv" --party KOR --policy "$src/examples/gsomia" --simulate \
  --kdf-cost 10 >/dev/null
# The passphrase from a file, with ACCORD_PASSPHRASE set as well (and unused).
printf '%s\n' "$ACCORD_PASSPHRASE" >"$work/serve-passphrase"
# A serve.toml in the home that links to nothing is read, and the read says why it fails, rather
# than taken for no file (decision #205).
ln -s "$work/gone.toml" "$work/srv/serve.toml"
expect serve-config-dangling 3 'serve.toml.*No such file or directory' "$accord" serve \
  --home "$work/srv" --passphrase-file "$work/serve-passphrase"
rm "$work/srv/serve.toml"
("$accord" serve --home "$work/srv" --at 2018-05-01T00:00:00+09:00 --ca "$work/bundle.pem" \
  --passphrase-file "$work/serve-passphrase" --crl "$work/pki/crl.pem" \
  --cert "$work/pki/nodes/KOR.pem" --key "$work/pki/nodes/KOR.key" \
  --port-file "$work/srv.port" >"$work/serve.log" 2>&1) &
serve_pid=$!
# serve_port LOG: the port of the server $serve_pid once its port file is written.
serve_port() {
  # Up to 30 s: the sanitizers' builds start slowly on a loaded machine.
  for _ in $(seq 300); do
    [ -s "$work/srv.port" ] && break
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
  done
  port=$(cat "$work/srv.port" 2>/dev/null)
  [ -n "$port" ] || { fail "serve did not start"; cat "$1"; }
}
serve_port "$work/serve.log"
# stop_serve: SIGTERM to $serve_pid, SIGKILL if it still runs after 60 s (a shutdown that hangs);
# its exit status is the server's.
stop_serve() {
  kill -TERM "$serve_pid"
  for _ in $(seq 600); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$serve_pid" 2>/dev/null
  wait "$serve_pid"
}
user=(--max-time 30 --cacert "$work/pki/ca.pem" --cert "$work/pki/users/kor-analyst.pem"
  --key "$work/pki/users/kor-analyst.key")
expect serve-health 0 '"status":"ok","party":"KOR"' curl -sS "${user[@]}" "https://127.0.0.1:$port/v1/health"
# One server per home: a second is refused while the first serves, and leaves its port file.
expect serve-twice 1 'another `accord serve` uses this home \(`.*/srv/serve.lock` is locked by another holder\)' \
  timeout 60 "$accord" serve --home "$work/srv" --at 2018-05-01T00:00:00+09:00 \
  --ca "$work/bundle.pem" --passphrase-file "$work/serve-passphrase" \
  --cert "$work/pki/nodes/KOR.pem" --key "$work/pki/nodes/KOR.key" --port-file "$work/srv.port"
expect serve-twice-port-file 0 "^$port\$" cat "$work/srv.port"
# ACCORD_PASSPHRASE is wiped from the server's environment, though the file was used.
# (Only root reads the environment of a process that is not dumpable.)
accord_pid=$(pgrep -n -f "serve --home $work/srv") || fail "the server's process"
if [ "$(id -u)" != 0 ]; then
  echo "skipped: the server's environment (not root)"
elif ! tr '\0' '\n' <"/proc/$accord_pid/environ" >"$work/environ"; then
  fail "cannot read the server's environment"
elif grep -qF "$ACCORD_PASSPHRASE" "$work/environ"; then
  fail "the passphrase is still in the server's environment"
else
  ok
fi
expect serve-create 0 '"id":"s-1"' curl -sS "${user[@]}" -X POST -d \
  '{"id":"s-1","level":"III","topics":[],"compartments":[],"rel_to":[],"payload_base64":"aGk="}' \
  "https://127.0.0.1:$port/v1/objects"
expect serve-read 0 '"payload_base64":"aGk="' curl -sS "${user[@]}" "https://127.0.0.1:$port/v1/objects/s-1"
expect serve-no-cert 56 'alert certificate required' curl -sS --max-time 30 --cacert "$work/pki/ca.pem" "https://127.0.0.1:$port/v1/health"
expect serve-partner-ca-user 0 '"code":"permission-denied"' curl -sS --max-time 30 \
  --cacert "$work/pki/ca.pem" --cert "$work/pki-jpn/users/kor-analyst.pem" \
  --key "$work/pki-jpn/users/kor-analyst.key" "https://127.0.0.1:$port/v1/objects/s-1"
# Revoked while the server runs: the next handshake a second or more later is refused.
expect pki-revoke 0 '1 certificate\(s\) revoked \(1 new\)' "$accord" pki revoke \
  --pki "$work/pki" "$work/pki/users/kor-analyst.pem"
expect pki-revoke-again 1 'revokes that certificate already' "$accord" pki revoke \
  --pki "$work/pki" "$work/pki/users/kor-analyst.pem"
sleep 1.2
expect serve-revoked 56 'certificate revoked' curl -sS "${user[@]}" \
  "https://127.0.0.1:$port/v1/health"
if stop_serve && grep -q 'KOR stopped' "$work/serve.log" &&
  grep -q 'revocation lists: 1 from .*, revoking 1 certificate$' "$work/serve.log"; then ok; else
  fail "serve did not stop cleanly on SIGTERM"
  cat "$work/serve.log"
fi
serve_pid=""

# 7a. A second signal stops at once. The first waits for the requests in flight, here one whose
# header never ends (it holds the stop for `read_timeout`, 10 s); the second ends the process,
# as SIGKILL would, and removes its port file. The home opens and verifies afterwards. A SIGINT
# before them is not counted (below).
# (A simple command run in the background, as scripts/live-lib.sh runs its nodes: the shell
# starts it with SIGINT ignored. One in a subshell, `( ... ) &`, is not.)
"$accord" serve --home "$work/srv" --at 2018-05-01T00:00:00+09:00 --ca "$work/pki/ca.pem" \
  --passphrase-file "$work/serve-passphrase" --cert "$work/pki/nodes/KOR.pem" \
  --key "$work/pki/nodes/KOR.key" --port-file "$work/srv.port" >"$work/serve2.log" 2>&1 &
serve_pid=$!
serve_port "$work/serve2.log"
# The header goes through a FIFO held open by this script (fd 7) until the end of the test,
# once the handshake is done (a connection still in its handshake does not hold the stop).
mkfifo "$work/slow.fifo"
openssl s_client -connect "127.0.0.1:$port" -CAfile "$work/pki/ca.pem" \
  -cert "$work/pki/users/jpn-analyst.pem" -key "$work/pki/users/jpn-analyst.key" \
  <"$work/slow.fifo" >"$work/slow.out" 2>&1 &
slow_pid=$!
exec 7>"$work/slow.fifo"
for _ in $(seq 300); do
  grep -q 'Verify return code' "$work/slow.out" && break
  sleep 0.1
done
printf 'POST /v1/objects HTTP/1.1\r\nHost: x\r\n' >&7
sleep 1
# A SIGINT is not a signal for a node this script runs in the background (its shell ignores
# SIGINT there): a Ctrl-C is the script's, not a first signal.
kill -INT "$serve_pid"
kill -TERM "$serve_pid"
sleep 1
if kill -0 "$serve_pid" 2>/dev/null && grep -q 'stopping after the requests in flight' "$work/serve2.log"; then
  ok
else
  fail "serve-first-signal: not waiting for the request in flight"
  cat "$work/serve2.log"
fi
kill -TERM "$serve_pid"
for _ in $(seq 50); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$serve_pid" 2>/dev/null  # still running after 5 s: the second signal was not taken
status=0
wait "$serve_pid" 2>/dev/null || status=$?
if [ "$status" = 1 ] && [ ! -e "$work/srv.port" ] && ! grep -q 'KOR stopped' "$work/serve2.log" &&
  grep -q 'a second signal: stopped at once' "$work/serve2.log"; then
  ok
else
  fail "serve-second-signal: status $status, want 1, and no port file"
  cat "$work/serve2.log"
fi
exec 7>&-
kill "$slow_pid" 2>/dev/null
wait "$slow_pid" 2>/dev/null
expect serve-second-signal-home 0 'verified' "$accord" log verify --home "$work/srv"
serve_pid=""

# 7a2. A node whose log's reader has gone (`accord serve 2>&1 | tee`, the tee stopped) loses its
# log lines, not its life: a refused handshake, logged to the closed pipe, ends nothing, and the
# node still serves and stops cleanly.
rm -f "$work/srv.port"
mkfifo "$work/err.fifo"
cat "$work/err.fifo" >/dev/null &
reader_pid=$!
"$accord" serve --home "$work/srv" --at 2018-05-01T00:00:00+09:00 --ca "$work/pki/ca.pem" \
  --passphrase-file "$work/serve-passphrase" --cert "$work/pki/nodes/KOR.pem" \
  --key "$work/pki/nodes/KOR.key" --port-file "$work/srv.port" >"$work/serve3.log" \
  2>"$work/err.fifo" &
serve_pid=$!
serve_port "$work/serve3.log"
kill "$reader_pid"
wait "$reader_pid" 2>/dev/null
expect serve-no-reader-refused 56 'alert certificate required' curl -sS --max-time 30 \
  --cacert "$work/pki/ca.pem" "https://127.0.0.1:$port/v1/health"
# (kor-analyst, revoked in section 7 by a list this node does not read.)
expect serve-no-reader-health 0 '"status":"ok"' curl -sS "${user[@]}" "https://127.0.0.1:$port/v1/health"
if stop_serve && grep -q 'KOR stopped' "$work/serve3.log"; then ok; else
  fail "serve-no-reader: did not stop cleanly on SIGTERM"
  cat "$work/serve3.log"
fi
serve_pid=""

# 7a3. A node whose disk fails a commit's sync writes nothing more until it restarts: what that
# sync covered may be lost, and a later commit made on top of it could be lost with it. Nor does
# it deliver or witness. (On a copy of the home; the first sync of the store's -wal file once the
# node listens fails: the commit of the object created first, which comes before any read's
# sync; the home was closed cleanly, so that is the new -wal file's header's, before any frame.
# A partner that never answers, so that the federation runs. kor-analyst: as in 7a2.)
cp -r "$work/srv" "$work/srv-disk"
rm -f "$work/srv.port"
printf '[[peer]]\nparty = "JPN"\nport = 1\ncert = "%s"\n' "$work/pki/nodes/JPN.pem" \
  >"$work/disk-peer.toml"
faulty_env "fdatasync:$work/srv-disk/state.db-wal:1@rename:$work/srv.port"
env "${fenv[@]}" "$accord" serve --config "$work/disk-peer.toml" \
  --home "$work/srv-disk" --at 2018-05-01T00:00:00+09:00 --ca "$work/pki/ca.pem" \
  --passphrase-file "$work/serve-passphrase" --cert "$work/pki/nodes/KOR.pem" \
  --key "$work/pki/nodes/KOR.key" --port-file "$work/srv.port" >"$work/serve4.log" 2>&1 &
serve_pid=$!
serve_port "$work/serve4.log"
create() {
  curl -sS "${user[@]}" -X POST -d "{\"id\":\"$1\",\"level\":\"III\",\"topics\":[],\"compartments\":[],\"rel_to\":[],\"payload_base64\":\"aGk=\"}" \
    "https://127.0.0.1:$port/v1/objects"
}
expect serve-disk-commit-fails 0 '"code":"unavailable"' create s-disk-1
expect serve-disk-write-refused 0 '"code":"unavailable"' create s-disk-2
expect serve-disk-read-refused 0 '"code":"unavailable"' curl -sS "${user[@]}" \
  "https://127.0.0.1:$port/v1/objects/s-1"
expect serve-disk-health 0 '"code":"unavailable"' curl -sS "${user[@]}" \
  "https://127.0.0.1:$port/v1/health"
for _ in $(seq 150); do  # the federation's next pass: within a second (its poll interval)
  grep -q 'delivering and witnessing stopped' "$work/serve4.log" && break
  sleep 0.1
done
if stop_serve && grep -q 'KOR stopped' "$work/serve4.log"; then ok; else
  fail "serve-disk-stop: did not stop cleanly on SIGTERM"
fi
serve_pid=""
if grep -q 'an earlier sync of `.*/srv-disk/state.db` failed (disk I/O error), so what it covered may not be on disk: restart the node' \
  "$work/serve4.log"; then ok; else
  fail "serve-disk-log: the log does not say to restart the node"
  cat "$work/serve4.log"
fi
if [ "$(grep -c 'delivering and witnessing stopped: an earlier sync' "$work/serve4.log")" = 1 ]; then
  ok
else
  fail "serve-disk-federation: not one line saying the federation stopped"
  cat "$work/serve4.log"
fi
# Restarted (here, a command: a process of its own), the home holds what was committed before.
if "$accord" ls --home "$work/srv-disk" >"$work/out" 2>&1 && grep -q '^s-1 ' "$work/out" &&
  ! grep -q 's-disk' "$work/out"; then ok; else
  fail "serve-disk-restart: s-1 missing, or an object refused is there"
  cat "$work/out"
fi
expect serve-disk-verify 0 'verified' "$accord" log verify --home "$work/srv-disk"

# 7b. A configuration nested deeply enough to overflow toml11's stack is refused, not parsed.
{
  printf 'x = '
  head -c 100000 /dev/zero | tr '\0' '['
} >"$work/deep.toml"
expect serve-deep-config 2 'nested deeper than 32 levels' "$accord" serve --home "$work/srv" \
  --config "$work/deep.toml"
# Malformed TOML is one line naming the file and the line, as the file's other mistakes.
printf '[limits]\nmax_body_bytes = 1\n[listen\n' >"$work/syntax.toml"
expect serve-toml-syntax 2 '^accord: .*syntax.toml:3:[0-9]+: [^ ]' "$accord" serve --home "$work/srv" \
  --config "$work/syntax.toml"
cp "$work/out" "$work/syntax.out"
# A byte that is not UTF-8 is refused before toml11 reads it (toml11 3.7 reads past its buffer
# on one inside a literal string).
printf "[listen]\naddress = '\xff'\n" >"$work/not-utf8.toml"
expect serve-toml-not-utf8 2 'not-utf8.toml:2:12: byte 0xff is not UTF-8' "$accord" serve \
  --home "$work/srv" --config "$work/not-utf8.toml"
expect serve-toml-syntax-one-line 0 '^1$' sed -n '$=' "$work/syntax.out"
# A malformed date-time is named at its line, not at line 1 of its own text (as toml11 3.7 says).
printf '[listen]\naddress = "127.0.0.1"\n\n[limits]\nidle_timeout_s = 1979-05-27T07:32:00+25:00\n' \
  >"$work/date.toml"
expect serve-toml-date-line 2 'date.toml:5:[0-9]+: ' "$accord" serve --home "$work/srv" \
  --config "$work/date.toml"
# A limit out of its range is refused with its name, not ignored.
printf '[limits]\nmax_requests_per_caller = 0\n' >"$work/zero.toml"
printf '[limits]\nidle_timeout_s = 86401\n' >"$work/long-timeout.toml"
expect serve-timeout-over-a-day 2 '`idle_timeout_s` must be an integer from 1 to 86400' "$accord" \
  serve --home "$work/srv" --config "$work/long-timeout.toml"
expect serve-zero-limit 2 'max_requests_per_caller' "$accord" serve --home "$work/srv" \
  --config "$work/zero.toml"
expect serve-max-connections-flag 2 'max-connections' "$accord" serve --home "$work/srv" \
  --max-connections 5000
expect serve-max-body-zero 2 'max-body' "$accord" serve --home "$work/srv" --max-body 0
printf '[limits]\nmax_answer_bytes = 0\n' >"$work/zero-answers.toml"
expect serve-zero-answer-limit 2 'max_answer_bytes' "$accord" serve --home "$work/srv" \
  --config "$work/zero-answers.toml"
# A configuration that cannot be read is a file error (3), as for every other command, and a
# mistake in one is a usage error (2, above).
expect serve-config-missing 3 'cannot read `[^`]*missing.toml`: No such file' "$accord" serve \
  --home "$work/srv" --config "$work/missing.toml"
mkdir -p "$work/config-dir"
expect serve-config-directory 3 'config-dir' "$accord" serve --home "$work/srv" \
  --config "$work/config-dir/"
expect serve-config-endless 3 '`/dev/zero` is larger than 67108864 bytes' "$accord" serve \
  --home "$work/srv" --config /dev/zero
# A listen address must be an IP address, said before the node opens (a host name is not
# looked up).
printf '[listen]\naddress = "localhost"\n' >"$work/listen-name.toml"
expect serve-listen-name 2 'the listen address `localhost` is not an IP address' "$accord" serve \
  --home "$work/srv" --config "$work/listen-name.toml"
expect serve-listen-flag 2 'the listen address `127.0.0.256` is not an IP address' "$accord" serve \
  --home "$work/srv" --listen 127.0.0.256
expect serve-config-stdin 2 'not read from standard input' "$accord" serve --home "$work/srv" \
  --config -
# So is a TLS file that cannot be read, said before the node opens.
expect serve-tls-file-missing 3 'cannot read the CA certificate `[^`]*nowhere.pem`: No such file' "$accord" serve \
  --home "$work/srv" --ca "$work/nowhere.pem" --cert "$work/pki/nodes/KOR.pem" \
  --key "$work/pki/nodes/KOR.key"
expect serve-tls-file-directory 3 'cannot read the CA certificate `[^`]*config-dir/`: not a regular' \
  "$accord" serve --home "$work/srv" --ca "$work/config-dir/" --cert "$work/pki/nodes/KOR.pem" \
  --key "$work/pki/nodes/KOR.key"
# A [[peer]] must name a party of the policy, a port or a port file (not both), and no empty
# path: `cert = ""` would have turned the key pin off unseen. (`timeout`: a node that took such a
# file would serve until stopped.)
tls_flags=(--ca "$work/pki/ca.pem" --cert "$work/pki/nodes/KOR.pem" --key "$work/pki/nodes/KOR.key")
# The port file is replaced when the node listens and removed when it stops: never one of the
# home's own files, nor a device. (With everything else a node needs, so that one that took the
# file would listen, replace the key store, and remove it when `timeout` stops it.)
cp "$work/srv/keystore" "$work/keystore.before"
expect serve-port-file-in-home 3 'cannot write the port file `[^`]*keystore`: it is inside the home' \
  timeout 20 "$accord" serve --home "$work/srv" --at 2018-05-01T00:00:00+09:00 \
  --port-file "$work/srv/keystore" "${tls_flags[@]}"
if cmp -s "$work/srv/keystore" "$work/keystore.before"; then ok; else
  fail "serve-port-file-in-home-kept: the key store changed"
fi
expect serve-port-file-device 3 'not a regular file' timeout 20 "$accord" serve \
  --home "$work/srv" --at 2018-05-01T00:00:00+09:00 --port-file /dev/null "${tls_flags[@]}"
# A port file put in place whose directory cannot be made durable is removed: no partner is sent
# to a port that no node serves.
mkdir -p "$work/pf"
expect serve-port-file-unsynced 3 "\`$work/pf/srv.port\` is in place, but cannot make \`$work/pf\` durable: Input/output error: the port file is removed" \
  faulty "fsync:$work/pf:*@rename:$work/pf/srv.port" timeout 20 "$accord" serve \
  --home "$work/srv" --at 2018-05-01T00:00:00+09:00 --port-file "$work/pf/srv.port" "${tls_flags[@]}"
if [ -z "$(ls -A "$work/pf")" ]; then ok; else
  fail "serve-port-file-unsynced: left in $work/pf: $(ls -A "$work/pf")"
fi
printf '[[peer]]\nparty = "JPN"\nport = 1\ncert = ""\n' >"$work/empty-cert.toml"
expect serve-empty-cert 2 'empty-cert.toml:4: `cert` is empty' timeout 20 "$accord" serve --home "$work/srv" \
  --at 2018-05-01T00:00:00+09:00 --config "$work/empty-cert.toml" "${tls_flags[@]}"
printf '[[peer]]\nparty = "JPN"\nport = 1\nport_file = "p"\n' >"$work/two-ports.toml"
expect serve-two-ports 2 'not both' timeout 20 "$accord" serve --home "$work/srv" \
  --at 2018-05-01T00:00:00+09:00 --config "$work/two-ports.toml" "${tls_flags[@]}"
# `port_file = "-"` of [listen] prints the port on standard output, as --port-file - does, wherever
# the configuration file is (it once named a file `-` beside it).
mkdir -p "$work/etc"
printf '[listen]\nport_file = "-"\n' >"$work/etc/stdout-port.toml"
"$accord" serve --home "$work/srv" --at 2018-05-01T00:00:00+09:00 --config "$work/etc/stdout-port.toml" \
  --passphrase-file "$work/serve-passphrase" "${tls_flags[@]}" >"$work/stdout-port.out" \
  2>"$work/stdout-port.err" &
serve_pid=$!
for _ in $(seq 300); do
  grep -qx '[0-9]\+' "$work/stdout-port.out" 2>/dev/null && break
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.1
done
stop_serve
stopped=$?
serve_pid=""
if [ "$stopped" = 0 ] && grep -qx '[0-9]\+' "$work/stdout-port.out" && [ ! -e "$work/etc/-" ]; then
  ok
else
  fail "serve-config-port-file-stdout: stdout: $(cat "$work/stdout-port.out"); ls: $(ls "$work/etc")"
  cat "$work/stdout-port.err"
fi
printf '[[peer]]\nparty = "XXX"\nport = 1\n' >"$work/no-party.toml"
expect serve-unknown-peer 2 '`XXX` is not a party of this node.s policy' timeout 20 "$accord" serve \
  --home "$work/srv" --at 2018-05-01T00:00:00+09:00 --config "$work/no-party.toml" "${tls_flags[@]}"
expect serve-octal-port 2 'is not a decimal number' timeout 20 "$accord" serve --home "$work/srv" \
  --at 2018-05-01T00:00:00+09:00 --port 010 "${tls_flags[@]}"
# The CAs of this node's users: `[tls] user_ca` or --user-ca, a file of certificates.
printf '[tls]\nuser_ca = "no-such-ca.pem"\n' >"$work/user-ca.toml"
expect serve-user-ca-missing 3 'cannot read the users. CA certificates `.*no-such-ca.pem`' timeout 20 \
  "$accord" serve --home "$work/srv" --at 2018-05-01T00:00:00+09:00 --config "$work/user-ca.toml" \
  "${tls_flags[@]}"
expect serve-user-ca-empty 1 'no certificate in `.*deep.toml`' timeout 20 "$accord" serve \
  --home "$work/srv" --at 2018-05-01T00:00:00+09:00 --user-ca "$work/deep.toml" "${tls_flags[@]}"
# Revocation lists: `[tls] crl` (beside the configuration file) or --crl.
printf '[tls]\ncrl = "no-such-crl.pem"\n' >"$work/crl.toml"
expect serve-crl-missing 3 "cannot read the revocation lists \`$work/no-such-crl.pem\`" timeout 20 \
  "$accord" serve --home "$work/srv" --at 2018-05-01T00:00:00+09:00 --config "$work/crl.toml" \
  "${tls_flags[@]}"
expect serve-crl-empty 1 'no revocation list in `.*deep.toml`' timeout 20 "$accord" serve \
  --home "$work/srv" --at 2018-05-01T00:00:00+09:00 --crl "$work/deep.toml" "${tls_flags[@]}"

# 7c. What a partner named reaches the terminal escaped in `ls` too; a passphrase and a payload
# cannot both come from standard input; a package written to `-` is alone on standard output.
printf x | "$accord" put --home "$work/srv" --at 2018-05-01T00:00:00+09:00 --id k-esc \
  --topics "$(printf 't-\033[2J')" --level III >/dev/null || fail "put a topic with an escape"
expect ls-escaped 0 't-\\x1b\[2J' "$accord" ls --home "$work/srv" --at 2018-05-01T00:00:00+09:00
if grep -q "$(printf '\033')" "$work/out"; then fail "ls wrote an escape character"; else ok; fi
expect put-id-escape 1 'without control or bidirectional formatting' sh -c "printf x | \
  \"$accord\" put --home \"$work/srv\" --at 2018-05-01T00:00:00+09:00 --level III \
  --id \"\$(printf 'k-\\033[2J')\""
expect passphrase-and-payload-stdin 2 'cannot both come from standard input' sh -c \
  "printf 'x\\np\\n' | \"$accord\" put --home \"$work/srv\" --at 2018-05-01T00:00:00+09:00 \
    --passphrase-file - --id k-stdin --level III"
"$accord" release --home "$d/KOR" --at 2019-12-02T00:00:00+09:00 --id k-2019 --to JPN --out - \
  >"$work/stdout.pkg" 2>"$work/stdout.err" || fail "release --out -"
expect package-from-stdout 0 'release of `k-2019` from KOR' "$accord" receive --home "$d/JPN" \
  --at 2019-12-02T01:00:00+09:00 "$work/stdout.pkg"
"$accord" log prove --home "$d/JPN" --index 0 --entry-out - >"$work/stdout.entry" 2>/dev/null ||
  fail "log prove --entry-out -"
if [ "$(head -c 6 "$work/stdout.entry")" = '{"v":1' ]; then ok; else
  fail "log prove --entry-out - wrote more than the entry: $(head -c 40 "$work/stdout.entry")"
fi
expect passphrase-and-checkpoint-stdin 2 'cannot both come from standard input' sh -c \
  "\"$accord\" log witness --home \"$d/JPN\" --passphrase-file - --checkpoint - </dev/null"
expect passphrase-and-verify-checkpoint-stdin 2 'cannot both come from standard input' sh -c \
  "\"$accord\" log verify --home \"$d/JPN\" --passphrase-file - --checkpoint - </dev/null"

# 8. Help for every node command.
for cmd in "node init" "node backup" put get ls release receive forward consent reclassify destroy report \
  "subject add" "subject remove" "subject ls" "keys export-public" "keys import" "log checkpoint" "log show" "log prove" \
  "log consistency" "log verify" "log witness" "log evidence" "log shown" "log key" "pki init" \
  "pki revoke" "outbox ls" "outbox export" serve; do
  # shellcheck disable=SC2086
  expect "help $cmd" 0 'Usage|Options' "$accord" $cmd --help
done

echo "node_cli_test: $passed passed, $failures failed"
[ "$failures" = 0 ]
