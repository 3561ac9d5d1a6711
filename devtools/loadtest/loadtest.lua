-- wrk script for `manage.py loadtest`: rotate over the URL paths listed one per line in the file given
-- after `--`, send wrk's --header headers with each request, and print the summary as one JSON object on
-- the last line of the output.
-- Reference: wrk's SCRIPTING (init/request/done hooks, summary and latency objects).

local paths = {}
local headers = {}
local counter = 0
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then paths[#paths + 1] = line end
  end
  -- wrk.format sends only the table it is given, so wrk.headers (--header, and Host) are copied into it;
  -- gzip as a browser asks, unless --header names an Accept-Encoding of its own.
  local gzip = true
  for name, value in pairs(wrk.headers) do
    headers[name] = value
    if name:lower() == "accept-encoding" then gzip = false end
  end
  if gzip then headers["Accept-Encoding"] = "gzip" end
  -- Each thread starts at a different place in the list, so the mix is even from the first second.
  counter = offset * 3
end

function request()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  return wrk.format("GET", path, headers)
end

-- summary.errors.status is wrk's own count of answers with a status of 400 or more: a 304 to an
-- If-None-Match is a success.
function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "duration_s": %.3f, "bytes": %d, "rps": %.1f, ' ..
    '"latency_ms": {"mean": %.2f, "p50": %.2f, "p90": %.2f, "p95": %.2f, "p99": %.2f, "max": %.2f}, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}}\n',
    summary.requests, seconds, summary.bytes, summary.requests / seconds,
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.timeout, e.status))
end
