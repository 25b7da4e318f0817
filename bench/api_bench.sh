#!/usr/bin/env bash
# The live node's HTTPS API against nginx (Debian package) in one run, on loopback, with mutual
# TLS 1.3 and keep-alive on both, measured by the same client (bench/load.cc: 8, 32 or 128 concurrent
# clients, one connection each; in part 1 event-driven on two threads, as `wrk -t2` would run
# them, so that the client's threads do not crowd out the server's on two cores):
#
#   1. nginx serving a small static file (the upper bound of an HTTPS server on this machine)
#      and accord's object reads (GET /v1/objects/ID: decision, decryption, durable log entry),
#      alternated, 3 rounds, with 8, 32 and 128 clients; medians and the ratio (target: reads
#      >= 50% of nginx);
#   2. POST /v1/decide with batches of 100, 3 rounds;
#   3. releases Korea -> Japan: the request's latency, and from Korea's outbox the time from the
#      commit of the release to the commit of Japan's receipt in Korea's store (delivered and
#      receipted; target p99 < 5 ms), at about 100 releases/s from one client, and with 8
#      clients as fast as they can (deliveries then queue and go in batches: the line ends with
#      the envelopes delivered and the requests that carried them).
#
# Usage: bench/api_bench.sh [REQUESTS_PER_CLIENT]   (default 3000; about 3 minutes on 2 cores)
# Environment: NO_BUILD=1 skips the build; ACCORD_BIN=PATH runs that accord binary; PARTS=13 runs parts 1 and 3 only (default 123);
# TMPDIR=/dev/shm puts the nodes' homes on tmpfs, which shows what the path costs without the disk's syncs (docs/perf.md).
# LOGS=DIR keeps the nodes' logs there; RELEASES=N releases from one client (default 1000).
# LOAD_THREADS=N runs part 1's clients on N threads (default 2); 0 gives each client a blocking
# thread of its own, as this script did before 2026-12-01 (docs/perf.md, seventh pass).
# CLIENT_COUNTS="8 32 128" are part 1's numbers of concurrent clients (each client makes
# REQUESTS_PER_CLIENT * 8 / clients requests, so every round makes the same number of requests).
# Run it alone: flock /tmp/accord-bench.lock ...
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3000}
ACCORD_WITH_NGINX=1 bash scripts/install-deps.sh  # nginx-light (Debian) for the comparison
PATH=$PATH:/usr/sbin  # where nginx is, and not on a user's PATH
if [ "${NO_BUILD:-0}" != 1 ]; then
  flock /tmp/accord-build.lock cmake --preset release >/dev/null
  flock /tmp/accord-build.lock cmake --build build/release --target accord accord_load >/dev/null
