#!/bin/sh
# write.sh DIR NAME SHA256 UID GID < contents
# Writes stdin to DIR/NAME atomically: a temporary file in the same directory, checked against the
# expected SHA-256 (a cut upload leaves a short file that must never be moved into place), then
# renamed over the old file, whose content is kept as NAME.previous for a rollback (or, when there
# was none, a marker that there was none). Also creates DIR and its data and log directories owned
# by the container user.
set -eu
d=$1; name=$2; sum=$3; uid=$4; gid=$5
mkdir -p "$d" "$d/data" "$d/datalog"
chown "$uid:$gid" "$d/data" "$d/datalog"
rm -f "$d/.$name".tmp.*
tmp=$(mktemp "$d/.$name.tmp.XXXXXX")
cat > "$tmp"
if [ "$(sha256sum < "$tmp" | cut -d' ' -f1)" != "$sum" ]; then
  rm -f "$tmp"
  echo "upload of $name incomplete" >&2
  exit 3
fi
chmod 0644 "$tmp"
if [ -f "$d/$name" ]; then
  cp -p "$d/$name" "$d/.$name.previous.tmp" && mv -f "$d/.$name.previous.tmp" "$d/$name.previous"
else
  rm -f "$d/$name.previous"
  touch "$d/.$name.was-absent"
fi
mv -f "$tmp" "$d/$name"
