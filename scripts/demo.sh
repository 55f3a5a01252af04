#!/usr/bin/env bash
# make demo: a scripted trading session against a real server, over the
# order-entry protocol (TLS, pinned): orders, fills, a reject, a restart of
# the server and a reconnect with replay from the journal; then the audit log
# is verified offline as an auditor would.
set -euo pipefail
data=${1:-./var}/demo
mkdir -p "$data"
out=$(mktemp)
trap 'rm -f "$out"; [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null || true' EXIT
key=$data/demo-key.json
rm -f "$key"

start() {
  bin/tradecore serve --data-dir "$data" --demo-key "$key" --order-entry 127.0.0.1:0 --market-data 127.0.0.1:0 --metrics - \
    --rate 20 --flow-sessions 1 \
    >>"$out" 2>>"$data/serve.log" &
  srv=$!
  for _ in $(seq 1 300); do [ -s "$key" ] && break; sleep 0.1; done
  [ -s "$key" ] || { echo "serve did not start; see $data/serve.log" >&2; exit 1; }
}
stop() { kill -TERM "$srv"; wait "$srv" || true; srv=; }
say() { printf '\n== %s\n' "$*"; }
tc() { echo "\$ tcclient $*"; bin/tcclient "$@" --key-file "$key" --wait 300ms; }

start
grep -E 'order entry on|key manifest' "$out" | sed 's/^/   /'
sleep 1 # the generated flow (another account, 20 orders/s) rests some sells near 250.00
say "a resting buy, then a buy that takes the flow's sells up to 255.00 (fills)"
tc place --symbol AAPL --side buy --qty 100 --price 240.00
tc place --symbol AAPL --side buy --qty 40 --price 255.00
say "self-trade prevention cannot be switched off by an order: the account's floor holds"
tc place --symbol AAPL --side sell --qty 40 --price 240.00 --stp off
say "a reject: a price outside the instrument's band, with the engine's reason code"
tc place --symbol AAPL --side buy --qty 10 --price 999.00
say "the server restarts (SIGTERM drains and logs the session out; the journal is replayed at start)"
stop
rm -f "$key"
start
say "a reconnect with replay: every message from sequence number 1, read back from the journal"
tc events --from 1
say "the next client reference after the reconnect"
tc next-ref
stop

pin=$(grep -o 'first key [0-9a-f]*' "$out" | head -1 | cut -d' ' -f3)
cmd="bin/auditverify --manifest $data/keys/manifest.json --pin $pin $data/audit"
say "the audit log of this run is in $data/audit; verify it offline with:"
echo "   $cmd"
echo
$cmd
