/* admin.h - the admin listener (admin.c): /healthz, /metrics, /admin/status, the status page */
#ifndef KEEL_ADMIN_H
#define KEEL_ADMIN_H

struct keel_http;

/* the admin listener's request callback; app is the struct keel_gateway */
void keel_admin_handle(void *gw, struct keel_http *h);

#endif
