#!/usr/bin/env bash
# `make bench` (after `make build`): load benchmark of the check endpoint, writes bench/RESULTS.md.
# Env overrides: ROUNDS (3), DURATION (8 s measured), WARMUP (2 s), CONNECTIONS (64), POOL (5000),
# FRESH_CACHE (100), VARIANTS (comma list of ids), SERVER_CPU (0), WRK_CPU (1),
# PROFILE=<variant id> (one extra run under node --cpu-prof; top frames go into RESULTS.md),
# MAX_OTHER_CORES (0.1), REDOS (4): redo a run once if other processes took CPU during it,
# REDIS_POOL (1000 sessions for redis-first), MEMORY_SESSIONS (100000; 0 skips the memory step),
# MEMORY_WORKERS (2), REDIS_SERVER (/usr/bin/redis-server, from `make install`).
# Defaults: 3 rounds × 9 variants of ~12 s each (about 5.5 minutes), then the memory step (100k sessions
# in each session store, about 4 minutes: sealing 200k sessions and opening them is the cost).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
  echo "[bench] installing wrk (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
command -v taskset >/dev/null 2>&1 || { echo "[bench] taskset (util-linux) is required" >&2; exit 1; }
[ -f dist/http/server.js ] || { echo "[bench] dist/ missing: run make build" >&2; exit 1; }

mkdir -p bench/.work
# Hard upper bound on the whole bench, whatever the settings (the orchestrator also bounds every run).
exec timeout --signal=TERM --kill-after=10 "${BENCH_TIMEOUT:-1500}" node bench/orchestrate.mjs
