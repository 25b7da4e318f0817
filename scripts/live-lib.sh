# Functions for three live accord nodes (KOR, JPN, USA) on loopback, each `accord serve` with a
# configuration file naming the other two as partners. Sourced by scripts/live-demo.sh and by
# tests/cli/federation_test.sh; not run directly.
#
#   live_setup ACCORD DIR POLICY [--simulate]   PKI, homes, keys exchanged, serve.toml files
#   live_start PARTY [AT]                        starts `accord serve` (AT: simulated instant)
#   live_stop PARTY [SIGNAL]                     stops it (SIGTERM by default; KILL for a crash);
#                                                after SIGTERM, fails unless it exits 0 within 60 s
#   live_sanitizer_reports DIR                   the node logs under DIR with a sanitizer report
#   live_port PARTY                              the port it listens on
#   live_curl PARTY USER ARGS...                 curl to PARTY's node as USER (a subject id)
#
# Ports are free ones picked by each node (port 0) and written to DIR/run/PARTY.port, which the
# partners read before each connection, so a node restarted on another port is found again.

LIVE_PARTIES=(KOR JPN USA)
# Every node is on loopback: no proxy a user's environment names is asked to reach one.
export no_proxy='*' NO_PROXY='*'

live_setup() {
  LIVE_ACCORD=$1 LIVE_DIR=$2
  local policy=$3 simulate=${4:-}
  mkdir -p "$LIVE_DIR/run"
  : >"$LIVE_DIR/.accord-live"  # what live-demo.sh checks before it replaces a deployment
  "$LIVE_ACCORD" pki init --out "$LIVE_DIR/pki" --policy "$policy" >/dev/null
  local p q
  for p in "${LIVE_PARTIES[@]}"; do
    "$LIVE_ACCORD" node init --home "$LIVE_DIR/$p" --party "$p" --policy "$policy" \
      --kdf-cost 12 $simulate >/dev/null
    "$LIVE_ACCORD" keys export-public --home "$LIVE_DIR/$p" --out "$LIVE_DIR/run/$p.pub"
  done
  for p in "${LIVE_PARTIES[@]}"; do
    for q in "${LIVE_PARTIES[@]}"; do
      if [ "$p" != "$q" ]; then
        "$LIVE_ACCORD" keys import --home "$LIVE_DIR/$p" ${simulate:+--at 2014-12-01T00:00:00Z} \
          "$LIVE_DIR/run/$q.pub" >/dev/null
      fi
    done
    {
      printf '# accord serve configuration of %s (docs/api.md)\n' "$p"
      printf '[listen]\naddress = "127.0.0.1"\nport = 0\nport_file = "../run/%s.port"\n\n' "$p"
      printf '[tls]\nca = "../pki/ca.pem"\ncert = "../pki/nodes/%s.pem"\n' "$p"
      printf 'key = "../pki/nodes/%s.key"\n\n' "$p"
      printf '[federation]\nretry_initial_ms = 100\nretry_max_ms = 1000\n'
      printf 'witness_interval_ms = 500\n'
      for q in "${LIVE_PARTIES[@]}"; do
        # The partner's node certificate: it must present that certificate's key, both ways.
        [ "$p" = "$q" ] || printf '\n[[peer]]\nparty = "%s"\nport_file = "../run/%s.port"\n%s\n' \
          "$q" "$q" "cert = \"../pki/nodes/$q.pem\""
      done
    } >"$LIVE_DIR/$p/serve.toml"
  done
}

live_start() {
  local p=$1 at=${2:-}
  rm -f "$LIVE_DIR/run/$p.port"
  "$LIVE_ACCORD" serve --home "$LIVE_DIR/$p" ${at:+--at "$at"} >>"$LIVE_DIR/run/$p.log" 2>&1 &
  echo $! >"$LIVE_DIR/run/$p.pid"
  local i
  for i in $(seq 1 600); do
    [ -s "$LIVE_DIR/run/$p.port" ] && return 0
    kill -0 "$(cat "$LIVE_DIR/run/$p.pid")" 2>/dev/null || break
    sleep 0.05
  done
  echo "live_start: $p did not start; its log:" >&2
  cat "$LIVE_DIR/run/$p.log" >&2
  return 1
}

# Nodes that did not exit with status 0 within 60 s of a SIGTERM (live_stop): a test fails when
# this is not 0 at its end, since a sanitizer's report or a shutdown that hangs shows only here.
LIVE_BAD_STOPS=0

live_stop() {
  local p=$1 signal=${2:-TERM} pid status=0 i stopped=1
  pid=$(cat "$LIVE_DIR/run/$p.pid" 2>/dev/null) || return 0
  rm -f "$LIVE_DIR/run/$p.pid"
  # (stderr aside throughout: bash reports a job killed by a signal as it reaps it)
  {
    kill "-$signal" "$pid" || true
    for i in $(seq 1 1200); do
      kill -0 "$pid" || break
      sleep 0.05
    done
    if kill -0 "$pid"; then
      stopped=0
      kill -KILL "$pid" || true
    fi
    wait "$pid" || status=$?  # (not a failure of its own: callers may run under set -e)
  } 2>/dev/null
  [ "$signal" = TERM ] || return 0
  if [ "$stopped" = 0 ] || [ "$status" != 0 ]; then
    LIVE_BAD_STOPS=$((LIVE_BAD_STOPS + 1))
    if [ "$stopped" = 0 ]; then
      echo "live_stop: $p's node was still running 60 s after SIGTERM; killed. Its log ends:" >&2
    else
      echo "live_stop: $p's node exited with status $status after SIGTERM. Its log ends:" >&2
    fi
    tail -n 40 "$LIVE_DIR/run/$p.log" >&2
    return 1
  fi
}

live_stop_all() {
  local p status=0
  for p in "${LIVE_PARTIES[@]}"; do live_stop "$p" || status=1; done
  return "$status"
}

live_port() { cat "$LIVE_DIR/run/$1.port"; }

live_curl() {
  local p=$1 user=$2
  shift 2
  curl -sS --max-time 30 --cacert "$LIVE_DIR/pki/ca.pem" --cert "$LIVE_DIR/pki/users/$user.pem" \
    --key "$LIVE_DIR/pki/users/$user.key" "$@"
}

# The node logs under DIR (any depth) that hold a sanitizer's report; fails when there is none.
live_sanitizer_reports() {
  grep -rlE --include='*.log' \
    '(ERROR|WARNING): [A-Za-z]*Sanitizer|runtime error:' "$1" 2>/dev/null
}

# live_url PARTY PATH
live_url() { echo "https://127.0.0.1:$(live_port "$1")$2"; }
