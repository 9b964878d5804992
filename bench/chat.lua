-- wrk script: one non-stream chat completion per request (model chosen by KEEL_BENCH_MODEL), or
-- by KEEL_BENCH_PATH an Anthropic Messages request (/v1/messages), a Responses request
-- (/v1/responses) or an embeddings request (/v1/embeddings)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local path = os.getenv("KEEL_BENCH_PATH") or "/v1/chat/completions"
local model = '{"model":"' .. (os.getenv("KEEL_BENCH_MODEL") or "healthy") .. '",'
if path == "/v1/responses" or path == "/v1/embeddings" then
    wrk.body = model .. '"input":"Say hello"}'
else
    wrk.body = model .. (path == "/v1/messages" and '"max_tokens":100,' or '') ..
               '"messages":[{"role":"user","content":"Say hello"}]}'
end
