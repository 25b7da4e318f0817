#!/usr/bin/env bash
# Fails when a module includes a header it must not (DESIGN.md §5): dependencies point one way,
# base <- model <- {config, policy} <- node <- server <- cli, base <- crypto <- store <- node and
# base <- ledger <- node (the `allowed` table below), and no module reaches into another's
# private headers.
# Tests (*_test.cc, *_testing.h) may also use config to load the examples.
set -euo pipefail
cd "$(dirname "$0")/.."

# The module that owns each public header.
declare -A owner=(
  [status.h]=base [time.h]=base [secret.h]=base [clock.h]=base [harden.h]=base [json.h]=base [utf8.h]=base
  [file.h]=base
  [model.h]=model
  [config.h]=config
  [lifecycle.h]=policy [engine.h]=policy [request_json.h]=policy [policy_json.h]=policy
  [merkle.h]=ledger [note.h]=ledger
  [crypto.h]=crypto [keystore.h]=crypto [pki.h]=crypto
  [store.h]=store
  [node.h]=node
  [server.h]=server [federation.h]=server [https_client.h]=server
)
# What each module may include, besides its own headers.
declare -A allowed=(
  [base]=""
  [model]="base"
  [config]="base model"
  [policy]="base model"
  [ledger]="base"
  [crypto]="base"
  [store]="base crypto"
  [node]="base model config policy crypto store ledger"
  [server]="base model config policy crypto store ledger node"
  [cli]="base model config policy ledger crypto store node server"
)

status=0
for header in include/accord/*.h; do
  name=$(basename "$header")
  if [ -z "${owner[$name]:-}" ]; then
    echo "check-deps: include/accord/$name has no owning module in scripts/check-deps.sh"
    status=1
  fi
done
for dir in src/*/; do
  module=$(basename "$dir")
  for file in "$dir"*.cc "$dir"*.h; do
    [ -e "$file" ] || continue
    case "$file" in *_test.cc | *_testing.h) extra="config" ;; *) extra="" ;; esac
    while IFS= read -r line; do
      if [[ $line =~ ^#include\ \"accord/([a-z0-9_]+\.h)\" ]]; then
        target=${owner[${BASH_REMATCH[1]}]:-unknown}
        if [ "$target" != "$module" ] && [[ " ${allowed[$module]} $extra " != *" $target "* ]]; then
          echo "check-deps: $file includes accord/${BASH_REMATCH[1]} ($target), which $module must not use"
          status=1
        fi
      elif [[ $line =~ ^#include\ \"([^\"]*/[^\"]*)\" ]]; then
        echo "check-deps: $file includes ${BASH_REMATCH[1]}: another module's private header"
        status=1
      fi
    done <"$file"
  done
done
[ "$status" = 0 ] && echo "check-deps: module dependencies point one way"
exit "$status"
