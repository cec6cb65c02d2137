-- Variant "redis-first": a different session on every request, cycling in order through a pool of
-- Cookie headers (one per line in BENCH_COOKIES_FILE). With -t1 there is one Lua state doing requests,
-- so the sequence is strictly round-robin: a session comes back only after (pool size - 1) others, and
-- no two of the 64 requests in flight carry the same session (the service would open them once).
local bench = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
bench.static_request()

local cookies = {}
for line in io.lines(bench.env("BENCH_COOKIES_FILE")) do
  if line ~= "" then cookies[#cookies + 1] = line end
end
if #cookies == 0 then error("bench: empty cookie pool") end

local i = 0
request = function()
  i = i % #cookies + 1
  wrk.headers["Cookie"] = cookies[i]
  return wrk.format()
end

done = bench.done
