-- Variant "bare": the same request bytes as the cached bearer check (Host + 1 KB bearer JWT), sent to
-- a bare node:http server that answers 200 with an empty body. The ceiling every ratio refers to.
local bench = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
bench.static_request()
done = bench.done
