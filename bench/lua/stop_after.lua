-- Stop each thread after BENCH_STOP_AFTER responses (a request count, not a duration).
-- wrk's main thread sleeps out -d whatever its threads do, so each stopped thread says so
-- on stdout and the runner interrupts wrk (SIGINT: wrk then prints its figures at once).
local stop_after = tonumber(os.getenv("BENCH_STOP_AFTER") or "0")
local seen = 0
function response(status, headers, body)
   seen = seen + 1
   if stop_after > 0 and seen == stop_after then
      io.write("BENCH_STOPPED\n")
      io.stdout:flush()
      wrk.thread:stop()
   end
end
