-- Fixed pacing: each connection waits BENCH_DELAY_MS between its requests, so the
-- offered rate is about connections * 1000 / (delay + latency) requests per second.
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
function delay()
   return delay_ms
end
