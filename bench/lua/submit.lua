-- POST /v1/jobs with a fresh Idempotency-Key per request (run tag, thread, counter), so
-- every submit is new work: auth, rate limit, idempotency claim, provider submit, store.
-- os.time() keeps a warm-up run and the measured run after it from sharing keys.
local run_tag = (os.getenv("BENCH_RUN_TAG") or "run") .. "-" .. os.time()
local threads = 0
local counter = 0
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
   threads = threads + 1
   thread:set("thread_no", threads)
end

function request()
   counter = counter + 1
   local headers = {}
   for name, value in pairs(wrk.headers) do headers[name] = value end
   headers["Idempotency-Key"] = string.format("bench-%s-%d-%d", run_tag,
      thread_no or 0, counter)
   return wrk.format(nil, nil, headers)
end
