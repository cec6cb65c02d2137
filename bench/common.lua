-- Shared by the variant scripts (loaded with dofile). The orchestrator passes the request through
-- BENCH_* environment variables, so the pre-run probe and wrk send exactly the same request.
local M = {}

function M.env(name, optional)
  local value = os.getenv(name)
  if (value == nil or value == "") and not optional then
    error("bench: environment variable " .. name .. " is not set")
  end
  return value
end

-- GET BENCH_PATH with Host BENCH_HOST and, when set, Authorization BENCH_AUTHORIZATION.
function M.static_request()
  wrk.method = "GET"
  wrk.path = M.env("BENCH_PATH")
  wrk.headers["Host"] = M.env("BENCH_HOST")
  local authorization = M.env("BENCH_AUTHORIZATION", true)
  if authorization ~= nil and authorization ~= "" then
    wrk.headers["Authorization"] = authorization
  end
  local cookie = M.env("BENCH_COOKIE", true)
  if cookie ~= nil and cookie ~= "" then
    wrk.headers["Cookie"] = cookie
    wrk.headers["Accept"] = "application/json"
  end
end

-- One line of JSON for the orchestrator (latencies in microseconds; errors.status = responses >= 400).
function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%.1f,"p50":%.1f,"p75":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end

return M
