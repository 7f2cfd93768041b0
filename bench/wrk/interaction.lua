-- What the LLM proxy sends for one interaction: a credit check, then for each of 12 LLM calls
-- a charge with the interaction's key (the first a 201, the rest replays: 409) and a per-call
-- usage post, then the aggregated usage post. Each connection runs interactions one after
-- another, each for a user picked at random among BENCH_USERS; run with one connection per
-- thread (-t = -c) so that each response belongs to the thread's last request, which times it.
-- done() prints each call type's count, unexpected answers, p50 and p99 (ms) as
-- "call <type> <count> <unexpected> <p50> <p99>", and the interactions completed.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local users = tonumber(os.getenv("BENCH_USERS") or "10000")
local api_key = os.getenv("BENCH_API_KEY") or ""
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local headers = { ["Content-Type"] = "application/json", ["X-API-Key"] = api_key }
local CALLS = 12
local STEPS = 2 + 2 * CALLS -- check, (charge, usage) x 12, aggregated usage
local TYPES = { "check", "charge", "replay", "usage", "aggregate" }
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(tid * 7919 + os.time())
  step, interaction, started, kind = 0, 0, 0, nil
  -- Flat globals (latencies_<type>, unexpected_<type>): wrk's thread:get crashes on nested tables.
  for _, name in ipairs(TYPES) do
    _G["latencies_" .. name], _G["unexpected_" .. name] = {}, 0
  end
  completed = 0
end

local function identity()
  return '{"oauth_provider":"oauth:google","external_id":"bench-' .. user .. '@example.com",'
end

function request()
  if step == 0 then
    interaction = interaction + 1
    user = math.random(1, users)
    iid = "bench-" .. run .. "-" .. tid .. "-" .. interaction
  end
  local path, body
  if step == 0 then
    kind, path = "check", "/v1/billing/credits/check"
    body = identity() .. '"context":{"agent_id":"datum"}}'
  elseif step == STEPS - 1 then
    kind, path = "aggregate", "/v1/billing/litellm/usage"
    body = identity() .. '"interaction_id":"' .. iid .. '","total_llm_calls":' .. CALLS .. ','
      .. '"total_prompt_tokens":' .. 1200 * CALLS .. ',"total_completion_tokens":' .. 340 * CALLS .. ','
      .. '"models_used":["groq/llama-3.3-70b"],"actual_cost_cents":0,"duration_ms":' .. 900 * CALLS .. ','
      .. '"error_count":0,"fallback_count":0}'
  elseif step % 2 == 1 then
    kind, path = step == 1 and "charge" or "replay", "/v1/billing/charges"
    body = identity() .. '"amount_minor":100,"currency":"USD","description":"LiteLLM interaction: ' .. iid .. '",'
      .. '"idempotency_key":"litellm:' .. iid .. '","metadata":{"agent_id":"datum"}}'
  else
    kind, path = "usage", "/v1/billing/litellm/usage"
    body = identity() .. '"interaction_id":"' .. iid .. '","total_llm_calls":1,"total_prompt_tokens":1200,'
      .. '"total_completion_tokens":340,"models_used":["groq/llama-3.3-70b"],"actual_cost_cents":0.0421,'
      .. '"duration_ms":850,"error_count":0,"fallback_count":0}'
  end
  step = (step + 1) % STEPS
  started = now_ms()
  return wrk.format("POST", path, headers, body)
end

local EXPECTED = { check = 200, charge = 201, replay = 409, usage = 201, aggregate = 201 }

function response(status, headers, body)
  local list = _G["latencies_" .. kind]
  list[#list + 1] = now_ms() - started
  if status ~= EXPECTED[kind] then
    _G["unexpected_" .. kind] = _G["unexpected_" .. kind] + 1
  end
  if kind == "aggregate" then
    completed = completed + 1
  end
end

local function percentile(sorted, p)
  if #sorted == 0 then
    return 0
  end
  return sorted[math.max(1, math.min(#sorted, math.ceil(#sorted * p)))]
end

function done(summary, latency, requests)
  local total_completed = 0
  for _, name in ipairs(TYPES) do
    local all, bad = {}, 0
    for _, thread in ipairs(threads) do
      for _, ms in ipairs(thread:get("latencies_" .. name)) do
        all[#all + 1] = ms
      end
      bad = bad + thread:get("unexpected_" .. name)
    end
    table.sort(all)
    io.write(string.format("call %s %d %d %.2f %.2f\n", name, #all, bad, percentile(all, 0.5), percentile(all, 0.99)))
  end
  for _, thread in ipairs(threads) do
    total_completed = total_completed + thread:get("completed")
  end
  io.write(string.format("interactions %d\n", total_completed))
end
