-- Request headers from the script arguments: wrk ... -s x.lua URL -- "Name: value" ...
-- (an argument without ": " is left to the other fragments).
function init(args)
   for _, arg in ipairs(args) do
      local name, value = string.match(arg, "^([%w-]+): (.*)$")
      if name then wrk.headers[name] = value end
   end
   if init_extra then init_extra(args) end
end
