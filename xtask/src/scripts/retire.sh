#!/bin/sh
# retire.sh DIR PROJECT keep|wipe: what is left of a retired observer's deployment in DIR, after
# `compose down` (when its compose file was there): any container still left of the compose
# project made from DIR is removed, the tool's files go (zoo.cfg, docker-compose.yaml, their
# previous versions and markers, temporaries), the data directories stay (`keep`) or go (`wipe`),
# and DIR goes when nothing else is in it. Idempotent: a second run finds nothing to do. Never
# follows a symbolic link. Prints `retired`.
set -eu
d=$1; project=$2; data=$3
if [ -d "$d" ] && [ ! -L "$d" ]; then
  ids=$(docker ps -aq --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.project.working_dir=$d" 2>/dev/null || true)
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086 # one id per word
    docker rm -f $ids >/dev/null
  fi
  for f in zoo.cfg docker-compose.yaml; do
    rm -f "$d/$f" "$d/$f.previous" "$d/.$f.was-absent" "$d/.$f".tmp.* "$d/.$f.previous.tmp" \
      "$d/.$f.restore.tmp"
  done
  if [ "$data" = wipe ]; then
    for sub in data datalog; do
      if [ -L "$d/$sub" ]; then rm -f "$d/$sub"; else rm -rf "${d:?}/$sub"; fi
    done
  fi
  rmdir "$d" 2>/dev/null || true
fi
echo retired
