/* managed_t.h - a backend's record, shared by the files that run one: managed.c (the registry,
 * processes keel starts itself), control.c (models a control plane runs) and backends.c (what
 * both use: the waiters, the clock, the checks). Nothing else includes it. */
#ifndef KEEL_MANAGED_T_H
#define KEEL_MANAGED_T_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "managed.h"

#define POLL_MS 100
#define KILL_GRACE_MS 3000
#define CHECK_TIMEOUT_MS 2000
#define LINE_MAX_LEN 4096

enum state { STOPPED, STARTING, READY, STOPPING, BACKOFF };
extern const char *const keel_backend_state_names[];

struct run {
    struct keel_backend *b;
    uv_process_t proc;
    uv_pipe_t out[2]; /* stdout, stderr */
    int handles;      /* handles not yet closed; the run is freed at 0 */
    char line[2][LINE_MAX_LEN];
    size_t linelen[2];
};

struct keel_backend {
    struct keel_managed *m;
    char *name;
    char **argv; /* "{port}" substituted; argv[0] an absolute path */
    size_t argc;
    char **env;
    char *health_url, *probe_url;
    char *probe_body; /* the ready probe's request body, built once at create */
    uint64_t start_timeout_ms, idle_unload_ms;
    int ready_probe;
    int port;

    enum state state;
    struct run *run;     /* the process under way, or NULL */
    int pid;
    uint64_t generation; /* runs spawned so far */
    uint64_t started_at, ready_at, last_used;
    uint64_t crashes;  /* runs in a row that died before they were stable */
    uint64_t restarts; /* runs after the first */
    char last_exit[96];
    int restart_due;   /* start again once the run under way has exited */
    uint64_t active;   /* attempts that acquired it and have not released it */
    uv_timer_t poll;   /* STARTING: health polling and start_timeout */
    uv_timer_t wake;   /* BACKOFF end, idle check, kill grace */
    struct keel_upstream_xfer *check; /* health or probe request under way */
    int check_status;
    int check_probe; /* the check under way is the ready probe, not the health poll */
    char check_body[65536]; /* a health or probe answer (a control plane lists every model it runs) */
    size_t check_len;
    struct keel_backend_waiter waiters; /* list head */

    /* a control plane's model (control.c); NULL model: a process keel runs (the fields above) */
    char *model;                           /* the model the control plane loads */
    char *load_url, *unload_url, *control_health_url; /* the control API's calls */
    char *control_body;                    /* load's and unload's body, the model in it */
    char *url_at, *base_path;              /* config's */
    uint64_t load_timeout_ms;
    char *url;                             /* READY: the data plane's base URL, read back after the
                                            * last load; NULL when none is known */
    char *pending_url;                     /* STARTING: the URL read back, not yet checked */
    int step;                              /* STARTING: the sequence's step (control.c) */
    int reloaded;                          /* STARTING: this sequence has loaded the model */
    uint64_t recoveries, url_changes;      /* sequences started by a dead data plane; URL moves */
    char last_error[160];                  /* why the last sequence failed, "" when none did */
};

struct keel_managed {
    uv_loop_t *loop;
    struct keel_upstream *up;
    struct keel_events *events;
    char *self_exe;
    struct keel_backend **backends;
    size_t n;
    void (*all_stopped)(void *);
    void *all_stopped_ctx;
};

/* backends.c: the waiters told (ok: the backend is ready), the clock */
void keel_backend_notify(struct keel_backend *b, int ok);
uint64_t keel_backend_now(const struct keel_backend *b);
/* a health or probe call's head and body into b's check_status and check_body (capped), the
 * upstream callbacks (io/upstream.h) both kinds of backend check with */
void keel_backend_check_head(void *ctx, int status, const char *ct, uint64_t ra);
int keel_backend_check_data(void *ctx, const char *data, size_t len);
/* the ready probe's body for model (a 1-token completion); malloc'd, NULL when out of memory */
char *keel_backend_probe_body(const char *model);

/* control.c: a control plane's model, the other kind of backend */
struct keel_backend *keel_control_create(struct keel_managed *m, const struct keel_upstream_conf *u,
                                         const char *model);
void keel_control_start(struct keel_backend *b);
void keel_control_dead(struct keel_backend *b, const char *why);
void keel_control_stop(struct keel_backend *b);
void keel_control_free(struct keel_backend *b);
json_t *keel_control_status(const struct keel_backend *b);

#endif
