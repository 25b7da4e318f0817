#!/usr/bin/env bash
# End-to-end tests of the `accord` command on examples/gsomia: every output is compared with a
# golden file in tests/cli/golden/. Usage: cli_test.sh ACCORD_BINARY SOURCE_DIR
# UPDATE_GOLDEN=1 rewrites the golden files instead and exits 1 (review the diff, then run again).
set -uo pipefail
accord=$1
src=$2
golden=$src/tests/cli/golden
policy=$src/examples/gsomia
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failures=0
passed=0

# check NAME EXPECTED_EXIT COMMAND...: runs COMMAND, compares stdout+stderr and the exit code.
check() {
  local name=$1 expected=$2
  shift 2
  "$@" >"$out/$name" 2>&1
  local code=$?
  # Paths differ between checkouts; golden files hold them relative to the source tree.
  sed -i "s#$src/##g" "$out/$name"
  if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
    cp "$out/$name" "$golden/$name"
  fi
  if [ "$code" != "$expected" ]; then
    echo "FAIL $name: exit code $code, expected $expected"
    cat "$out/$name"
    failures=$((failures + 1))
  elif ! diff -u "$golden/$name" "$out/$name"; then
    echo "FAIL $name: output differs from $golden/$name"
    failures=$((failures + 1))
  else
    passed=$((passed + 1))
  fi
}

check decide.jsonl 0 "$accord" decide --policy "$policy" --requests "$policy/requests.jsonl"
# The main job's table (scripts/run-example.sh pipes decide into scripts/show-decisions.py).
check decide-table.txt 0 sh -c "\"$accord\" decide --policy \"$policy\" --requests \"$policy/requests.jsonl\" | python3 \"$src/scripts/show-decisions.py\""
# A line over 16 MiB is answered as invalid and skipped; the next line is still answered.
{ head -c 17000000 /dev/zero | tr '\0' 'x'; echo; head -n 1 "$policy/requests.jsonl"; } >"$out/long.jsonl"
check decide-long-line.jsonl 0 "$accord" decide --no-explain --policy "$policy" --requests "$out/long.jsonl"
check decide-stdin.jsonl 0 sh -c "\"$accord\" decide --threads 1 --no-explain --policy \"$policy\" < \"$policy/requests.jsonl\""
for at in 2016-11-22T23:59:59+09:00 2019-08-23T15:25:00+09:00 2019-11-22T17:59:59+09:00 \
          2019-11-22T18:00:00+09:00 2019-11-23 2023-03-21T09:00:00+09:00; do
  check "status-$at.json" 0 "$accord" agreement status --policy "$policy" --at "$at" --json
done
check status-no-suspension.json 0 "$accord" agreement status --policy "$src/examples/gsomia-no-suspension" \
  --id kor-jpn-gsomia --at 2019-11-23 --json
check status.txt 0 "$accord" agreement status --policy "$policy" --at 2019-11-23
# DESIGN §2.7: a suspended notice is reported beside another party's active one that will end the
# agreement (Japan's notice of 2020-01-10, an invented event, applies to the 2020 anniversary).
cp -r "$policy" "$out/two-notices"
python3 - "$out/two-notices/agreements/kor-jpn-gsomia.toml" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
at = text.index('[[event]]\nkind = "notice-withdrawn"')
notice = '[[event]]\nkind = "termination-notice"\nby = "JPN"\nat = 2020-01-10T00:00:00+09:00\n\n'
open(path, "w").write(text[:at] + notice + text[at:])
PY
check status-two-notices.txt 0 "$accord" agreement status --policy "$out/two-notices" \
  --id kor-jpn-gsomia --at 2020-06-01
check status-two-notices.json 0 "$accord" agreement status --policy "$out/two-notices" \
  --id kor-jpn-gsomia --at 2020-06-01 --json
check list.txt 0 "$accord" agreement list --policy "$policy" --at 2020-01-01T00:00:00Z
check timeline.json 0 "$accord" agreement timeline --policy "$policy" --id kor-jpn-gsomia --at 2024-01-01 --json
check timeline.txt 0 "$accord" agreement timeline --policy "$policy" --id kor-jpn-gsomia --at 2024-01-01
check flows-2015.json 0 "$accord" flows --policy "$policy" --at 2015-06-01T00:00:00+09:00 --json
check flows-2018.txt 0 "$accord" flows --policy "$policy" --at 2018-01-01 --zone +09:00
check replay.txt 0 "$accord" replay --policy "$src/examples/gsomia-no-suspension"
check check.txt 0 "$accord" check --policy "$policy"
check check-bad.txt 1 "$accord" check --policy "$src/tests/cli/bad-policy"
check unknown-agreement.txt 2 "$accord" agreement status --policy "$policy" --id nope --at 2020-01-01
check bad-at.txt 2 "$accord" flows --policy "$policy" --at yesterday
check missing-file.txt 3 "$accord" decide --policy "$policy" --requests /nonexistent/requests.jsonl
check requests-directory.txt 3 "$accord" decide --policy "$policy" --requests /
check no-command.txt 2 "$accord"

