#!/bin/sh
# restore.sh DIR NAME: puts back what write.sh replaced: the previous version, or no file when
# there was none.
set -eu
d=$1; name=$2
if [ -f "$d/$name.previous" ]; then
  trap 'rm -f "$d/.$name.restore.tmp"' EXIT
  cp -p "$d/$name.previous" "$d/.$name.restore.tmp"
  mv -f "$d/.$name.restore.tmp" "$d/$name"
elif [ -f "$d/.$name.was-absent" ]; then
  rm -f "$d/$name"
fi
rm -f "$d/.$name.was-absent"
