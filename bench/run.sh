#!/usr/bin/env bash
# `make bench` (after `make build`): load benchmark of the check endpoint, writes bench/RESULTS.md.
# Env overrides: ROUNDS (3), DURATION (8 s measured), WARMUP (2 s), CONNECTIONS (64), POOL (5000),
# FRESH_CACHE (100), VARIANTS (comma list of ids), SERVER_CPU (0), WRK_CPU (1),
# PROFILE=<variant id> (one extra run under node --cpu-prof; top frames go into RESULTS.md),
# MAX_OTHER_CORES (0.1), REDOS (4): redo a run once if other processes took CPU during it,
# REDIS_POOL (1000 sessions for redis-first), MEMORY_SESSIONS (100000; 0 skips the memory step),
# MEMORY_TOKENS (100000 bearer tokens after the cookie sessions; 0 skips them), MEMORY_WORKERS (2),
# CONTAINER_MIB (256) and MEMORY_HEADROOM (0.25) for the cache-size formula,
# REDIS_SERVER (/usr/bin/redis-server, from `make install`),
# OPEN_LOOP (bare,bearer-cached,cookie-cached; "none" skips the open-loop step), OPEN_SHARE (0.5),
# OPEN_DURATION (8 s), OPEN_CONNECTIONS (64), ENVOY_CPU (= WRK_CPU), OHA_BIN (.tools/oha/bin/oha, `make bench`
# builds it), ENVOY_BIN (.tools/envoy/…, `make install`), O2P_BIN (oauth2-proxy binary: adds the o2p-* rows;
# `make oauth2-proxy` builds v7.8.1), BENCH_TIMEOUT (1800 s hard bound on the whole bench).
# Defaults: 3 rounds × 12 variants of ~12 s each (about 7.5 minutes), the open-loop step (3 variants, directly
# and through Envoy, about 1.5 minutes), then the memory step (100k sessions in each session store and 100k
# bearer tokens, about 5 minutes: sealing 200k sessions and opening them is the cost).
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
exec timeout --signal=TERM --kill-after=10 "${BENCH_TIMEOUT:-1800}" node bench/orchestrate.mjs
