# Functions shared by the scripts run on observer hosts (bash). Sent ahead of the script that uses
# them, as one `bash -c` program: nothing is installed on the host.

# Lengths are counted in bytes (the framing below), and no locale changes a match.
export LC_ALL=C

# frame NAME VALUE: prints VALUE as one section of what a script reports: a header
# `=== NAME LENGTH` (LENGTH in bytes), the value, a newline. The reader takes exactly LENGTH
# bytes: nothing a section relays (an exporter's answer, a file) can start a section of its own.
frame() {
  printf '=== %s %d\n%s\n' "$1" "${#2}" "$2"
}

# ask ADDR PORT TIMEOUT REQUEST: sends REQUEST to ADDR:PORT over bash's /dev/tcp and sets `r` to
# the answer. The answer must begin within TIMEOUT seconds, or `r` says so: a ZooKeeper or exporter
# that accepts and never answers (a paused container) cannot hang a read. The rest of the answer is
# taken by one `read -N`, which reads in blocks (a `read` loop takes a socket a byte at a time, and
# `read -t` adds two system calls per byte).
ask() {
  r=
  exec 3<>"/dev/tcp/$1/$2" 2>/dev/null || { r="connection to $1:$2 refused"; return; }
  printf '%s' "$4" 2>/dev/null >&3
  local first='' rest=''
  if IFS= read -r -t "$3" -N 1 first 2>/dev/null <&3; then
    IFS= read -r -N 4194304 rest 2>/dev/null <&3
    r=$first$rest
  elif [ $? -gt 128 ]; then
    r="no answer within $3 s"
  fi
  exec 3<&-
}

# probe ADDR CLIENT_PORT METRICS_PORT TIMEOUT scrape|answers: srvr and mntr from ZooKeeper (and
# `conf` when it observes), and the exporter: scraped (GET /metrics) with `scrape`, else only asked for any answer (GET /),
# which leaves ZooKeeper's statistics alone (the exporter may reset them on every scrape). Sets
# `srvr`, `mntr` and `exporter` and prints them as sections (`exporter` or `metrics`). SIGPIPE is
# ignored: a port that accepts and closes at once (docker's proxy while a container starts) must
# fail that request, not kill the script.
probe() {
  trap '' PIPE
  ask "$1" "$2" "$4" srvr; srvr=$r
  ask "$1" "$2" "$4" mntr; mntr=$r
  frame srvr "$srvr"
  frame mntr "$mntr"
  # Observing: the configuration it loaded (`conf`), compared with its zoo.cfg by the caller.
  if observing; then
    ask "$1" "$2" "$4" conf
    frame conf "$r"
  fi
  if [ "$5" = scrape ]; then
    ask "$1" "$3" "$4" $'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n'; exporter=$r
    frame metrics "$exporter"
  else
    ask "$1" "$3" "$4" $'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n'; exporter=$r
    frame exporter "$exporter"
  fi
}

# observing: whether the last probe saw ZooKeeper observe (its own answers only, never the
# exporter's).
observing() {
  [[ $srvr == *$'\nMode: observer\n'* || $srvr == $'Mode: observer\n'* ]] &&
    [[ $mntr == *$'\nzk_peer_state\tobserving - broadcast\n'* || $mntr == $'zk_peer_state\tobserving - broadcast\n'* ]]
}

# resolve NAME...: resolves each name as ZooKeeper on this host will (getaddrinfo, the host's
# resolver); prints a `resolve` section of `name address` lines, or `name -` when it does not
# resolve.
resolve() {
  local n a out=
  for n in "$@"; do
    a=$(timeout 5 getent ahosts "$n" 2>/dev/null) && a=${a%%[[:space:]]*} || a=
    out+="$n ${a:--}"$'\n'
  done
  frame resolve "$out"
}

# zoo_cfg_names FILE: sets `names` to the DNS names (not addresses) the file's server.N lines point
# at. Bash's own matching: a zoo.cfg of addresses costs no process.
zoo_cfg_names() {
  names=()
  if [ ! -f "$1" ] || [ -L "$1" ]; then return 0; fi
  local l
  while IFS= read -r l; do
    if [[ $l =~ ^server\.[0-9]+=([A-Za-z0-9.-]*[A-Za-z][A-Za-z0-9.-]*): ]]; then
      names+=("${BASH_REMATCH[1]}")
    fi
  done < "$1"
}

# zoo_cfg_election FILE: sets `election` to `host:port` of each participant's leader-election port
# in the file (the load balancers the observer connects to). Every participant listens there;
# only the leader listens on the quorum port.
zoo_cfg_election() {
  election=()
  if [ ! -f "$1" ] || [ -L "$1" ]; then return 0; fi
  local l
  while IFS= read -r l; do
    if [[ $l =~ ^server\.[0-9]+=(\[[^]]+\]|[^:]+):[0-9]+:([0-9]+):participant$ ]]; then
      election+=("${BASH_REMATCH[1]}:${BASH_REMATCH[2]}")
    fi
  done < "$1"
}

# reach HOST:PORT...: whether a TCP connection to each opens within 3 s (all tried at once), as
# this host's traffic leaves it (through its NAT, if any). Prints a `reach` section of
# `host:port ok|refused|timeout` lines.
reach() {
  local t out
  out=$(
    for t in "$@"; do
      (
        h=${t%:*}; p=${t##*:}; h=${h#[}; h=${h%]}
        # shellcheck disable=SC2016 # $0 and $1 are the inner bash's arguments
        if timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$h" "$p" 2>/dev/null; then how=ok
        elif [ $? -eq 124 ]; then how=timeout
        else how=refused; fi
        printf '%s %s\n' "$t" "$how"
      ) &
    done
    wait
  )
  frame reach "$out"
}
