# inspect.sh DIR PROJECT ADDR CLIENT_PORT METRICS_PORT ANSWER_TIMEOUT ZOOKEEPER_SERVICE
#            EXPORTER_SERVICE DRIFT_KEY MARKER MODE OBSERVER FILE...
# (EXPORTER_SERVICE is `-` when ZooKeeper serves its metrics itself: `Metrics::Builtin`.)
# Reads a host in one command (after lib.sh), every part a length-framed section: how it was
# invoked (the drift key's forced command runs it under its own path), each managed file (base64;
# or that a directory or a symbolic link stands in its place: a link is never followed), compose or
# .env files of other names in DIR (compose would read them), the drift key's access (the forced
# command's digest computed here, owner and mode of it and of every directory above it, and every
# authorized_keys line for DRIFT_KEY (`type base64`, or `-`) or carrying MARKER), what the DNS
# names of the deployed zoo.cfg (the first FILE) resolve to, the health probe without a scrape,
# the configuration ZooKeeper loaded (`conf`) when it observes, whether the load balancers can be
# reached when it does not observe, which data directories
# exist, and the running compose services. When ZooKeeper observes and the exporter answers on the
# host's own published ports, both containers evidently run and the docker CLI (the costly part
# when many runs read a host) is not asked. With MODE `full` (drift), every running container this
# tool made on the host is listed too, whatever its directory (an observer the inventory lost),
# with the deployed certificates' dates and each participant's answer to a TLS handshake.
d=$1 project=$2 addr=$3 client_port=$4 metrics_port=$5 answer_timeout=$6
zookeeper_service=$7 exporter_service=$8 drift_key=$9 marker=${10} mode=${11} observer=${12}
shift 12
files=("$@")
frame invoked "$0"
for f in "${files[@]}"; do
  if [ -L "$d/$f" ]; then frame "symlink $f" "$(readlink -- "$d/$f")"
  elif [ -f "$d/$f" ]; then frame "file $f" "$(base64 -w0 < "$d/$f")"
  elif [ -d "$d/$f" ]; then frame "dir $f" ''
  else frame "absent $f" ''; fi
done
stray=
for f in compose.yaml compose.yml docker-compose.yml docker-compose.override.yaml \
         docker-compose.override.yml compose.override.yaml compose.override.yml .env; do
  if [ -e "$d/$f" ] || [ -L "$d/$f" ]; then stray+="$f"$'\n'; fi
done
frame stray "$stray"
# The quorum TLS secret files: their digest, computed here, never their contents (nor through a
# link). The names are hosts::tls's (a unit test holds the two together).
for f in quorum-keystore.p12 quorum-keystore.pass quorum-truststore.p12 quorum-truststore.pass; do
  if [ -L "$d/$f" ]; then frame "secret $f" "symlink"
  elif [ -f "$d/$f" ]; then sum=$(sha256sum < "$d/$f") && frame "secret $f" "sha256:${sum%% *}"
  elif [ -e "$d/$f" ]; then frame "secret $f" "not a file"
  else frame "secret $f" absent; fi
done
# The drift key's access: the forced command (never through a link) with what the host computes
# of it, and who may change it; the key's authorized_keys lines, bash builtins only.
cmd="$d/.zk-observers/read-only.sh"
if [ -L "$cmd" ]; then
  frame read-only-digest "symlink"
