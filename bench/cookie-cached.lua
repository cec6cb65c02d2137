-- Variant "cookie-cached": one valid sealed session cookie (amid other cookies) on every request, to a
-- path whose rule is `authenticated`. After the first request the opened session comes from the cache.
local bench = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
bench.static_request()
done = bench.done
