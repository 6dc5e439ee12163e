-- wrk script of `make bench-http`: each request is a line of the file BENCH_LINES, drawn at random
-- (BENCH_ORDER=sequential: in order), sent as the request body (BENCH_MODE=body, to the URL's
-- path) or as the path (BENCH_MODE=path). BENCH_METHOD is the method, BENCH_AUTH the
-- Authorization header if any. With BENCH_LIMIT=n each thread stops after n answers. done()
-- prints one line the benchmark reads: requests, duration, latency percentiles and errors.

local lines = {}
local mode = os.getenv("BENCH_MODE") or "path"
local sequential = os.getenv("BENCH_ORDER") == "sequential"
local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
local next_line = 0
local answered = 0
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  math.randomseed(1000 + (thread_index or 0))
  for line in io.lines(os.getenv("BENCH_LINES")) do
    lines[#lines + 1] = line
  end
  wrk.method = os.getenv("BENCH_METHOD") or "GET"
  local auth = os.getenv("BENCH_AUTH")
  if auth and auth ~= "" then
    wrk.headers["Authorization"] = auth
  end
  if mode == "body" then
    wrk.headers["Content-Type"] = "application/json"
  end
end

function request()
  local line
  if sequential then
    next_line = next_line % #lines + 1
    line = lines[next_line]
  else
    line = lines[math.random(#lines)]
  end
  if mode == "body" then
    return wrk.format(nil, nil, nil, line)
  end
  return wrk.format(nil, line)
end

if limit > 0 then
  function response(status, headers, body)
    answered = answered + 1
    if answered >= limit then
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
