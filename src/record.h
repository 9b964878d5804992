/* record.h - a finished request's record (record.c): its line in keel_requests_total, the
 * latency histograms, the live windows the cliff watch and /admin/status read, and its audit
 * line (audit.c builds it, the same way for requests refused before routing). */
#ifndef KEEL_RECORD_H
#define KEEL_RECORD_H

struct keel_request;

void keel_record(struct keel_request *r);

#endif
