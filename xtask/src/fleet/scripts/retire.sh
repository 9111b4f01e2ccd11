#!/bin/sh
# retire.sh DIR PROJECT OBSERVER keep|wipe: what is left of retired OBSERVER's deployment in DIR,
# after `compose down` (when its compose file was there): every container of OBSERVER in the
# compose project (found by the tool's own observer label) is removed, and its absence checked
# before anything else; the tool's files go (zoo.cfg, docker-compose.yaml, their previous versions
# and markers, temporaries; an empty directory in a file's place too, a non-empty one is refused),
# the data directories stay (`keep`) or go (`wipe`), and DIR goes when nothing else is in it.
# Idempotent: a second run finds nothing to do. Never follows a symbolic link: a DIR that is one
# is refused. Prints `retired`.
set -eu
d=$1; project=$2; observer=$3; data=$4
if [ -L "$d" ]; then
  echo "$d is a symbolic link; refusing to retire through it (move it away and deploy again)" >&2
  exit 4
fi
ids() {
  docker ps -aq --filter "label=com.docker.compose.project=$project" \
    --filter "label=zk-observers.dev/observer=$observer"
}
left=$(ids)
if [ -n "$left" ]; then
  # shellcheck disable=SC2086 # one id per word
  docker rm -f $left >/dev/null
  if [ -n "$(ids)" ]; then
    echo "containers of $observer are still there after docker rm -f; nothing else was removed" >&2
    exit 4
  fi
fi
if [ -d "$d" ]; then
  for f in zoo.cfg docker-compose.yaml quorum-keystore.p12 quorum-keystore.pass \
           quorum-truststore.p12 quorum-truststore.pass; do
    if [ -d "$d/$f" ] && [ ! -L "$d/$f" ]; then
      if ! rmdir "$d/$f" 2>/dev/null; then
        echo "$d/$f is a directory that is not empty; refusing to remove it" >&2
        exit 4
      fi
    fi
    rm -f "$d/$f" "$d/$f.previous" "$d/.$f.was-absent" "$d/.$f".tmp.* "$d/.$f.previous.tmp" \
      "$d/.$f.restore.tmp"
  done
  # Where it came from goes with it (the drift key's command is revoked before).
  if [ ! -L "$d/.zk-observers" ]; then
    rm -f "$d/.zk-observers/deployed.json" "$d/.zk-observers"/.deployed.json.tmp.*
    rmdir "$d/.zk-observers" 2>/dev/null || true
  fi
  if [ "$data" = wipe ]; then
    for sub in data datalog .data.reset .datalog.reset; do
      if [ -L "$d/$sub" ]; then rm -f "$d/$sub"; else rm -rf "${d:?}/$sub"; fi
    done
  fi
  rmdir "$d" 2>/dev/null || true
fi
echo retired
