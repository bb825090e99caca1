-- Count every answer that is not 2xx (wrk's own errors.status counts only status > 399)
-- and print the run's total as one BENCH_NON2XX line before report.lua's BENCH_JSON.
-- Goes last among the fragments: it wraps whatever setup(), response() and done() the
-- others defined. Each thread counts in its own Lua state; done() sums them.
non2xx = 0
local counted_threads = {}
local inner_setup = setup
local inner_response = response
local inner_done = done

function setup(thread)
   counted_threads[#counted_threads + 1] = thread
   if inner_setup then inner_setup(thread) end
end

function response(status, headers, body)
   if status < 200 or status > 299 then non2xx = non2xx + 1 end
   if inner_response then inner_response(status, headers, body) end
end

function done(summary, latency, requests)
   local total = 0
   for _, thread in ipairs(counted_threads) do
      total = total + (tonumber(thread:get("non2xx")) or 0)
   end
   io.write(string.format("BENCH_NON2XX %d\n", total))
   if inner_done then inner_done(summary, latency, requests) end
end
