/* backend.h - the policy of managed backends (seed 002), pure: which failures mean a backend is
 * dead (restart it) rather than busy, and how long a crash-looping backend waits. */
#ifndef KEEL_BACKEND_H
#define KEEL_BACKEND_H

#include <stdint.h>

#include "core/classify.h"

#define KEEL_BACKEND_BACKOFF_BASE_MS UINT64_C(500)
#define KEEL_BACKEND_BACKOFF_CAP_MS UINT64_C(30000)
#define KEEL_BACKEND_STABLE_MS UINT64_C(10000) /* alive this long after ready: not a crash loop */

/* connect refused and peer-dropped mean death or eviction; a read timeout means overload */
int keel_backend_heals(enum keel_class cls);
/* wait before start number `crashes` + 1 of a backend that died `crashes` times in a row */
uint64_t keel_backend_backoff_ms(uint64_t crashes);

#endif
