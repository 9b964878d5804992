/* quota.h - a client key's requests and tokens per minute (DESIGN.md "Client keys"), pure and
 * clock-injected: a generic cell rate algorithm per limit, so a key may burst up to its minute's
 * worth at once and is then held to its rate, with no window edge to double it at. Requests are
 * counted when admitted; tokens when an answer reports them (a request's cost is unknown until
 * then), and a key whose token debt runs more than a minute ahead is refused until it is back
 * within one. */
#ifndef KEEL_QUOTA_H
#define KEEL_QUOTA_H

#include <stdint.h>

struct keel_quota {
    uint64_t req_tat; /* theoretical arrival time of the next request, µs (0: none yet) */
    uint64_t tok_tat; /* the same for tokens: when the tokens used so far are paid off, µs */
};

/* May a request start at now_ms under rpm and tpm (0: no limit)? 0 when it may (and it is
 * counted), else how many ms until it may (at least 1). */
uint64_t keel_quota_admit(struct keel_quota *q, uint64_t rpm, uint64_t tpm, uint64_t now_ms);

/* an answer used `tokens` at now_ms */
void keel_quota_spend(struct keel_quota *q, uint64_t tpm, uint64_t tokens, uint64_t now_ms);

/* `requests` admitted elsewhere (another instance sharing the key's counters, state: redis) at
 * now_ms: counted as admitted here, never refused */
void keel_quota_charge(struct keel_quota *q, uint64_t rpm, uint64_t requests, uint64_t now_ms);

#endif
