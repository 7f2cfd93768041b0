-- Replays (the LiteLLM proxy's hottest path): a charge whose idempotency key was used before,
-- for BENCH_USERS users picked at random (make bench seeds one "bench-replay" charge each).
-- Both apps answer 409 naming the original charge.
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
    .. '"amount_minor":100,"currency":"USD","description":"Agent interaction - bench",'
    .. '"idempotency_key":"bench-replay","metadata":{"agent_id":"datum"}}'
  return wrk.format("POST", "/v1/billing/charges", headers, body)
end
