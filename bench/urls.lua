-- wrk script of bench/run (see bench/bench.py). Environment:
--   BENCH_MODE   cycle: every thread cycles through the URLs of BENCH_URLS,
--                       starting at its own offset (requests pre-built)
--                fill:  distinct URLs BENCH_PREFIX .. n, n counting up from
--                       BENCH_OFFSET + thread * 10^8
--   BENCH_THREADS the -t given to wrk
-- done() prints one line "BENCH_JSON {...}" with exact counts and percentiles.
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local mode, reqs, i, prefix

function init(args)
  mode = os.getenv("BENCH_MODE") or "cycle"
  local nt = tonumber(os.getenv("BENCH_THREADS") or "1")
  if mode == "cycle" then
    reqs = {}
    for line in io.lines(os.getenv("BENCH_URLS")) do
      if line ~= "" then reqs[#reqs + 1] = wrk.format("GET", line) end
    end
    i = math.floor(#reqs * id / nt) % #reqs -- spread the threads over the list
  else
    prefix = os.getenv("BENCH_PREFIX") or "/"
    i = tonumber(os.getenv("BENCH_OFFSET") or "0") + id * 100000000
  end
end

function request()
  i = i + 1
  if mode == "cycle" then
    if i > #reqs then i = 1 end
    return reqs[i]
  end
  return wrk.format("GET", prefix .. string.format("%d", i))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
