#!/bin/sh
# reset-data.sh DIR UID GID set|commit|undo: an observer's data set aside for empty directories,
# so that ZooKeeper starts afresh (it takes its id from ZOO_MY_ID again and resyncs the whole tree
# from the leader; an observer holds nothing of its own). `set` renames DIR/data and DIR/datalog
# to DIR/.data.reset and DIR/.datalog.reset (after removing older ones) and makes empty ones owned
# by UID:GID; `commit` removes what was set aside; `undo` puts it back in place of the new ones.
# Never follows a symbolic link. Prints `set`, `committed` or `undone`.
set -eu
d=$1; uid=$2; gid=$3; step=$4
for sub in data datalog; do
  for p in "$d/$sub" "$d/.$sub.reset"; do
    if [ -L "$p" ]; then
      echo "$p is a symbolic link; refusing to move or remove what it points at" >&2
      exit 4
    fi
  done
done
case $step in
  set)
    for sub in data datalog; do
      rm -rf "${d:?}/.$sub.reset"
      if [ -d "$d/$sub" ]; then mv "$d/$sub" "$d/.$sub.reset"; fi
      mkdir "$d/$sub"
      chown "$uid:$gid" "$d/$sub"
    done
    echo set ;;
  commit)
    rm -rf "${d:?}/.data.reset" "${d:?}/.datalog.reset"
    echo committed ;;
  undo)
    for sub in data datalog; do
      if [ -d "$d/.$sub.reset" ]; then
        rm -rf "${d:?}/$sub"
        mv "$d/.$sub.reset" "$d/$sub"
      fi
    done
    echo undone ;;
  *)
    echo "reset-data.sh: unknown step $step" >&2
    exit 2 ;;
esac
