/* demo.h - `keel demo` (demo.c): simulated providers, keel in front of them, and an agent's
 * requests meeting their failures, printed as a table. */
#ifndef KEEL_DEMO_H
#define KEEL_DEMO_H

int keel_demo_run(const char *self);

#endif
