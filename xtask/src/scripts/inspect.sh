# inspect.sh DIR PROJECT ADDR CLIENT_PORT METRICS_PORT ANSWER_TIMEOUT ZOOKEEPER_SERVICE
#            EXPORTER_SERVICE FILE...
# Reads a host in one command (after lib.sh): each managed file (base64, or that a directory stands
# in its place), what the DNS names of the deployed zoo.cfg (the first FILE) resolve to, the health
# probe without a scrape, whether the load balancers can be reached when it does not observe, and
# the running compose services. When ZooKeeper observes and the exporter answers on the host's own
# published ports, both containers evidently run and the docker CLI (the costly part when many
# runs read a host) is not asked.
d=$1 project=$2 addr=$3 client_port=$4 metrics_port=$5 answer_timeout=$6
zookeeper_service=$7 exporter_service=$8
shift 8
files=("$@")
for f in "${files[@]}"; do
  if [ -f "$d/$f" ]; then printf '=== file %s\n' "$f"; base64 -w0 < "$d/$f"; printf '\n'
  elif [ -d "$d/$f" ]; then printf '=== dir %s\n' "$f"
  else printf '=== absent %s\n' "$f"; fi
done
# The drift key's access (what deploy installs): the forced command's first line, which names its
# digest, and the drift key lines of authorized_keys. Bash builtins only.
printf '=== read-only\n'
if [ -f "$d/.zk-observers/read-only.sh" ]; then
  IFS= read -r header < "$d/.zk-observers/read-only.sh" || true
  printf '%s\n' "$header"
else
  printf -- '-\n'
fi
if [ -f "$HOME/.ssh/authorized_keys" ]; then
  while IFS= read -r l; do
    [[ $l == *' zk-observers-drift@'* ]] && printf '%s\n' "$l"
  done < "$HOME/.ssh/authorized_keys"
fi
zoo_cfg_names "$d/${files[0]}"
resolve "${names[@]}"
probe "$addr" "$client_port" "$metrics_port" "$answer_timeout" answers
# Not observing: can this host reach the load balancers at all? (Only then: each connection is
# one the participants log as a failed election handshake.)
if [[ $probe != *$'\nzk_peer_state\tobserving - broadcast\n'* ]]; then
  zoo_cfg_election "$d/${files[0]}"
  reach "${election[@]}"
fi
printf '=== running\n'
if [[ $probe == *$'\nMode: observer\n'* && $probe == *$'\nzk_peer_state\tobserving - broadcast\n'*
      && $probe == *$'\n=== exporter\nHTTP/1.'* ]]; then
  printf '%s\n%s\n' "$zookeeper_service" "$exporter_service"
else
  docker ps --filter "label=com.docker.compose.project=$project" --filter status=running \
    --format '{{.Label "com.docker.compose.service"}}' 2>&1 || true
fi
