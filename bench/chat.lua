-- wrk script: one non-stream chat completion per request (model chosen by KEEL_BENCH_MODEL)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"' .. (os.getenv("KEEL_BENCH_MODEL") or "healthy") ..
           '","messages":[{"role":"user","content":"Say hello"}]}'
