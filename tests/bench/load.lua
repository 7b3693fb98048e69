-- wrk script of the Envoy load benchmark: every request carries a bearer token from a pool.
--
-- Parameters come from the environment (read when wrk loads the script):
--   MG_TOKENS   file with one token per line (required)
--   MG_SEQ      file with one 0-based token index per line; requests follow it in order and
--               wrap around. Without MG_SEQ the script runs in "once" mode: each token of
--               MG_TOKENS is sent exactly once, in file order, then the wrk thread stops
--               (cold-verify variants and the cache pre-touch).
--   MG_LIMIT    once mode: send at most this many tokens (default: all)
--   MG_PACE_MS  if > 0, each connection waits this long between a response and its next
--               request (paced run for latency; wrk measures from send to response, so the
--               pause is not part of the latency)
--   MG_PATH     request path (default /bench)
--   MG_OUT      file the JSON summary is written to when wrk finishes
--   MG_DONE     once mode: file created when the token list runs out (wrk itself keeps running
--               until -d elapses, so the runner sends it SIGINT when this file appears)
--
-- Requests are formatted once in init(); request() only picks the next string, so the load
-- generator's own cost per request stays small. Run with one wrk thread (-t1).

local tokens_file = os.getenv("MG_TOKENS")
local seq_file = os.getenv("MG_SEQ")
local limit = tonumber(os.getenv("MG_LIMIT") or "0") or 0
local pace_ms = tonumber(os.getenv("MG_PACE_MS") or "0") or 0
local path = os.getenv("MG_PATH") or "/bench"
local out_file = os.getenv("MG_OUT")
local done_file = os.getenv("MG_DONE")

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local reqs = {}
local seq = nil
local n_reqs = 0
local n_seq = 0
local no_token = nil
idx = 0      -- requests handed to wrk (global: read back in done() via thread:get)
stopped = 0  -- 1 once the token list ran out (once mode)

function init(args)
   if tokens_file == nil then
      error("MG_TOKENS is not set")
   end
   for line in io.lines(tokens_file) do
      if #line > 0 then
         n_reqs = n_reqs + 1
         reqs[n_reqs] = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. line })
         if limit > 0 and seq_file == nil and n_reqs >= limit then
            break
         end
      end
   end
   if n_reqs == 0 then
      error("no tokens in " .. tokens_file)
   end
   no_token = wrk.format("GET", path, {})
   if seq_file ~= nil then
      seq = {}
      for line in io.lines(seq_file) do
         local i = tonumber(line)
         if i ~= nil then
            if i < 0 or i >= n_reqs then
               error("sequence index out of range: " .. line)
            end
            n_seq = n_seq + 1
            seq[n_seq] = i + 1
         end
      end
      if n_seq == 0 then
         error("empty sequence " .. seq_file)
      end
   end
end

function request()
   idx = idx + 1
   if seq ~= nil then
      return reqs[seq[((idx - 1) % n_seq) + 1]]
   end
   if idx > n_reqs then
      -- Token list exhausted: stop this thread. The request returned here may still be written;
      -- it carries no token (a cheap 401), never a repeated one.
      if stopped == 0 and done_file ~= nil then
         local f = io.open(done_file, "w")
         if f ~= nil then
            f:write("done\n")
            f:close()
         end
      end
      stopped = 1
      wrk.thread:stop()
      return no_token
   end
   return reqs[idx]
end

if pace_ms > 0 then
   function delay()
      return pace_ms
   end
end

local function json_num(x)
   if x == nil or x ~= x then
      return "null"
   end
   return string.format("%.3f", x)
end

function done(summary, latency, requests)
   if out_file == nil then
      return
   end
   local handed, ran_out = 0, 0
   for _, t in ipairs(threads) do
      handed = handed + (tonumber(t:get("idx")) or 0)
      ran_out = math.max(ran_out, tonumber(t:get("stopped")) or 0)
   end
   local e = summary.errors
   local f = assert(io.open(out_file, "w"))
   f:write(string.format(
      '{"requests":%d,"duration_us":%d,"bytes":%d,"handed_out":%d,"ran_out":%s,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"mean":%s,"p50":%s,"p90":%s,"p99":%s,"p999":%s,"max":%s}}\n',
      summary.requests, summary.duration, summary.bytes, handed, ran_out == 1 and "true" or "false",
      e.connect, e.read, e.write, e.status, e.timeout,
      json_num(latency.mean), json_num(latency:percentile(50)), json_num(latency:percentile(90)),
      json_num(latency:percentile(99)), json_num(latency:percentile(99.9)), json_num(latency.max)))
   f:close()
end