# Merkle proofs on bare hashes (the RFC 9162 test tree of 8 leaves).
root8=5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328
root6=76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef
path4=4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658,ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0,d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7
leaf4=bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b
check inclusion-valid.txt 0 "$accord" log verify-inclusion --leaf-hash $leaf4 --index 4 --size 8 --root $root8 --proof $path4
check inclusion-wrong-index.txt 1 "$accord" log verify-inclusion --leaf-hash $leaf4 --index 5 --size 8 --root $root8 --proof $path4
check inclusion-bad-hex.txt 2 "$accord" log verify-inclusion --leaf-hash xyz --index 4 --size 8 --root $root8 --proof $path4
consistency=0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a,ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0,d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7
check consistency-valid.txt 0 "$accord" log verify-consistency --size1 6 --size2 8 --root1 $root6 --root2 $root8 --proof $consistency
check consistency-swapped.txt 1 "$accord" log verify-consistency --size1 6 --size2 8 --root1 $root8 --root2 $root6 --proof $consistency
peter=PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW
enoch=EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop
fixtures=$src/tests/cli/fixtures
check verify-proof-valid.txt 0 "$accord" log verify-proof --log-key $peter --origin accord.example/test \
  --checkpoint "$fixtures/checkpoint-8.txt" --entry "$fixtures/entry-4.bin" --index 4 --proof $path4
check verify-proof-wrong-entry.txt 1 "$accord" log verify-proof --log-key $peter --origin accord.example/test \
  --checkpoint "$fixtures/checkpoint-8.txt" --entry "$fixtures/checkpoint-8.txt" --index 4 --proof $path4
# The checkpoint must be the log's own: its origin is --origin, by default the key's name. A key
# also signs what is not its log's checkpoint (an accord node cosigns its partners' with it).
check verify-proof-other-origin.txt 1 "$accord" log verify-proof --log-key $peter --checkpoint "$fixtures/checkpoint-8.txt" \
  --entry "$fixtures/entry-4.bin" --index 4 --proof $path4
check verify-proof-wrong-origin.txt 1 "$accord" log verify-proof --log-key $peter --origin accord.example/other \
  --checkpoint "$fixtures/checkpoint-8.txt" --entry "$fixtures/entry-4.bin" --index 4 --proof $path4
check verify-proof-wrong-key.txt 1 "$accord" log verify-proof --log-key $enoch --checkpoint "$fixtures/checkpoint-8.txt" \
  --entry "$fixtures/entry-4.bin" --index 4 --proof $path4
check consistency-backwards.txt 2 "$accord" log verify-consistency --size1 8 --size2 6 --root1 $root8 --root2 $root6 --proof $consistency
# A tree of size 0 has one root, SHA-256 of nothing.
empty=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
check consistency-from-empty.txt 0 "$accord" log verify-consistency --size1 0 --size2 8 --root1 $empty --root2 $root8 --proof ""
check consistency-empty-other-root.txt 1 "$accord" log verify-consistency --size1 0 --size2 8 --root1 $root6 --root2 $root8 --proof ""
check consistency-empty-both-other-root.txt 1 "$accord" log verify-consistency --size1 0 --size2 0 --root1 $root8 --root2 $root8 --proof ""
# A proof with no hashes may be left out, as verify-proof allows: from a tree to itself, and the
# only entry of a tree of one, whose root is its leaf hash.
check consistency-same-size-no-proof.txt 0 "$accord" log verify-consistency --size1 8 --size2 8 --root1 $root8 --root2 $root8
check consistency-same-size-other-root.txt 1 "$accord" log verify-consistency --size1 8 --size2 8 --root1 $root8 --root2 $root6
check inclusion-one-leaf-no-proof.txt 0 "$accord" log verify-inclusion --leaf-hash $leaf4 --index 0 --size 1 --root $leaf4
check inclusion-no-proof-missing-path.txt 1 "$accord" log verify-inclusion --leaf-hash $leaf4 --index 4 --size 8 --root $root8
# Sizes and indices are decimal numbers from 0: -1 is refused, not read as 2^64 - 1.
check inclusion-negative-index.txt 2 "$accord" log verify-inclusion --leaf-hash $leaf4 --index -1 --size 8 --root $root8 --proof $path4
check inclusion-negative-size.txt 2 "$accord" log verify-inclusion --leaf-hash $leaf4 --index 4 --size -8 --root $root8 --proof $path4
check inclusion-octal-size.txt 2 "$accord" log verify-inclusion --leaf-hash $leaf4 --index 4 --size 010 --root $root8 --proof $path4
check consistency-negative-sizes.txt 2 "$accord" log verify-consistency --size1 -1 --size2 -1 --root1 $root8 --root2 $root8 --proof ""
check consistency-overflow-size.txt 2 "$accord" log verify-consistency --size1 6 --size2 18446744073709551616 --root1 $root6 --root2 $root8 --proof $consistency
check verify-proof-negative-index.txt 2 "$accord" log verify-proof --log-key $peter --origin accord.example/test \
  --checkpoint "$fixtures/checkpoint-8.txt" --entry "$fixtures/entry-4.bin" --index -4 --proof $path4
# A file is read only up to what it may hold: /dev/zero is refused, not read until memory ends;
# a missing entry is named.
check verify-proof-endless-checkpoint.txt 3 "$accord" log verify-proof --log-key $peter \
  --checkpoint /dev/zero --entry "$fixtures/entry-4.bin" --index 4 --proof $path4
check verify-proof-missing-entry.txt 3 "$accord" log verify-proof --log-key $peter \
  --checkpoint "$fixtures/checkpoint-8.txt" --entry /nonexistent/entry --index 4 --proof $path4
# Standard input is one file: the checkpoint and the entry cannot both be `-`.
check verify-proof-both-stdin.txt 2 "$accord" log verify-proof --log-key $peter \
  --checkpoint - --entry - --index 4 --proof $path4

echo "$passed passed, $failures failed"
if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
  # Every output was compared with itself: update mode proves nothing, so it never passes.
  echo "UPDATE_GOLDEN=1: golden files rewritten; review 'git diff tests/cli/golden' and run again without it"
  exit 1
fi
[ "$failures" = 0 ]
