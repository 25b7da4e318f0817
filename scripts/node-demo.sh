#!/usr/bin/env bash
# Three nodes (KOR, JPN, USA) in temporary homes play the GSOMIA history with transfer packages
# carried by hand, as an air-gapped exchange would. Usage: node-demo.sh [path/to/accord]
# Every step prints what the node decided; refusals are expected where the agreements refuse.
set -euo pipefail
cd "$(dirname "$0")/.."
accord=${1:-build/release/src/cli/accord}
# ACCORD_DEMO_DIR keeps the homes and packages for inspection; by default they are removed.
if [ -n "${ACCORD_DEMO_DIR:-}" ]; then
  work=$ACCORD_DEMO_DIR
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
# A demonstration passphrase; a real home reads it from --passphrase-file or the environment.
export ACCORD_PASSPHRASE="demo passphrase, not for real use"

step() { printf '\n-- %s\n' "$1"; }
# Runs an accord command that the agreements are expected to refuse (exit 4), and shows why.
refused() {
  local code=0
  "$@" 2>"$work/err" || code=$?
  if [ "$code" -ne 4 ]; then
    echo "expected a refusal (exit 4), got exit $code" >&2
    cat "$work/err" >&2
    exit 1
  fi
  sed 's/^/   refused: /' "$work/err"
}
on() { local party=$1 at=$2; shift 2; "$accord" "$@" --home "$work/$party" --at "$at"; }

step "Three homes on simulated clocks, and their public keys exchanged"
for p in KOR JPN USA; do
  "$accord" node init --home "$work/$p" --party $p --policy examples/gsomia --simulate --kdf-cost 12
done
for p in KOR JPN USA; do
  "$accord" keys export-public --home "$work/$p" --out "$work/$p.pub"
done
for p in KOR JPN USA; do
  for q in KOR JPN USA; do
    [ $p = $q ] || "$accord" keys import --home "$work/$p" --at 2014-12-01T00:00:00+09:00 \
      "$work/$q.pub" >/dev/null
  done
done
echo "each node imported the other two's keys"

step "2015: Korea's information reaches Japan only through the US, with Korea's consent (TISA)"
printf 'DPRK launch telemetry, 2015-03' |
  on KOR 2015-03-01T09:00:00+09:00 put --id k-2015 --level II --topics dprk-missile --rel-to USA,JPN
refused on KOR 2015-03-01T09:05:00+09:00 release --id k-2015 --to JPN --out "$work/never"
on KOR 2015-03-01T09:10:00+09:00 release --id k-2015 --to USA --out "$work/k-2015.usa"
on USA 2015-03-01T20:00:00-05:00 receive "$work/k-2015.usa"
on KOR 2015-03-02T10:00:00+09:00 receive "$work/k-2015.usa.receipt"
refused on USA 2015-03-02T08:00:00-05:00 forward --id k-2015 --to JPN --out "$work/never"
on KOR 2015-03-03T09:00:00+09:00 consent --id k-2015 --to JPN --out "$work/k-2015.consent"
on USA 2015-03-03T08:00:00-05:00 receive "$work/k-2015.consent"
on USA 2015-03-03T09:00:00-05:00 forward --id k-2015 --to JPN --out "$work/k-2015.jpn"
on JPN 2015-03-04T09:00:00+09:00 receive "$work/k-2015.jpn"
on JPN 2015-03-04T10:00:00+09:00 get --id k-2015 --as jpn-analyst; echo

step "2018: a release Korea → Japan under the GSOMIA, read by a cleared Japanese analyst"
printf 'KN-23 test site survey, 2018-05' |
  on KOR 2018-05-01T09:00:00+09:00 put --id k-2018 --level II --topics dprk-missile --rel-to JPN
on KOR 2018-05-01T09:10:00+09:00 release --id k-2018 --to JPN --out "$work/k-2018.jpn"
on JPN 2018-05-01T11:00:00+09:00 receive "$work/k-2018.jpn"
on JPN 2018-05-01T11:05:00+09:00 get --id k-2018 --as jpn-analyst; echo
refused on JPN 2018-05-01T11:06:00+09:00 get --id k-2018 --as jpn-clerk

step "2018-06: Korea downgrades k-2018; the notice reaches Japan, where the clerk may now read it"
on KOR 2018-06-01T09:00:00+09:00 reclassify --id k-2018 --level III --out "$work/k-2018.reclass"
on JPN 2018-06-01T12:00:00+09:00 receive "$work/k-2018.reclass"
on JPN 2018-06-01T12:05:00+09:00 get --id k-2018 --as jpn-clerk; echo

