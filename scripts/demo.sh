#!/usr/bin/env bash
# make demo: a short run of the trading core that leaves a real audit log in
# $DATA_DIR/demo, then verifies it as an auditor would and prints the command.
set -euo pipefail
data=${1:-./var}/demo
mkdir -p "$data"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
bin/tradecore serve --data-dir "$data" --duration 5s | tee "$out"
pin=$(grep -o 'first key [0-9a-f]*' "$out" | head -1 | cut -d' ' -f3)
cmd="bin/auditverify --manifest $data/keys/manifest.json --pin $pin $data/audit"
echo
echo "the audit log of this run is in $data/audit; verify it offline with:"
echo "  $cmd"
echo
$cmd
