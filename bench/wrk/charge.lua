-- Charges with a unique idempotency key each, over BENCH_USERS users picked at random.
local users = tonumber(os.getenv("BENCH_USERS") or "10000")
local api_key = os.getenv("BENCH_API_KEY") or ""
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local headers = { ["Content-Type"] = "application/json", ["X-API-Key"] = api_key }
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
end

function init(args)
  counter = 0
  math.randomseed(tid * 7919 + os.time())
end

function request()
  counter = counter + 1
  local n = math.random(1, users)
  local body = '{"oauth_provider":"oauth:google","external_id":"bench-' .. n .. '@example.com",'
    .. '"amount_minor":100,"currency":"USD","description":"Agent interaction - bench",'
    .. '"idempotency_key":"bench-' .. run .. '-' .. tid .. '-' .. counter .. '",'
    .. '"metadata":{"agent_id":"datum"}}'
  return wrk.format("POST", "/v1/billing/charges", headers, body)
end
