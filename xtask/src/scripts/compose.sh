#!/bin/sh
# compose.sh DIR PROJECT ARGS...: `docker compose` (v2) or `docker-compose` (v1), whichever the
# host has, in DIR, on DIR/docker-compose.yaml alone: no other compose file (compose.yaml, an
# override) and no .env of DIR is read, whatever someone left there (an empty env file is given
# instead; compose 1.x refuses /dev/null).
set -eu
d=$1; project=$2; shift 2
cd "$d"
if docker compose version >/dev/null 2>&1; then
  compose="docker compose"
elif command -v docker-compose >/dev/null 2>&1; then
  compose=docker-compose
else
  echo "neither \`docker compose\` (v2) nor \`docker-compose\` (v1) is installed on this host" >&2
  exit 127
fi
no_env=$(mktemp)
trap 'rm -f "$no_env"' EXIT
set +e
# shellcheck disable=SC2086 # `docker compose` is two words
$compose -p "$project" -f "$d/docker-compose.yaml" --project-directory "$d" --env-file "$no_env" "$@"
status=$?
set -e
exit "$status"
