#!/usr/bin/env bash
# The node's put/get against raw SQLite and its sealing against `openssl speed`, in one run, with
# the ratios against the issue's targets (docs/perf.md, "Node: put/get and sealing (issue 3)").
#
#   1. accord_node_bench, the AEAD benchmarks (16 and 64 KiB) beside the same work done on EVP
#      directly in process, 3 repetitions;
#   2. openssl speed -evp aes-256-gcm at the same sizes, encrypt and -decrypt (and -aead, the
#      per-message sequence, for reference), 3 runs each, right after;
#   3. accord_node_bench, put/get through the node and raw SQLite in alternation at each store
#      size, then where the time goes, 3 repetitions (pre-filling to a million objects: ~35 s);
#   4. a summary of medians and ratios.
#
# Usage: bench/node_bench.sh [--sizes=10000,100000,1000000]   (about 2.5 minutes on 2 cores)
# Environment: NO_BUILD=1 skips the build; OUT=DIR keeps the JSON and logs in DIR.
# Run it alone: `flock /tmp/accord-bench.lock bash bench/node_bench.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bench=build/release/bench/accord_node_bench
if [ "${NO_BUILD:-0}" != 1 ]; then
  flock /tmp/accord-build.lock cmake --preset release >/dev/null
  flock /tmp/accord-build.lock cmake --build build/release --target accord_node_bench >/dev/null
fi
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
reps=(--benchmark_repetitions=3 --benchmark_report_aggregates_only=true)

echo "== 1. accord AEAD (Aead::Encrypt / Decrypt) beside EVP in process" >&2
"$bench" "${reps[@]}" --benchmark_filter='^BM_(Seal|Open)/' \
  --benchmark_out="$out/aead.json" --benchmark_out_format=json "$@" >&2

echo "== 2. openssl speed -evp aes-256-gcm" >&2
: >"$out/openssl.txt"
for bytes in 65536 16384; do
  for mode in encrypt decrypt aead; do
    flags=()
    [ "$mode" = decrypt ] && flags=(-decrypt)
    [ "$mode" = aead ] && flags=(-aead)
    for run in 1 2 3; do
      rate=$(openssl speed -mr "${flags[@]}" -evp aes-256-gcm -bytes "$bytes" -seconds 3 2>/dev/null |
        awk -F: '/^\+F:/ { print $4 }')
      echo "$mode $bytes $run $rate" | tee -a "$out/openssl.txt" >&2
    done
  done
done

echo "== 3. accord node put/get and raw SQLite" >&2
"$bench" "${reps[@]}" --benchmark_filter='^BM_(Put|Get|Node|Sqlite|Store)' \
  --benchmark_out="$out/node.json" --benchmark_out_format=json "$@" 2>&1 | tee "$out/node.log" >&2

echo "== 4. summary (medians of 3; JSON and logs in $out)"
python3 - "$out" <<'PY'
import json, statistics, sys, re

out = sys.argv[1]
med = {}
context = {}
for f in ("aead.json", "node.json"):
    data = json.load(open(f"{out}/{f}"))
    context = data["context"]
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        # Names carry /iterations:N and /real_time suffixes; the summary keys on the rest.
        name = re.sub(r"/(min_time:[0-9.]+|iterations:[0-9]+|real_time)", "", b["run_name"])
        med[name] = b

ssl = {}
for line in open(f"{out}/openssl.txt"):
    mode, size, _, rate = line.split()
    ssl.setdefault((mode, int(size)), []).append(float(rate))
ssl = {k: statistics.median(v) for k, v in ssl.items()}

def gbs(x):
    return f"{x / 1e9:.2f} GB/s"

print(f"date {context.get('date')}, {context.get('num_cpus')} CPUs at "
      f"{context.get('mhz_per_cpu')} MHz, load {context.get('load_avg')}")
print()
print("Sealing with AES-256-GCM: Aead (a 142-byte label as associated data) against")
print("  EVP       EVP_{En,De}cryptUpdate looping on one context, in process, in alternation with Aead")
print("  openssl   openssl speed [-decrypt] -evp aes-256-gcm -bytes N -seconds 3, right after")
print(f"{'':24} {'accord':>10} {'EVP':>10} {'ratio':>6} {'openssl':>10} {'ratio':>6}  target 80%")
for size in (65536, 16384):
    for op, mode, what in (("Seal", "encrypt", "Encrypt"), ("Open", "decrypt", "Decrypt")):
        b = med.get(f"BM_{op}/bytes:{size}")
        if b is None or (mode, size) not in ssl:
            continue
        ours, ref = b["accord_per_s"], ssl[(mode, size)]
        print(f"{'Aead::' + what + f' {size // 1024} KiB':24} {gbs(ours):>10} {gbs(b['evp_per_s']):>10} "
              f"{b['ratio']:6.0%} {gbs(ref):>10} {ours / ref:6.0%}")
for size in (65536, 16384):
    b = med.get(f"BM_Seal/bytes:{size}")
    if b and ("aead", size) in ssl:
        print(f"  {size // 1024} KiB per message: EVP with the cipher fetched once and a reused context "
              f"{gbs(b['message_per_s'])} (Aead {b['ratio_message']:.0%} of it); "
              f"openssl speed -aead {gbs(ssl[('aead', size)])}")
print()

sizes = sorted({int(m.group(1)) for n in med for m in [re.search(r"/objects:(\d+)$", n)] if m})
print("1 KiB objects: accord Node vs raw SQLite, measured in alternation (same pragmas,")
print("synchronous=FULL, one transaction per put; gets at random ids; `+log`: the raw select then a")
print("~150-byte record inserted in its own transaction, as Node::Read logs every read)")
print(f"{'objects':>9} {'node put/s':>11} {'sqlite put/s':>13} {'ratio':>6} "
      f"{'node get/s':>11} {'sqlite get/s':>13} {'ratio':>6} {'+log get/s':>11} {'ratio':>6}")
for n in sizes:
    put, get = med.get(f"BM_Put/objects:{n}"), med.get(f"BM_Get/objects:{n}")
    if put is None or get is None:
        continue
    print(f"{n:>9} {put['node_per_s']:>11,.0f} {put['sqlite_per_s']:>13,.0f} {put['ratio']:6.0%} "
          f"{get['node_per_s']:>11,.0f} {get['sqlite_per_s']:>13,.0f} {get['ratio']:6.0%} "
          f"{get['logged_per_s']:>11,.0f} {get['ratio_logged']:6.0%}")
print("target: node ≥ 50% of raw SQLite")
print()
print("Where the time goes (medians, µs per operation)")
for name, b in med.items():
    if name.startswith(("BM_Store", "BM_SqlitePutNormal", "BM_NodeSeal")):
        t = b["real_time"] if b["time_unit"] == "ns" else float("nan")
        print(f"  {name:44} {t / 1000:9.1f} µs   {b['items_per_second']:>11,.0f}/s")
PY
