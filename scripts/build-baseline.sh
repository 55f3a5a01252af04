#!/usr/bin/env bash
# Builds the tcbench of an earlier commit into OUT, so `tcbench --baseline OUT`
# can run the earlier engine alternately with this one and report ratios.
# Usage: scripts/build-baseline.sh REF OUT. Prints nothing and exits 0 when REF
# is not in this clone (a shallow CI clone), so make bench runs without it.
set -euo pipefail
ref=$1 out=$2
rm -f "$out"
if ! git rev-parse --verify --quiet "$ref^{commit}" >/dev/null; then
  echo "bench: baseline $ref is not in this clone; running without it" >&2
  exit 0
fi
dir=$(mktemp -d)
trap 'git worktree remove --force "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
git worktree add --detach --quiet "$dir" "$ref"
mkdir -p "$(dirname "$out")"
(cd "$dir" && go build -o "$OLDPWD/$out" ./cmd/tcbench)
echo "bench: baseline tcbench from $(git rev-parse --short "$ref") in $out" >&2