elif [ -f "$cmd" ]; then
  sum=$(sha256sum < "$cmd") && sum=${sum%% *}
  frame read-only-digest "sha256:$sum"
  paths=("$cmd") p=$cmd
  while [ "$p" != / ] && [ -n "$p" ]; do
    p=${p%/*}; [ -n "$p" ] || p=/
    paths+=("$p")
  done
  frame read-only-owners "uid $EUID"$'\n'"$(stat -c '%u %a %n' -- "${paths[@]}" 2>&1)"
else
  frame read-only-digest -
fi
lines=
if [ -f "$HOME/.ssh/authorized_keys" ]; then
  while IFS= read -r l; do
    if [[ $drift_key != - && ( $l == "$drift_key" || $l == "$drift_key "* || $l == *" $drift_key" \
          || $l == *" $drift_key "* ) ]] || [[ $l == *" $marker" ]]; then
      lines+="$l"$'\n'
    fi
  done < "$HOME/.ssh/authorized_keys"
fi
frame drift-key-lines "$lines"
zoo_cfg_names "$d/${files[0]}"
resolve "${names[@]}"
probe "$addr" "$client_port" "$metrics_port" "$answer_timeout" answers
# Not observing: can this host reach the load balancers at all? (Only then: each connection is
# one the participants log as a failed election handshake.)
if ! observing; then
  zoo_cfg_election "$d/${files[0]}"
  reach "${election[@]}"
fi
if observing && [[ $exporter == HTTP/1.* ]]; then
  # The exporter service is `-` when ZooKeeper serves its metrics itself.
  running="$zookeeper_service"
  [ "$exporter_service" = - ] || running+=$'\n'"$exporter_service"
else
  running=$(docker ps --filter "label=com.docker.compose.project=$project" --filter status=running \
    --format '{{.Label "com.docker.compose.service"}}' 2>&1 || true)
fi
frame running "$running"
# Not observing: does ZooKeeper's log name a state it cannot leave by itself?
if ! observing; then
  zk=$(docker ps -aq --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$zookeeper_service" \
    --filter "label=zk-observers.dev/observer=$observer" 2>/dev/null | head -n 1 || true)
  if [ -n "$zk" ]; then
    frame log-signs "$(docker logs --tail 300 "$zk" 2>&1 \
      | grep -E 'not in the peer list|is less than accepted epoch' | tail -n 3 || true)"
  fi
fi
# What data/myid says (never through a link).
myid=
if [ -f "$d/data/myid" ] && [ ! -L "$d/data" ] && [ ! -L "$d/data/myid" ]; then
  myid=$(<"$d/data/myid")
fi
frame myid "$myid"
data=
for f in data datalog; do
  if [ -d "$d/$f" ] && [ ! -L "$d/$f" ]; then data+="$f"$'\n'; fi
done
frame data "$data"
# Where the deployment came from (record.sh; never through a link).
deployed=
if [ -f "$d/.zk-observers/deployed.json" ] && [ ! -L "$d/.zk-observers" ] \
   && [ ! -L "$d/.zk-observers/deployed.json" ]; then
  deployed=$(head -c 4096 "$d/.zk-observers/deployed.json")
fi
frame deployed "$deployed"
if [ "$mode" = full ]; then
  # Quorum TLS (drift). The certificates of the deployed stores, read by keytool in the running
  # ZooKeeper container as its user (the stores are 0600): names and dates only, in UTC and
  # English (`hosts::tls::parse_keytool_list`).
  if [ -f "$d/quorum-keystore.p12" ] && [ ! -L "$d/quorum-keystore.p12" ]; then
    zk=$(docker ps -q --filter "label=com.docker.compose.project=$project" \
      --filter "label=com.docker.compose.service=$zookeeper_service" --filter status=running \
      2>/dev/null | head -n 1 || true)
    for s in keystore truststore; do
      if [ -z "$zk" ]; then
        frame "certificates $s" "keytool error: its ZooKeeper container is not running"
        continue
      fi
      out=$(docker exec "$zk" keytool -J-Duser.timezone=UTC -J-Duser.language=en -list -v \
        -storetype PKCS12 -keystore "/tls/quorum-$s.p12" -storepass:file "/tls/quorum-$s.pass" 2>&1) \
        || out="keytool error: ${out##*$'\n'}"
      frame "certificates $s" "$(grep -E '^(Owner|Issuer|Valid from|keytool error)' <<<"$out" || true)"
    done
  fi
  # What each participant's election port answers to a TLS handshake from this host (openssl;
  # no certificate offered, so a TLS quorum shows its certificate and then refuses): whether the
  # ensemble speaks quorum TLS, and until when its certificate is valid. One connection each,
  # which a participant logs as a failed handshake.
  zoo_cfg_election "$d/${files[0]}"
  tls=
  if ! command -v openssl >/dev/null 2>&1; then
    for t in "${election[@]}"; do tls+="$t unknown"$'\t'"no openssl on the host"$'\n'; done
  else
    tls=$(
      for t in "${election[@]}"; do
        (
          h=${t%:*}; p=${t##*:}; h=${h#[}; h=${h%]}
          # shellcheck disable=SC2016 # $0 and $1 are the inner bash's arguments
          if ! timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$h" "$p" 2>/dev/null; then
            printf '%s unreachable\n' "$t"
            exit 0
          fi
          a=$(timeout 5 openssl s_client -connect "$t" -showcerts </dev/null 2>/dev/null || true)
          if [[ $a == *"-----BEGIN CERTIFICATE-----"* ]]; then
            c=$(openssl x509 -noout -enddate -subject -issuer <<<"$a" 2>&1 | tr '\n' '\t')
            printf '%s tls\t%s\n' "$t" "$c"
          else
            printf '%s plaintext\n' "$t"
          fi
        ) &
      done
      wait
    )
  fi
  frame election-tls "$tls"
  frame deploy-dir-resolved "$(cd "$d" 2>/dev/null && pwd -P)"
  frame containers "$(docker ps --filter label=zk-observers.dev/managed-by=zk-observers-xtask \
    --format '{{.Label "zk-observers.dev/observer"}}	{{.Label "com.docker.compose.project.working_dir"}}' 2>&1 || true)"
fi
