-- Per-call usage posts (the LLM proxy's post after every LLM call), for BENCH_USERS users
-- picked at random, each with 3 interactions in flight (the same ones in every round: an
-- interaction gets 12-70 posts, so most posts are for a known interaction; the first post of
-- each is measured by the interaction kind).
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
    .. '"interaction_id":"bench-usage-' .. n .. '-' .. math.random(1, 3) .. '",'
    .. '"total_llm_calls":1,"total_prompt_tokens":1200,"total_completion_tokens":340,'
    .. '"models_used":["groq/llama-3.3-70b"],"actual_cost_cents":0.0421,"duration_ms":850,'
    .. '"error_count":0,"fallback_count":0}'
  return wrk.format("POST", "/v1/billing/litellm/usage", headers, body)
end
