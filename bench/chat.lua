-- wrk script: one non-stream chat completion per request (model chosen by KEEL_BENCH_MODEL), or
-- an Anthropic Messages request when KEEL_BENCH_PATH is /v1/messages
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local messages = os.getenv("KEEL_BENCH_PATH") == "/v1/messages"
wrk.body = '{"model":"' .. (os.getenv("KEEL_BENCH_MODEL") or "healthy") .. '",' ..
           (messages and '"max_tokens":100,' or '') ..
           '"messages":[{"role":"user","content":"Say hello"}]}'
