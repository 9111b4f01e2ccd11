#!/bin/sh
# compose.sh DIR PROJECT [--restart-kept SERVICE] ARGS...: `docker compose` (v2) or
# `docker-compose` (v1), whichever the host has, in DIR, on DIR/docker-compose.yaml alone: no other
# compose file (compose.yaml, an override) and no .env of DIR is read, whatever someone left there
# (an empty env file is given instead; compose 1.x refuses /dev/null).
# With `--restart-kept SERVICE`, SERVICE's container is restarted (`docker restart`: it mounts its
# files anew) if it was running before and compose kept it; with no ARGS that is all that runs,
# unless SERVICE is not running (then `up -d --remove-orphans` starts it). The docker CLI, not
# compose, does the restart: no compose process, no container re-created for a new zoo.cfg.
set -eu
d=$1; project=$2; shift 2
restart=
if [ "${1:-}" = --restart-kept ]; then restart=$2; shift 2; fi
cd "$d"
# running_id SERVICE: the running container of SERVICE of this project made from DIR, if any.
running_id() {
  docker ps -q --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1" \
    --filter "label=com.docker.compose.project.working_dir=$d"
}
before=
if [ -n "$restart" ]; then before=$(running_id "$restart"); fi
if [ $# -eq 0 ]; then
  if [ -n "$before" ]; then
    docker restart "$before" >/dev/null
    exit 0
  fi
  set -- up -d --remove-orphans
fi
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
if [ "$status" -eq 0 ] && [ -n "$before" ] && [ "$(running_id "$restart")" = "$before" ]; then
  docker restart "$before" >/dev/null
fi
exit "$status"
