# probe.sh ADDR CLIENT_PORT METRICS_PORT TIMEOUT scrape|answers [WAIT_MS]
# The health probe alone (after lib.sh): what the health gate polls. With WAIT_MS, ZooKeeper is
# asked every 0.1 s here on the host until it observes or WAIT_MS milliseconds have passed, and
# only then is the whole probe (the exporter too) taken and reported: one SSH command per wait,
# not one per poll, and the exporter is not scraped while ZooKeeper is still starting.
if [ "${6:-0}" -gt 0 ]; then
  trap '' PIPE
  now_ms() { local t=${EPOCHREALTIME/./}; ms=$((t / 1000)); }
  now_ms; deadline=$((ms + $6))
  while ask "$1" "$2" "$4" srvr; srvr=$r; ask "$1" "$2" "$4" mntr; mntr=$r
        now_ms; ! observing && [ "$ms" -lt "$deadline" ]; do
    sleep 0.1
  done
fi
probe "$1" "$2" "$3" "$4" "$5"
