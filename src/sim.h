/* sim.h - `keel sim`, the built-in fault simulator (sim.c). */
#ifndef KEEL_SIM_H
#define KEEL_SIM_H

/* Serves on listen ("HOST:PORT", port 0 = any) until SIGTERM/SIGINT; returns the exit code. */
int keel_sim_run(const char *listen);
/* `keel sim --control` (sim_control.c): a Lemonade-like control plane on listen whose loads spawn
 * one `keel sim` per model on a port of its own; until SIGTERM/SIGINT, which kill and reap every
 * child first. Returns the exit code. */
int keel_sim_control_run(const char *listen);
/* both modes' start: --listen read into *host (malloc'd) and *port, SIGPIPE ignored; 0, or -1
 * with the usage error printed (exit 2) */
int keel_sim_listen(const char *listen, char **host, int *port);

#endif
