/* ui.h - the status page (src/ui.html, compiled in): served live at GET /ui on the admin
 * listener, and written as a standalone report by `keel audit --html`. */
#ifndef KEEL_UI_H
#define KEEL_UI_H

#include <jansson.h>
#include <stddef.h>

struct keel_http;

void keel_ui_serve(struct keel_http *h);
/* the page with `data` (the /admin/status shape) embedded instead of polling; malloc'd */
char *keel_ui_report(json_t *data, size_t *len);

#endif