fi
accord=${ACCORD_BIN:-build/release/src/cli/accord}  # ACCORD_BIN: another build, for A/B runs
load=build/release/bench/accord_load
work=$(mktemp -d)
source scripts/live-lib.sh
nginx_pid=""
cleanup() {
  live_stop_all || true
  [ -z "${LOGS:-}" ] || { mkdir -p "$LOGS" && cp "$work"/net/run/*.log "$LOGS"/; }
  [ -z "$nginx_pid" ] || kill "$nginx_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export ACCORD_PASSPHRASE="bench passphrase"

live_setup "$accord" "$work/net" examples/gsomia
for p in KOR JPN USA; do live_start "$p"; done
pki=$work/net/pki
as_kor=(--ca "$pki/ca.pem" --cert "$pki/users/kor-analyst.pem" --key "$pki/users/kor-analyst.key")

# nginx with the node's certificate, the same CA for client certificates, TLS 1.3 only.
mkdir -p "$work/nginx/html" "$work/nginx/tmp"
printf '{"status":"ok","party":"KOR","log_size":12345}\n' >"$work/nginx/html/small.json"
chmod 755 "$work" "$work/nginx" "$work/nginx/html"  # nginx's workers run as an unprivileged user
chmod 644 "$work/nginx/html/small.json"
for attempt in 1 2 3 4 5; do
  nginx_port=$((10000 + RANDOM % 22000))  # below the ephemeral ports (32768 and up)
  cat >"$work/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp;
  proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp;
  uwsgi_temp_path $work/nginx/tmp;
  scgi_temp_path $work/nginx/tmp;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate $pki/nodes/KOR.pem;
    ssl_certificate_key $pki/nodes/KOR.key;
    ssl_client_certificate $pki/ca.pem;
    ssl_verify_client on;
    root $work/nginx/html;
  }
}
CONF
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
  nginx_pid=$!
  # Ready once it answers over mutual TLS; gone if it could not bind (another attempt then).
  for _ in $(seq 1 50); do
    kill -0 "$nginx_pid" 2>/dev/null || break
    curl -sf --max-time 1 --cacert "$pki/ca.pem" --cert "$pki/users/kor-analyst.pem" \
      --key "$pki/users/kor-analyst.key" "https://127.0.0.1:$nginx_port/small.json" >/dev/null && break
    sleep 0.1
  done
  if kill -0 "$nginx_pid" 2>/dev/null; then break; fi
  nginx_pid=""
done
[ -n "$nginx_pid" ] || { echo "nginx did not start" >&2; cat "$work/nginx/error.log" >&2; exit 1; }
echo "nginx $(nginx -v 2>&1 | sed 's/.*\///') (workers: $(nproc)) on port $nginx_port; accord KOR on $(live_port KOR)"
echo "the nodes' disk: $(python3 bench/fsync_probe.py "$work")"

live_curl KOR kor-analyst -X POST -H 'Content-Type: application/json' \
  -d "{\"id\":\"k-bench\",\"level\":\"II\",\"topics\":[\"dprk-missile\"],\"rel_to\":[\"JPN\"],\"payload_base64\":\"$(head -c 1024 /dev/urandom | base64 -w0)\"}" \
  "$(live_url KOR /v1/objects)" >/dev/null

rate() { sed -n 's/.* rate \([0-9]*\)\/s.*/\1/p' "$1"; }
row() { awk -v k="$2" '$1 == k { print $3, $5 }' "$1"; } # p50 p99
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# Each read's log entry is durable before its payload leaves: concurrent reads share a commit
# (group commit), so their rate grows with the clients in flight where nginx's does not.
parts=${PARTS:-123}
threads=()
[ "${LOAD_THREADS:-2}" = 0 ] || threads=(--threads "${LOAD_THREADS:-2}")
for clients in ${CLIENT_COUNTS:-8 32 128}; do
  [[ $parts == *1* ]] || break
  per=$((n * 8 / clients))
  echo
  echo "== 1. static file on nginx vs object reads on accord, $clients clients x $per requests ${threads[*]:-(a thread each)}, 3 rounds"
  for round in 1 2 3; do
    "$load" --port "$nginx_port" "${as_kor[@]}" --clients "$clients" --requests "$per" ${threads[@]+"${threads[@]}"} --get /small.json >"$work/nginx.$round"
    "$load" --port "$(live_port KOR)" "${as_kor[@]}" --clients "$clients" --requests "$per" ${threads[@]+"${threads[@]}"} --read k-bench >"$work/read.$round"
    echo "round $round: nginx $(rate "$work/nginx.$round")/s (p50/p99 µs $(row "$work/nginx.$round" get)), accord reads $(rate "$work/read.$round")/s (p50/p99 µs $(row "$work/read.$round" read))"
  done
  nginx_rate=$(for r in 1 2 3; do rate "$work/nginx.$r"; done | median)
  read_rate=$(for r in 1 2 3; do rate "$work/read.$r"; done | median)
  echo "median, $clients clients: nginx $nginx_rate/s, accord reads $read_rate/s: $((100 * read_rate / nginx_rate))% of nginx (target >= 50%)"
done

if [[ $parts == *2* ]]; then
  echo
  echo "== 2. POST /v1/decide, batches of 100 requests, 8 clients x $((n / 10)), 3 rounds"
  for round in 1 2 3; do
    "$load" --port "$(live_port KOR)" "${as_kor[@]}" --clients 8 --requests $((n / 10)) --decide 100 >"$work/decide.$round"
    echo "round $round: $(rate "$work/decide.$round") batches/s = $(($(rate "$work/decide.$round") * 100)) decisions/s (p50/p99 µs $(row "$work/decide.$round" decide))"
  done

fi

[[ $parts == *3* ]] || exit 0
echo
echo "== 3. releases Korea -> Japan, delivered and receipted"
delivery() { # percentiles of done - queued (µs) over the outbox rows delivered since seq $1
  sqlite3 "$work/net/KOR/state.db" \
    "SELECT done_us - queued_us FROM outbox WHERE state = 1 AND seq > $1 ORDER BY 1" >"$work/lat"
  awk '{ a[NR] = $1 } END { printf "%d releases: p50 %d µs, p90 %d µs, p99 %d µs, max %d µs", NR,
    a[int(NR * 0.5) + 1], a[int(NR * 0.9) + 1], a[int(NR * 0.99) + 1], a[NR] }' "$work/lat"
}
wait_delivered() {
  local i
  for i in $(seq 1 600); do
    live_curl KOR kor-analyst "$(live_url KOR /v1/outbox)" | grep -q '"pending":[1-9]' || return 0
    sleep 0.1
  done
}
jpn_counters() { # KOR's federation counters for JPN: "DELIVERED REQUESTS" ("0 0" before them)
  local c
  c=$(live_curl KOR kor-analyst "$(live_url KOR /v1/federation/peers)" |
    grep -oE '"party":"JPN"[^}]*' | grep -oE '"delivered":[0-9]+,"requests":[0-9]+' || true)
  [ -n "$c" ] && echo "$c" | sed -E 's/"delivered":([0-9]+),"requests":([0-9]+)/\1 \2/' || echo "0 0"
}
unproved() { # the checkpoints shown as evidence and not yet proved (decision #86), per node
  local p out=""
  for p in KOR JPN; do
    out+="$p $(sqlite3 "$work/net/$p/state.db" "SELECT count(*) FROM shown_checkpoints WHERE state = 0") "
  done
  echo "${out% }"
}
run_releases() { # CLIENTS REQUESTS PAUSE_MS LABEL
  last=$(sqlite3 "$work/net/KOR/state.db" "SELECT coalesce(max(seq), 0) FROM outbox")
  read -r d0 r0 < <(jpn_counters)
  "$load" --port "$(live_port KOR)" "${as_kor[@]}" --clients "$1" --requests "$2" \
    --pause-ms "$3" --release JPN >"$work/release.$1"
  wait_delivered
  read -r d1 r1 < <(jpn_counters)
  echo "$4: release request p50/p99 µs $(row "$work/release.$1" release); commit -> receipt recorded: $(delivery "$last"); $((d1 - d0)) envelopes in $((r1 - r0)) requests; checkpoints shown and not yet proved: $(unproved)"
}
# One client, a release every 10 ms (create and release alternate with a 5 ms pause): the
# latency of a delivery without a queue in front of it.
# 1,000 releases by default, so that the p99 is the 10th slowest rather than the 3rd of 300.
run_releases 1 $((${RELEASES:-1000} * 2)) 5 "1 client, ~100 releases/s"
# Eight clients as fast as they can: deliveries queue, and go in batches (decision #54).
run_releases 8 $((n / 5 * 2 / 8)) 0 "8 clients, no pause"
