/* ui.c - the status page; see ui.h. The page's script reads `const KEEL_DATA = null;` and polls
 * when it is null; a report replaces that null with the data, escaped so that no "</script>"
 * can appear inside it. */
#include "ui.h"

#include <stdlib.h>
#include <string.h>

#include "io/server.h"

extern const char keel_ui_html[];
extern const size_t keel_ui_html_len;

#define PLACEHOLDER "null; /*KEEL_DATA*/"

void keel_ui_serve(struct keel_http *h)
{
    struct keel_header hdrs[] = {{"content-type", "text/html; charset=utf-8"}, {"cache-control", "no-store"}};
    keel_http_respond(h, 200, hdrs, 2, keel_ui_html, keel_ui_html_len);
}

char *keel_ui_report(json_t *data, size_t *len)
{
    char *json = json_dumps(data, JSON_COMPACT | JSON_ESCAPE_SLASH);
    const char *at = strstr(keel_ui_html, PLACEHOLDER);
    if (json == NULL || at == NULL) {
        free(json);
        return NULL;
    }
    size_t head = (size_t)(at - keel_ui_html), jl = strlen(json), tail = keel_ui_html_len - head - strlen(PLACEHOLDER);
    char *out = malloc(head + jl + 1 + tail + 1);
    if (out != NULL) {
        memcpy(out, keel_ui_html, head);
        memcpy(out + head, json, jl);
        out[head + jl] = ';';
        memcpy(out + head + jl + 1, at + strlen(PLACEHOLDER), tail);
        *len = head + jl + 1 + tail;
        out[*len] = '\0';
    }
    free(json);
    return out;
}
