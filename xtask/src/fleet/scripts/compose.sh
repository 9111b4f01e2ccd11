#!/bin/sh
# compose.sh DIR PROJECT [--restart-kept SERVICE] ARGS...: `docker compose` (v2) or
# `docker-compose` (v1), whichever the host has, in DIR, on DIR/docker-compose.yaml alone: no other
# compose file (compose.yaml, an override) and no .env of DIR is read, whatever someone left there
# (an empty env file is given instead; compose 1.x refuses /dev/null).
# With `--restart-kept SERVICE OBSERVER`, SERVICE's container of OBSERVER (found by the compose
# project, the service and the tool's own observer label, which every compose version keeps as
# written) is restarted (`docker restart`: it mounts its files anew) if it was running before and
# compose kept it; with no ARGS that is all that runs, unless SERVICE is not running (then
# `up -d --remove-orphans` starts it). The docker CLI, not compose, does the restart: no compose
# process, no container re-created for a new zoo.cfg.
set -eu
d=$1; project=$2; shift 2
restart=''; observer=''
if [ "${1:-}" = --restart-kept ]; then restart=$2; observer=$3; shift 3; fi
cd "$d"
# running_id: the running container of SERVICE of OBSERVER in this project, if any (the first,
# should an interrupted re-creation have left two).
running_id() {
  ids=$(docker ps -q --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$restart" \
    --filter "label=zk-observers.dev/observer=$observer")
  printf '%s\n' "$ids" | head -n 1
}
before=
if [ -n "$restart" ]; then before=$(running_id); fi
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
if [ "$status" -eq 0 ] && [ -n "$before" ]; then
  after=$(running_id)
  if [ "$after" = "$before" ]; then
    docker restart "$before" >/dev/null
  fi
fi
exit "$status"
