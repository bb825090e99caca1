-- Cycle through several paths (BENCH_PATHS, separated by spaces) on one connection pool.
local paths = {}
for p in string.gmatch(os.getenv("BENCH_PATHS") or "/", "%S+") do paths[#paths + 1] = p end
local next_index = 0
function request()
   next_index = next_index % #paths + 1
   return wrk.format(nil, paths[next_index])
end
