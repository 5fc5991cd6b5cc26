#!/usr/bin/env bash
# Starts the Concave backend (the single executable, dist/concave-backend) with its settings taken
# from the environment. It is the Docker image's entry point; it runs the same way outside Docker.
#
#   DATA_DIR             data directory: the SQLite file and credentials (default /convex/data)
#   INSTANCE_NAME        instance name (default: the one kept in DATA_DIR, else convex-self-hosted)
#   INSTANCE_SECRET_FILE a file holding the secret (64 hex chars), e.g. a Docker secret
#                        (/run/secrets/...): the secret then shows in no environment
#   INSTANCE_SECRET      the secret itself (64 hex chars). With neither, the backend generates
#                        one, keeps it in DATA_DIR/concave_credentials.json and prints an admin
#                        key at start
#   CONVEX_CLOUD_ORIGIN  public URL of the API (default http://127.0.0.1:<port>)
#   CONVEX_SITE_ORIGIN   public URL of HTTP actions (default http://127.0.0.1:<site port>)
#   PORT, SITE_PROXY_PORT, DASHBOARD_PORT, CONCAVE_INTERFACE, CONCAVE_LOG_FORMAT, CONCAVE_FUNCTION_TIMEOUT_MS,
#   CONCAVE_ACTION_TIMEOUT_MS, CONCAVE_FUNCTION_MEMORY_MB, CONCAVE_NODE_ACTION_MEMORY_MB,
#   CONCAVE_JOB_RETENTION_MS: as for `concave-backend --help`
#   CONCAVE_BACKEND      the executable (default: concave-backend beside this script, else
#                        ../dist/concave-backend)
#
# Extra arguments are passed on to the backend. The backend reads the variables itself, so the
# secret never appears on a command line.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
if [[ -n "${CONCAVE_BACKEND:-}" ]]; then
  backend="$CONCAVE_BACKEND"
elif [[ -x "$here/concave-backend" ]]; then
  backend="$here/concave-backend"
elif [[ -x "$here/../dist/concave-backend" ]]; then
  backend="$here/../dist/concave-backend"
else
  echo "error: concave-backend not found beside $0 or in $here/../dist; run 'npm run package' first" >&2
  exit 1
fi

# docker compose passes every variable it knows of (`NAME=${NAME:-}`), set or not: an empty one
# means "use the default", so it must not reach the backend as an empty string.
for name in INSTANCE_NAME INSTANCE_SECRET INSTANCE_SECRET_FILE CONVEX_CLOUD_ORIGIN CONVEX_SITE_ORIGIN PORT SITE_PROXY_PORT DASHBOARD_PORT \
  CONCAVE_INTERFACE CONCAVE_LOG_FORMAT CONCAVE_FUNCTION_TIMEOUT_MS CONCAVE_ACTION_TIMEOUT_MS \
  CONCAVE_FUNCTION_MEMORY_MB CONCAVE_NODE_ACTION_MEMORY_MB CONCAVE_JOB_RETENTION_MS CONCAVE_LOCAL_STORAGE; do
  if [[ -z "${!name:-}" ]]; then
    unset "$name"
  fi
done

DATA_DIR="${DATA_DIR:-/convex/data}"
mkdir -p "$DATA_DIR"

# exec: the backend becomes this process (PID 1 in a container) and gets SIGTERM/SIGINT itself.
exec "$backend" --local-storage "$DATA_DIR" "$@"
