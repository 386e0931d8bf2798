-- The upload load of bench/proxy.mjs: wrk -s bench/upload.lua http://HOST:PORT/upload
-- Every request is a POST of a 1 MiB body (with Content-Length: wrk.format adds
-- it). bench/apps/proxy-app.ts answers the number of bytes it read, and every
-- answer is checked here: a 200 whose body is not "1048576\n" means the upload
-- did not arrive whole, and is counted (wrk itself counts the non-2xx ones).
-- done() prints the counts for the benchmark to read:
--   upload check: N answers, M wrong 200 answers

wrk.method = "POST"
wrk.body = string.rep("0123456789abcdef", 65536) -- 1048576 bytes
wrk.headers["Content-Type"] = "application/octet-stream"

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   answered = 0
   bad = 0
end

function response(status, headers, body)
   answered = answered + 1
   if status == 200 and body ~= "1048576\n" then
      bad = bad + 1
   end
end

function done(summary, latency, requests)
   local a, b = 0, 0
   for _, thread in ipairs(threads) do
      a = a + thread:get("answered")
      b = b + thread:get("bad")
   end
   io.write(string.format("upload check: %d answers, %d wrong 200 answers\n", a, b))
end
