-- Variant "bearer-forbidden": the cached valid token on a path whose rule requires a group the token
-- lacks, so every answer is 403 (wrk counts them in errors.status; the orchestrator checks that
-- errors.status == requests and that the server's own counters saw only `forbidden` decisions).
local bench = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
bench.static_request()
done = bench.done
