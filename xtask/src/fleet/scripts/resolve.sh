# resolve.sh NAME...: resolves each name (after lib.sh).
resolve "$@"
