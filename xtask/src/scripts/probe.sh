# probe.sh ADDR CLIENT_PORT METRICS_PORT TIMEOUT scrape|answers [WAIT]
# The health probe alone (after lib.sh): what the health gate polls. With WAIT (whole seconds),
# ZooKeeper is asked every 0.1 s here on the host until it observes or WAIT has passed, and only
# then is the whole probe (the exporter too) taken and reported: one SSH command per wait, not one
# per poll, and the exporter is not scraped while ZooKeeper is still starting.
if [ "${6:-0}" -gt 0 ]; then
  trap '' PIPE
  deadline=$((SECONDS + $6))
  while ask "$1" "$2" "$4" srvr; srvr=$r; ask "$1" "$2" "$4" mntr; mntr=$r
        ! observing && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 0.1
  done
fi
probe "$1" "$2" "$3" "$4" "$5"
