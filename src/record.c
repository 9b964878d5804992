/* record.c - a finished request's record; see record.h. */
#include "record.h"

#include "audit.h"
#include "core/buf.h"
#include "cliff.h"
#include "gateway_t.h"
#include "request_t.h"
#include "state.h"

/* what the answer's tokens cost at target t's price (per million; cached prompt tokens at their
 * own price) */
static double cost_of(const struct keel_target_conf *t, const struct keel_usage *u)
{
    long long cached = u->cached_tokens > 0 && u->cached_tokens <= u->prompt_tokens ? u->cached_tokens : 0;
    long long fresh = u->prompt_tokens > cached ? u->prompt_tokens - cached : 0;
    long long out = u->completion_tokens > 0 ? u->completion_tokens : 0;
    return ((double)fresh * t->price_input + (double)cached * t->price_cached + (double)out * t->price_output) / 1e6;
}

/* the request's audit line, into line */
static void format_line(const struct keel_request *r, struct keel_buf *line, enum keel_class cls,
                        const struct attempt *last, uint64_t ms, int has_ttft, int priced, double cost)
{
    struct keel_audit_attempt tried_list[r->nattempts + 1];
    for (size_t i = 0; i < r->nattempts; i++) {
        const struct attempt *a = &r->attempts[i];
        tried_list[i] = (struct keel_audit_attempt){a->target->upstream->name, a->target->model,
                                                    keel_class_name(a->cls), a->target->upstream->kind, a->status,
                                                    a->ms, a->ttft_ms};
    }
    keel_audit_format(line, &(struct keel_audit_record){
                              .start_wall_ms = r->start_wall_ms,
                              .id = r->id,
                              .model = r->model->name,
                              .stream = r->stream,
                              .status = r->status_sent,
                              .ms = ms,
                              .has_ttft = has_ttft,
                              .ttft_ms = r->ttft_ms,
                              .upstream = last ? last->target->upstream->name : NULL,
                              .target_model = last ? last->target->model : NULL,
                              .attempts = tried_list,
                              .nattempts = r->nattempts,
                              .prompt_bytes = r->body_len,
                              .has_usage = r->usage.present,
                              .prompt_tokens = r->usage.prompt_tokens,
                              .completion_tokens = r->usage.completion_tokens,
                              .total_tokens = r->usage.total_tokens,
                              .client_gone = r->gone,
                              .cls = keel_class_name(cls),
                              .protocol = r->enc->protocol,
                              .continued = r->continued > 0,
                              .key = r->key ? r->key->name : NULL,
                              .has_cost = priced,
                              .cost = cost,
                          });
}

/* the request's line in keel_requests_total, the latency histograms and windows, the audit */
void keel_record(struct keel_request *r)
{
    const struct attempt *last = NULL;
    for (size_t i = r->nattempts; i > 0 && last == NULL; i--)
        if (r->attempts[i - 1].cls != KEEL_CLASS_SKIPPED)
            last = &r->attempts[i - 1];
    enum keel_class cls = r->gone       ? KEEL_CLASS_CLIENT_GONE
                          : r->answered ? KEEL_CLASS_OK
                          : last        ? last->cls
                                        : KEEL_CLASS_SKIPPED;
    struct keel_gateway *gw = r->gw;
    uint64_t now = uv_now(r->w->loop);
    /* until keel handed its answer over, not until a slow client took it: the latency windows
     * and the cliff watch measure the providers and keel, not the clients' links */
    uint64_t ms = r->ended_ms - r->start_ms;
    int has_ttft = r->ttft_ms > 0 || r->answered;
    int priced = last != NULL && last->target->priced && r->usage.present;
    double cost = priced ? cost_of(last->target, &r->usage) : 0;
    struct keel_buf *line = &r->w->audit_line;
    if (gw->audit != NULL)
        format_line(r, line, cls, last, ms, has_ttft, priced, cost); /* outside gw->mu */
    keel_gw_lock(gw);
    if (gw->audit != NULL && line->base != NULL)
        keel_audit_line(gw->audit, line->base, line->len);
    struct keel_route_stats *rs = keel_state_route(r->mstate, last ? last->target->upstream->name : "");
    if (rs != NULL) {
        rs->requests[cls]++;
        keel_hist_observe(&rs->duration, (double)ms / 1000.0);
        if (has_ttft)
            keel_hist_observe(&rs->ttft, (double)r->ttft_ms / 1000.0);
        if (r->usage.present && last != NULL) { /* whatever the client saw: the provider billed it */
            rs->prompt_tokens += r->usage.prompt_tokens > 0 ? (uint64_t)r->usage.prompt_tokens : 0;
            rs->completion_tokens += r->usage.completion_tokens > 0 ? (uint64_t)r->usage.completion_tokens : 0;
            rs->cached_tokens += r->usage.cached_tokens > 0 ? (uint64_t)r->usage.cached_tokens : 0;
            rs->cost += cost;
        }
        /* time per output token after the first, for streamed answers (a non-stream one's tokens
         * arrive at once) */
        if (r->answered && r->stream && r->usage.completion_tokens >= 2 && ms > r->ttft_ms)
            keel_hist_observe(&rs->tpot,
                              (double)(ms - r->ttft_ms) / 1000.0 / (double)(r->usage.completion_tokens - 1));
    }
    if (r->kstate != NULL) {
        /* tpm counts what the answers reported; a request cut short before its usage counts 0 */
        uint64_t tokens = r->usage.present && r->usage.total_tokens > 0 ? (uint64_t)r->usage.total_tokens : 0;
        r->kstate->requests[cls]++;
        r->kstate->tokens += tokens;
        keel_quota_spend(&r->kstate->quota, r->key->tpm, tokens, now);
        if (gw->shared != NULL) {
            keel_gw_touch(gw);
            keel_shared_key_use(gw->shared, r->key->name, 0, tokens);
        }
    }
    /* every request's time, answered or not, feeds the cliff watch; one that comes near the cliff
     * is checked at once (p99 <= max, so the max crossing is the first sign) */
    keel_window_add(&r->mstate->answers, now, (uint32_t)ms);
    size_t tried = 0;
    for (size_t i = 0; i < r->nattempts; i++)
        tried += r->attempts[i].cls != KEEL_CLASS_SKIPPED;
    keel_outcomes_add(&r->mstate->outcomes, now, cls, tried > 1);
    if (r->answered)
        keel_window_add(&r->mstate->ttfts, now, (uint32_t)r->ttft_ms);
    if (!r->mstate->near_cliff && ms + r->config->cliff_margin_ms >= r->model->cliff_ms) {
        keel_gw_touch(gw); /* its event */
        keel_cliff_check(gw, r->mstate, r->model);
    }
    if (r->answered && last != NULL) {
        struct keel_window_stats *w = keel_state_window(r->mstate, last->target->upstream->name, last->target->model);
        if (w != NULL) {
            keel_window_add(&w->duration, now, (uint32_t)ms);
            keel_window_add(&w->ttft, now, (uint32_t)r->ttft_ms);
        }
    }
    keel_gw_unlock(gw);
}
