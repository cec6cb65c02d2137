-- Variant "bearer-fresh": a different valid token on every request, cycling in order through a pool
-- (one token per line in BENCH_TOKENS_FILE). With -t1 there is one Lua state doing requests, so the
-- sequence is strictly round-robin: a token comes back only after (pool size - 1) other tokens.
local bench = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
bench.static_request()

local tokens = {}
for line in io.lines(bench.env("BENCH_TOKENS_FILE")) do
  if line ~= "" then tokens[#tokens + 1] = line end
end
if #tokens == 0 then error("bench: empty token pool") end

local i = 0
request = function()
  i = i % #tokens + 1
  wrk.headers["Authorization"] = "Bearer " .. tokens[i]
  return wrk.format()
end

done = bench.done
