# probe.sh ADDR CLIENT_PORT METRICS_PORT TIMEOUT scrape|answers
# The health probe alone (after lib.sh): what the health gate polls.
probe "$@"
