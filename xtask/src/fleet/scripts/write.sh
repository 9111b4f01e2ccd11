#!/bin/sh
# write.sh DIR NAME SHA256 UID GID [secret] < contents
# Writes stdin to DIR/NAME atomically: a temporary file in the same directory, checked against the
# expected SHA-256 (a cut upload leaves a short file that must never be moved into place), then
# renamed over the old file, whose content is kept as NAME.previous for a rollback (or, when there
# was none, a marker that there was none). An empty directory in NAME's place (what docker makes
# of a missing bind source) is removed first; anything else that is not a file is refused. Also
# creates DIR and its data and log directories owned by the container user; a symlink there is
# refused, not followed. With `secret` the file is mode 0600 and owned by UID:GID (the container
# user reads it; nobody else on the host can), from the temporary file on.
set -eu
d=$1; name=$2; sum=$3; uid=$4; gid=$5; kind=${6:-file}
for sub in data datalog; do
  if [ -L "$d/$sub" ]; then
    echo "$d/$sub is a symbolic link; refusing to chown what it points at (make it a directory)" >&2
    exit 4
  fi
done
mkdir -p "$d" "$d/data" "$d/datalog"
chown -h "$uid:$gid" "$d/data" "$d/datalog"
if [ -L "$d/$name" ] || { [ -e "$d/$name" ] && [ ! -f "$d/$name" ] && [ ! -d "$d/$name" ]; }; then
  echo "$d/$name is not a regular file; move it away and deploy again" >&2
  exit 4
fi
rm -f "$d/.$name".tmp.*
tmp=$(mktemp "$d/.$name.tmp.XXXXXX")
if [ "$kind" = secret ]; then
  chmod 0600 "$tmp"
  chown "$uid:$gid" "$tmp"
fi
# Whatever fails from here (a full disk), nothing half-written stays behind.
trap 'rm -f "$tmp" "$d/.$name.previous.tmp"' EXIT
cat > "$tmp"
if [ "$(sha256sum < "$tmp" | cut -d' ' -f1)" != "$sum" ]; then
  echo "upload of $name incomplete" >&2
  exit 3
fi
if [ "$kind" != secret ]; then chmod 0644 "$tmp"; fi
if [ -f "$d/$name" ]; then
  # (Two commands, not an && list: `set -e` ignores a failure inside one.)
  cp -p "$d/$name" "$d/.$name.previous.tmp"
  mv -f "$d/.$name.previous.tmp" "$d/$name.previous"
  rm -f "$d/.$name.was-absent"
else
  if [ -d "$d/$name" ] && ! rmdir "$d/$name" 2>/dev/null; then
    echo "$d/$name is a directory that is not empty; move it away and deploy again" >&2
    exit 4
  fi
  rm -f "$d/$name.previous"
  touch "$d/.$name.was-absent"
fi
mv -f "$tmp" "$d/$name"
