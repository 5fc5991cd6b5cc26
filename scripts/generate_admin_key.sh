#!/usr/bin/env bash
# Prints an admin key for this Concave instance. Like Convex's self-hosted
# generate_admin_key.sh, the key itself is always the last line of output.
# Reads INSTANCE_NAME and INSTANCE_SECRET from the environment.
set -euo pipefail

if [[ -z "${INSTANCE_NAME:-}" ]]; then
  echo "error: INSTANCE_NAME is not set" >&2
  exit 1
fi
if [[ -z "${INSTANCE_SECRET:-}" ]]; then
  echo "error: INSTANCE_SECRET is not set" >&2
  exit 1
fi
export INSTANCE_NAME INSTANCE_SECRET

here="$(dirname "$0")"
if [[ -x "$here/concave-backend" ]]; then
  keybroker=("$here/concave-backend" keybroker)
elif [[ -f "$here/../dist/keybroker.js" ]]; then
  keybroker=(node "$here/../dist/keybroker.js")
elif [[ -f "$here/dist/keybroker.js" ]]; then
  keybroker=(node "$here/dist/keybroker.js")
else
  echo "error: keybroker not found (looked for $here/concave-backend, $here/../dist/keybroker.js" \
    "and $here/dist/keybroker.js); run 'npm run build' first" >&2
  exit 1
fi

# The secret travels via the environment, not argv, so it never shows up in `ps`.
admin_key="$("${keybroker[@]}" generate-key | tail -n 1)"
echo "Admin key:"
echo "$admin_key"
