-- serve_wrk.lua: wrk's request script for the serving benchmark's saturation runs
-- (bench/compare_serve.py). POSTs the bodies of a file (one per line, e.g. V2 infer JSON),
-- round-robin, with an API key header; requests are formatted once, in init.
-- Usage: wrk -t1 -c64 -d10s -s bench/serve_wrk.lua http://127.0.0.1:P/v2/models/M/infer \
--          -- BODIES.jsonl KEY [CONTENT-TYPE]
-- At the end it prints one line `serve_wrk: {json}` (requests, non-2xx, socket errors, seconds,
-- latency percentiles in ms); wrk's own latency is closed-loop (from each actual send).

local requests = {}
local n, i = 0, 0

function init(args)
  local file, key, ctype = args[1], args[2], args[3] or "application/json"
  local headers = { ["Content-Type"] = ctype, ["X-API-Key"] = key }
  for line in io.lines(file) do
    if #line > 0 then
      n = n + 1
      requests[n] = wrk.format("POST", nil, headers, line)
    end
  end
  if n == 0 then error("serve_wrk: no bodies in " .. file) end
end

function request()
  i = i % n + 1
  return requests[i]
end

function done(summary, latency, _)
  local e = summary.errors
  local p = function(q) return latency:percentile(q) / 1000.0 end
  io.write(string.format(
    'serve_wrk: {"requests": %d, "non2xx": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "timeouts": %d, "seconds": %.3f, "p50_ms": %.3f, "p90_ms": %.3f, ' ..
    '"p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, e.status, e.connect, e.read, e.write, e.timeout,
    summary.duration / 1e6, p(50), p(90), p(99), latency.max / 1000.0))
end
