-- wrk cross-check of `make loadtest` (wrk 4.1: apt-get install wrk): one-customer POST /churn with random
-- customers. IDS_FILE: one customer id per line; API_KEY: the server's key (empty when auth is off).
-- wrk prints non-200 answers as "Non-2xx or 3xx responses".
-- IDS_FILE=ids.txt API_KEY=k wrk -t2 -c8 -d60s --latency -s benchmarks/churn.lua http://127.0.0.1:PORT
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
local key = os.getenv("API_KEY") or ""

request = function()
  local body = '{"customer_ids":["' .. ids[math.random(#ids)] .. '"]}'
  local headers = {["Content-Type"] = "application/json"}
  if key ~= "" then headers["X-API-Key"] = key end
  return wrk.format("POST", "/churn", headers, body)
end

