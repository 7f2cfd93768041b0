-- Credit checks over BENCH_USERS users (default 10,000), picked at random.
local users = tonumber(os.getenv("BENCH_USERS") or "10000")
local api_key = os.getenv("BENCH_API_KEY") or ""
local headers = { ["Content-Type"] = "application/json", ["X-API-Key"] = api_key }

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed + os.time())
end

function request()
  local n = math.random(1, users)
  local body = '{"oauth_provider":"oauth:google","external_id":"bench-' .. n .. '@example.com",'
    .. '"context":{"agent_id":"datum"}}'
  return wrk.format("POST", "/v1/billing/credits/check", headers, body)
end
