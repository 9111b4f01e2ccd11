#!/bin/sh
# logs.sh PROJECT SERVICE OBSERVER LINES: the last LINES lines of the log of SERVICE's container
# of OBSERVER (found by the compose project, the service and the tool's observer label), or
# nothing when there is no such container.
set -eu
project=$1; service=$2; observer=$3; lines=$4
id=$(docker ps -aq --filter "label=com.docker.compose.project=$project" \
  --filter "label=com.docker.compose.service=$service" \
  --filter "label=zk-observers.dev/observer=$observer" | head -n 1)
if [ -n "$id" ]; then docker logs --tail "$lines" "$id" 2>&1; fi
