/* main.c - argv, config, wiring; nothing else. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "core/units.h"
#include "demo.h"
#include "gateway.h"
#include "log.h"
#include "report.h"
#include "sim.h"

static const char usage[] =
    "usage: keel serve -c FILE [-v]     run the gateway\n"
    "       keel check -c FILE          validate a config and exit\n"
    "       keel sim [--listen ADDR]    run the fault simulator (default 127.0.0.1:4100)\n"
    "       keel demo                   simulated providers + keel + an agent meeting failures\n"
    "       keel audit [FILE...] [--since DUR] [--model M] [--json] [--hang DUR] [--cliff DUR] [--margin DUR]\n"
    "                  [--html OUT]     per-model latency percentiles from the audit log (--html: the\n"
    "                                   status page as a standalone report)\n";

static const char *opt(int argc, char **argv, const char *a, const char *b)
{
    for (int i = 2; i < argc - 1; i++)
        if (strcmp(argv[i], a) == 0 || (b && strcmp(argv[i], b) == 0))
            return argv[i + 1];
    return NULL;
}

static int flag(int argc, char **argv, const char *a)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], a) == 0)
            return 1;
    return 0;
}

/* Each stream holds two descriptors (client and upstream): take what the hard limit allows, as
 * nginx's worker_rlimit_nofile does; the soft default of 1024 caps keel near 500 streams. */
static unsigned long long raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

/* ------------------------------------------------------------------ keel _exec */

/* A managed backend must start with only stdin, stdout and stderr: whatever else keel holds
 * (curl's wake-up socketpair, descriptors keel itself inherited without O_CLOEXEC) would stay
 * open in a server that lives for days, keep a socket's peer from seeing EOF, and count against
 * its own descriptor limit. close_range (Linux 5.9, glibc 2.34) does it in one call; where the
 * kernel lacks it, /proc/self/fd lists what is open; without /proc, every number up to the
 * descriptor limit is closed (closing one that is not open is harmless). 0, or a negative errno
 * when some may remain open. */
static int close_inherited(void)
{
    if (close_range(3, ~0U, 0) == 0)
        return 0;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        int self = dirfd(d), closed;
        do { /* closing while reading may skip entries: read again until a pass closes nothing */
            closed = 0;
            rewinddir(d);
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                uint64_t fd;
                if (keel_parse_uint(e->d_name, &fd) != 0 || fd <= 2 || fd == (uint64_t)self)
                    continue; /* ".", "..", the standard three, the listing itself */
                close((int)fd);
                closed = 1;
            }
        } while (closed);
        closedir(d);
        return 0;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    /* a descriptor is always below the limit; past 2^20 closes (~0.2 s) give up on the rest */
    rlim_t max = rl.rlim_cur < (rlim_t)1 << 20 ? rl.rlim_cur : (rlim_t)1 << 20;
    for (rlim_t fd = 3; fd < max; fd++)
        close((int)fd);
    return max == rl.rlim_cur ? 0 : -EMFILE;
}

static int exec_backend(char **argv)
{
    /* how keel starts a managed backend: it dies with keel even if keel crashes */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        return 1; /* keel is already gone */
    int rv = close_inherited();
    if (rv != 0) /* stderr is keel's log: say so, and start it anyway, a leak is no reason to fail */
        fprintf(stderr, "keel _exec: cannot close inherited descriptors: %s\n", strerror(-rv));
    execv(argv[0], argv);
    fprintf(stderr, "keel _exec: cannot run %s: %s\n", argv[0], strerror(errno));
    return 127;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "serve") == 0) {
        /* SIGHUP means "reload" to keel serve, but its default action kills, and the gateway's
         * watcher starts only once the config is loaded and the backends spawned: until then it
         * stays blocked (pending, not lost), and the gateway unblocks it once it reloads.
         * Children start with an empty mask (libuv's uv_spawn resets it). */
        sigset_t hup;
        sigemptyset(&hup);
        sigaddset(&hup, SIGHUP);
        sigprocmask(SIG_BLOCK, &hup, NULL);
    }
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0 || strcmp(cmd, "check") == 0) {
        const char *file = opt(argc, argv, "-c", "--config");
        if (file == NULL) {
            fprintf(stderr, "keel %s: missing -c FILE\n%s", cmd, usage);
            return 2;
        }
        char err[512];
        struct keel_config *c = keel_config_load(file, err, sizeof(err));
        if (c == NULL) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        if (strcmp(cmd, "check") == 0) {
            printf("%s: ok (%zu upstreams, %zu models)\n", file, c->nupstreams, c->nmodels);
            keel_config_free(c);
            return 0;
        }
        if (flag(argc, argv, "-v"))
            keel_log_set_level(KEEL_LOG_DEBUG);
        unsigned long long nofile = raise_fd_limit();
        keel_info("open file limit %llu: room for about %llu concurrent streams", nofile, nofile / 2);
        return keel_gateway_run(c);
    }
    if (strcmp(cmd, "sim") == 0) {
        const char *listen = opt(argc, argv, "--listen", "-l");
        raise_fd_limit();
        return keel_sim_run(listen ? listen : "127.0.0.1:4100");
    }
    if (strcmp(cmd, "_exec") == 0 && argc >= 3)
        return exec_backend(&argv[2]);
    if (strcmp(cmd, "demo") == 0)
        return keel_demo_run(argv[0]);
    if (strcmp(cmd, "audit") == 0)
        return keel_report_run(argc, argv);
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "keel: unknown command \"%s\"\n%s", cmd, usage);
    return 2;
}