step "2019-11-23 00:00 KST: the real history (suspended at 18:00 the day before) and the other one"
echo "the real history:"
printf 'Launch warning, 2019-11-23' |
  on KOR 2019-11-23T09:00:00+09:00 put --id k-2019 --level II --topics dprk-missile --rel-to JPN
on KOR 2019-11-23T09:10:00+09:00 release --id k-2019 --to JPN --out "$work/k-2019.jpn"
"$accord" node init --home "$work/KOR-no-suspension" --party KOR \
  --policy examples/gsomia-no-suspension --simulate --kdf-cost 12 >/dev/null
"$accord" keys import --home "$work/KOR-no-suspension" --at 2019-11-01T00:00:00+09:00 \
  "$work/JPN.pub" >/dev/null
printf 'Launch warning, 2019-11-23' |
  on KOR-no-suspension 2019-11-23T09:00:00+09:00 put --id k-2019 --level II \
    --topics dprk-missile --rel-to JPN >/dev/null
echo "had Korea not suspended its notice:"
refused on KOR-no-suspension 2019-11-23T09:10:00+09:00 release --id k-2019 --to JPN --out "$work/never"

step "2020: Japan reports a compromise of k-2015 to Korea (Art. 17)"
on JPN 2020-02-01T09:00:00+09:00 report --id k-2015 --kind compromise \
  --text "courier bag opened in transit" --out "$work/k-2015.report"
on KOR 2020-02-01T12:00:00+09:00 receive "$work/k-2015.report"

step "2023: Korea orders k-2018 destroyed everywhere; Japan's copy and its key are erased"
on KOR 2023-04-01T09:00:00+09:00 destroy --id k-2018 --everywhere --out "$work/k-2018.destroy"
on JPN 2023-04-01T12:00:00+09:00 receive "$work/k-2018.destroy"
refused on JPN 2023-04-01T12:05:00+09:00 get --id k-2018 --as jpn-analyst

step "What each node holds"
for p in KOR JPN USA; do
  echo "$p:"
  "$accord" ls --home "$work/$p" | sed 's/^/  /'
done

step "The audit logs: every operation and decision, in a Merkle log each partner can check"
echo "Korea's log:"
"$accord" log show --home "$work/KOR" | sed 's/^/  /'
for p in KOR JPN USA; do
  printf '%s: ' $p
  "$accord" log verify --home "$work/$p"
done
"$accord" log checkpoint --home "$work/KOR" --out "$work/KOR.checkpoint"
echo "Korea's signed checkpoint (C2SP tlog-checkpoint):"
sed 's/^/  /' "$work/KOR.checkpoint"
# The release of k-2018 to Japan, proved to anyone holding only Korea's public key.
index=$("$accord" log show --home "$work/KOR" --json | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    e = r["entry"]
    if e["op"] == "release" and e.get("object") == "k-2018" and e.get("decision") == "allow":
        print(r["index"])')
"$accord" log prove --home "$work/KOR" --index "$index" --entry-out "$work/release.entry" \
  >"$work/release.proof"
echo "inclusion proof of entry $index (the release of k-2018 to Japan):"
sed 's/^/  /' "$work/release.proof"
printf 'verified with only the public key: '
"$accord" log verify-proof --log-key "$("$accord" log key --home "$work/KOR")" \
  --checkpoint "$work/KOR.checkpoint" --entry "$work/release.entry" --index "$index" \
  --proof "$(sed -n 's/^proof //p' "$work/release.proof")"
echo "Japan witnesses Korea's checkpoint:"
on JPN 2023-04-02T09:00:00+09:00 log witness --checkpoint "$work/KOR.checkpoint" \
  --out "$work/KOR.cosigned"
# The checkpoints of Korea's log that came to Japan as the evidence of its packages, proved
# consistent with the one Japan cosigned: a checkpoint of a private branch would show here.
on JPN 2023-04-02T09:00:00+09:00 log shown --party KOR | tee "$work/KOR.shown"
shown_sizes=$(sed -n 's/.*--from \([0-9,]*\) --to.*/\1/p' "$work/KOR.shown")
"$accord" log consistency --home "$work/KOR" --from "$shown_sizes" \
  --to "$(sed -n 2p "$work/KOR.checkpoint")" --json >"$work/KOR.proofs"
on JPN 2023-04-02T09:00:00+09:00 log shown --party KOR --proofs "$work/KOR.proofs"
