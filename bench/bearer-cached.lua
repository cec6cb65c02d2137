-- Variant "bearer-cached": one valid RS256 token on every request, to a path whose rule is
-- `authenticated`. After the first request the token is answered from the verified-token cache.
local bench = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
bench.static_request()
done = bench.done
