-- POST pre-signed webhook bodies, one per line of BODIES, each thread from its own slice; print JSON when done.
-- DELAY_MS (optional) paces each connection, for the latency run at a fixed share of the peak rate.
local bodies, index, step = {}, 0, 1
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
  index = id
  step = tonumber(os.getenv("THREADS") or "1")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  index = index + step
  local body = bodies[(index % #bodies) + 1]
  return wrk.format("POST", "/webhooks/exact", nil, body)
end

function delay()
  return delay_ms
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "non2xx": %d, "socket_errors": %d, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
