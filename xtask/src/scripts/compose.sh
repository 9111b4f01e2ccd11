#!/bin/sh
# compose.sh DIR PROJECT ARGS...: `docker compose` (v2) or `docker-compose` (v1), whichever the
# host has, in DIR.
set -eu
d=$1; project=$2; shift 2
cd "$d"
if docker compose version >/dev/null 2>&1; then exec docker compose -p "$project" "$@"; fi
if command -v docker-compose >/dev/null 2>&1; then exec docker-compose -p "$project" "$@"; fi
echo "neither \`docker compose\` (v2) nor \`docker-compose\` (v1) is installed on this host" >&2
exit 127
