#!/bin/sh
# read-only-access.sh DIR LINE MARKER < read-only command
# Installs the one command the drift job's key may run on this host: the read-only command
# (stdin) at DIR/.zk-observers/read-only.sh, replaced atomically, and in the login user's
# ~/.ssh/authorized_keys LINE (`restrict,command="..." KEY MARKER`: no forwarding, no pty, no
# agent; whatever the client asks, the command runs), replacing earlier lines ending in MARKER.
# Prints `unchanged` when both already were as wanted, else `installed`.
set -eu
d=$1; line=$2; marker=$3
dir="$d/.zk-observers"
cmd="$dir/read-only.sh"
mkdir -p "$dir"
chmod 0755 "$dir"
tmp=$(mktemp "$dir/.read-only.sh.XXXXXX")
ak_tmp=
trap 'rm -f "$tmp" ${ak_tmp:+"$ak_tmp"}' EXIT
cat > "$tmp"
chmod 0644 "$tmp"
changed=no
if ! cmp -s "$tmp" "$cmd"; then
  mv -f "$tmp" "$cmd"
  changed=yes
fi
mkdir -p "$HOME/.ssh"
chmod 0700 "$HOME/.ssh"
ak="$HOME/.ssh/authorized_keys"
touch "$ak"
if ! grep -qxF "$line" "$ak" || [ "$(grep -c " $marker\$" "$ak")" != 1 ]; then
  ak_tmp=$(mktemp "$HOME/.ssh/.authorized_keys.XXXXXX")
  grep -v " $marker\$" "$ak" > "$ak_tmp" || true
  printf '%s\n' "$line" >> "$ak_tmp"
  chmod 0600 "$ak_tmp"
  mv -f "$ak_tmp" "$ak"
  changed=yes
fi
if [ "$changed" = yes ]; then echo installed; else echo unchanged; fi
