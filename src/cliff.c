/* cliff.c - the cliff watch; see cliff.h. */
#include "cliff.h"

#include <jansson.h>

#include "gateway_t.h"
#include "log.h"
#include "state.h"

void keel_cliff_check(struct keel_gateway *gw, struct keel_model_state *m, const struct keel_model_conf *mc)
{
    struct keel_pcts p;
    keel_window_pcts(&m->answers, uv_now(gw->loop), KEEL_CLIFF_WINDOW_MS, &p);
    uint64_t worst = p.max, margin = gw->config->cliff_margin_ms;
    int near = p.count > 0 && worst + margin >= mc->cliff_ms;
    if (near == m->near_cliff)
        return;
    m->near_cliff = near;
    if (near)
        keel_warn("cliff: model %s: p99 %ums, max %ums over the last 5 minutes, within %llums of its %llums cliff",
                  mc->name, p.p99, p.max, (unsigned long long)margin, (unsigned long long)mc->cliff_ms);
    keel_events_emit(&gw->events,
                     json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "type", "cliff", "model", mc->name, "state",
                               near ? "near" : "clear", "p99_ms", (json_int_t)p.p99, "max_ms", (json_int_t)p.max,
                               "cliff_ms", (json_int_t)mc->cliff_ms, "margin_ms", (json_int_t)margin));
}
