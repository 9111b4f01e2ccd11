#!/bin/sh
# restore.sh DIR NAME: puts back what write.sh replaced: the previous version, or no file when
# there was none. Never copies through a symbolic link. With NAME `--empty-deployment`: removes
# what write.sh created for a first deployment that was undone (the data, log and deploy
# directories), as far as they are empty: nothing anyone put there goes.
set -eu
d=$1; name=$2
if [ "$name" = --empty-deployment ]; then
  rmdir "$d/data" "$d/datalog" 2>/dev/null || true
  rmdir "$d" 2>/dev/null || true
  exit 0
fi
if [ -L "$d/$name.previous" ]; then
  echo "$d/$name.previous is a symbolic link; refusing to restore through it" >&2
  exit 4
fi
if [ -f "$d/$name.previous" ]; then
  trap 'rm -f "$d/.$name.restore.tmp"' EXIT
  cp -p "$d/$name.previous" "$d/.$name.restore.tmp"
  mv -f "$d/.$name.restore.tmp" "$d/$name"
elif [ -f "$d/.$name.was-absent" ]; then
  rm -f "$d/$name"
fi
rm -f "$d/.$name.was-absent"
