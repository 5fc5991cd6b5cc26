# Sourced, not run. In the Docker image BASH_ENV points here, so every bash script started in the
# container (`docker compose exec backend ./generate_admin_key.sh`) sees the instance the backend
# runs as: when INSTANCE_SECRET is empty, the name and secret the backend generated and keeps in
# $DATA_DIR/concave_credentials.json are exported. run_backend.sh is left alone: with no secret
# given, the backend reads that file itself (and prints an admin key at every start).
# With INSTANCE_SECRET_FILE set, the secret is read from that file instead.
if [[ -z "${INSTANCE_SECRET:-}" && -n "${INSTANCE_SECRET_FILE:-}" && "${0##*/}" != run_backend.sh ]]; then
  if [[ -r "$INSTANCE_SECRET_FILE" ]]; then
    # Trimmed of surrounding white space, as the backend reads it.
    INSTANCE_SECRET="$(<"$INSTANCE_SECRET_FILE")"
    INSTANCE_SECRET="${INSTANCE_SECRET#"${INSTANCE_SECRET%%[![:space:]]*}"}"
    INSTANCE_SECRET="${INSTANCE_SECRET%"${INSTANCE_SECRET##*[![:space:]]}"}"
    export INSTANCE_SECRET
  fi
  # The backend's default instance name, when the name isn't given.
  if [[ -z "${INSTANCE_NAME:-}" ]]; then
    export INSTANCE_NAME=convex-self-hosted
  fi
elif [[ -z "${INSTANCE_SECRET:-}" && "${0##*/}" != run_backend.sh ]]; then
  __concave_credentials="${DATA_DIR:-/convex/data}/concave_credentials.json"
  if [[ -r "$__concave_credentials" ]]; then
    __concave_secret="$(sed -n 's/.*"instanceSecret": *"\([0-9a-fA-F]*\)".*/\1/p' "$__concave_credentials")"
    if [[ -n "$__concave_secret" ]]; then
      export INSTANCE_SECRET="$__concave_secret"
      if [[ -z "${INSTANCE_NAME:-}" ]]; then
        INSTANCE_NAME="$(sed -n 's/.*"instanceName": *"\([^"]*\)".*/\1/p' "$__concave_credentials")"
        export INSTANCE_NAME
      fi
    fi
    unset __concave_secret
  fi
  unset __concave_credentials
fi
