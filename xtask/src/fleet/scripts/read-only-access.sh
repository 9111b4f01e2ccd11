#!/bin/sh
# read-only-access.sh DIR LINE MARKER KEY < read-only command
# The drift job's key on this host, exactly one way in. With KEY (`type base64`): installs the
# one command that key may run, the read-only command (stdin), at DIR/.zk-observers/read-only.sh
# (replaced atomically, never through a link, refused where anyone but root or this user could
# change it or a directory above it), and makes LINE (`restrict,command="..." KEY MARKER`: no
# forwarding, no pty, no agent; whatever the client asks, the command runs) the only line of
# ~/.ssh/authorized_keys for that key: every other line carrying KEY or MARKER goes (sshd uses the
# first line that matches a key). With LINE `-`: revokes, removing the command and every line
# carrying KEY (unless `-`: no drift key configured) or MARKER. Prints `removed LINE` for each
# other line it removed, then `installed`, `revoked` or `unchanged`.
set -eu
d=$1; line=$2; marker=$3; key=$4
dir="$d/.zk-observers"
cmd="$dir/read-only.sh"
me=$(id -u)
ak="$HOME/.ssh/authorized_keys"
tmp=
ak_tmp=
trap 'rm -f ${tmp:+"$tmp"} ${ak_tmp:+"$ak_tmp"}' EXIT
changed=no

# Whether an authorized_keys line is one for the drift key: it carries KEY as a word, or MARKER
# at its end.
for_drift_key() {
  case " $1 " in
    *" $key "*) [ "$key" != - ] && return 0 ;;
  esac
  case "$1" in
    *" $marker") return 0 ;;
  esac
  return 1
}

if [ "$line" != - ]; then
  mkdir -p "$dir"
  if [ -L "$dir" ] || [ -L "$cmd" ]; then
    echo "$dir or $cmd is a symbolic link; refusing to write through it" >&2
    exit 4
  fi
  chmod 0755 "$dir"
  # Who could change the command: its directory and every directory above it must belong to root
  # or this user and be writable by nobody else (a sticky directory, such as /tmp, is fine).
  p=$dir
  while :; do
    # shellcheck disable=SC2046 # two words: owner and mode
    set -- $(stat -c '%u %a' -- "$p")
    # Group- or world-writable, unless sticky (like /tmp: nobody replaces what another owns).
    case $2 in
      [1357]???) others_write=no ;;
      *[2367]? | *[2367]) others_write=yes ;;
      *) others_write=no ;;
    esac
    if { [ "$1" != 0 ] && [ "$1" != "$me" ]; } || [ "$others_write" = yes ]; then
      echo "refusing to install the drift key's command under $p: owned by uid $1, mode $2 (it must belong to root or uid $me and be writable by nobody else)" >&2
      exit 4
    fi
    [ "$p" = / ] && break
    p=${p%/*}; [ -n "$p" ] || p=/
  done
  tmp=$(mktemp "$dir/.read-only.sh.XXXXXX")
  cat > "$tmp"
  chmod 0644 "$tmp"
  if ! cmp -s "$tmp" "$cmd"; then
    mv -f "$tmp" "$cmd"
    changed=yes
  fi
elif [ -e "$cmd" ] || [ -L "$cmd" ]; then
  rm -f "$cmd"
  rmdir "$dir" 2>/dev/null || true
  changed=yes
fi

mkdir -p "$HOME/.ssh"
chmod 0700 "$HOME/.ssh"
touch "$ak"
ak_tmp=$(mktemp "$HOME/.ssh/.authorized_keys.XXXXXX")
kept=no
while IFS= read -r l || [ -n "$l" ]; do
  if [ "$line" != - ] && [ "$l" = "$line" ] && [ "$kept" = no ]; then
    kept=yes
    printf '%s\n' "$l" >> "$ak_tmp"
  elif for_drift_key "$l"; then
    printf 'removed %s\n' "$l"
    changed=yes
  else
    printf '%s\n' "$l" >> "$ak_tmp"
  fi
done < "$ak"
if [ "$line" != - ] && [ "$kept" = no ]; then
  printf '%s\n' "$line" >> "$ak_tmp"
  changed=yes
fi
if [ "$changed" = yes ]; then
  chmod 0600 "$ak_tmp"
  mv -f "$ak_tmp" "$ak"
fi
if [ "$changed" = no ]; then echo unchanged
elif [ "$line" = - ]; then echo revoked
else echo installed; fi
