#!/bin/sh
# record.sh DIR SHA256 < contents
# Writes where the deployment in DIR came from (commit, time, operator: one JSON line) to
# DIR/.zk-observers/deployed.json, atomically (a temporary file checked against SHA256, then
# renamed); never through a symbolic link. Not a file ZooKeeper or compose reads: writing it
# restarts nothing.
set -eu
d=$1; sum=$2
dir="$d/.zk-observers"
if [ -L "$dir" ] || [ -L "$dir/deployed.json" ]; then
  echo "$dir or $dir/deployed.json is a symbolic link; refusing to write through it" >&2
  exit 4
fi
mkdir -p "$dir"
tmp=$(mktemp "$dir/.deployed.json.tmp.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
if [ "$(sha256sum < "$tmp" | cut -d' ' -f1)" != "$sum" ]; then
  echo "upload of deployed.json incomplete" >&2
  exit 3
fi
chmod 0644 "$tmp"
mv -f "$tmp" "$dir/deployed.json"
