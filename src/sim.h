/* sim.h - `keel sim`, the built-in fault simulator (sim.c). */
#ifndef KEEL_SIM_H
#define KEEL_SIM_H

/* Serves on listen ("HOST:PORT", port 0 = any) until SIGTERM/SIGINT; returns the exit code. */
int keel_sim_run(const char *listen);

#endif
