#!/usr/bin/env bash
# Development tokens: DIR/tokens for `controller serve --token-file` (one "ROLE TOKEN" line per role) and
# DIR/<node id>.token for each node's `--token-file`.
#
#   scripts/dev-tokens.sh DIR CONTROLLER_NAME NODE_ID ...
#   scripts/dev-tokens.sh certs controller edge-0 device-1 device-2
#
# The admin token is written to DIR/admin.token. Tokens are 32 random bytes, hex. Existing files are kept.
set -euo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 DIR CONTROLLER_NAME NODE_ID ..." >&2; exit 2; }
DIR=$1; shift; shift  # the controller needs no token of its own
mkdir -p "$DIR"
new() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
[[ -f "$DIR/admin.token" ]] || new >"$DIR/admin.token"
{ echo "# role token (scripts/dev-tokens.sh)"; echo "admin $(cat "$DIR/admin.token")"; } >"$DIR/tokens.new"
for id in "$@"; do
  [[ $id =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] || { echo "dev-tokens: bad node id $id" >&2; exit 2; }
  [[ -f "$DIR/$id.token" ]] || new >"$DIR/$id.token"
  echo "node:$id $(cat "$DIR/$id.token")" >>"$DIR/tokens.new"
done
mv "$DIR/tokens.new" "$DIR/tokens"
chmod "${KEY_MODE:-0600}" "$DIR"/*.token "$DIR/tokens"
echo "dev-tokens: $DIR/tokens (admin: $DIR/admin.token); node tokens for: $*"
