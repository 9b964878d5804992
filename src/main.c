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
#include "keys.h"
#include "sim.h"

/* every subcommand and every flag it takes (tests/e2e/cli.test.mjs holds it to that); audit's
 * flags are parsed in report.c, sim's seed in sim.c */
static const char usage[] =
    "usage: keel COMMAND [FLAGS]\n"
    "\n"
    "  keel serve -c FILE [-v]     run the gateway (SIGTERM drains, SIGHUP reloads FILE)\n"
    "      -c, --config FILE       the YAML config\n"
    "      -v                      debug logging\n"
    "  keel check -c FILE          validate a config: every error as FILE:LINE: key: problem,\n"
    "                              exit 1 if there is any, refusing what serve would refuse\n"
    "      -c, --config FILE       the YAML config\n"
    "  keel sim [-l HOST:PORT] [--control]\n"
    "                              run the fault simulator (KEEL_SIM_SEED=N: chaos's seed, default 1)\n"
    "      -l, --listen HOST:PORT  where to listen, an IP address (default 127.0.0.1:4100, with\n"
    "                              --control 4200; port 0: any free one)\n"
    "      --control               a Lemonade-like control plane instead: each /api/v1/load starts a\n"
    "                              simulator of its own on a port it picks\n"
    "  keel demo                   simulated providers + keel + an agent meeting failures\n"
    "  keel audit [FILE...] [FLAGS]\n"
    "                              per-model latency percentiles, errors, hangs and failovers from\n"
    "                              the audit log FILE and its rotations (default keel-audit.jsonl)\n"
    "      --since DUR             only requests of the last DUR (e.g. 1h)\n"
    "      --model NAME            only this model\n"
    "      --key NAME              only requests made with this client key (by its name)\n"
    "      --json                  JSON instead of a table\n"
    "      --html OUT              write the status page to OUT as a standalone report\n"
    "      --hang DUR              a request this long counts as a hang (default 120s)\n"
    "      --cliff DUR             the clients' cancel deadline (default 660s)\n"
    "      --margin DUR            NEAR CLIFF when p99 or max is this close to it (default 120s)\n"
    "  keel key new NAME           print a fresh client key and the keys: line (its hash) for the config\n"
    "  keel help, -h, --help       this text (so does -h or --help after any command)\n"
    "\n"
    "DUR is e.g. 250ms, 5s, 2m, 1h. An unknown flag prints this text and exits 2. (keel _exec CMD...\n"
    "is internal: how serve starts a managed backend, and sim --control its simulators.)\n";

/* argv[2..] of serve, check, sim and demo: its flags, each known one once or more (the last wins) */
struct args {
    const char *config; /* -c, --config */
    const char *listen; /* -l, --listen */
    int verbose;        /* -v */
    int control;        /* --control */
    int help;           /* -h, --help: print the usage, do nothing else */
};

enum arg_flags {
    ARG_CONFIG = 1 << 0,
    ARG_VERBOSE = 1 << 1,
    ARG_LISTEN = 1 << 2,
    ARG_CONTROL = 1 << 3,
};

/* 0, or -EINVAL after saying which argument is wrong, and the usage */
static int parse_args(int argc, char **argv, unsigned allowed, struct args *a)
{
    const char *cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            a->help = 1;
            continue;
        }
        const char **dst = NULL;
        if ((allowed & ARG_CONFIG) && (strcmp(s, "-c") == 0 || strcmp(s, "--config") == 0))
            dst = &a->config;
        else if ((allowed & ARG_LISTEN) && (strcmp(s, "-l") == 0 || strcmp(s, "--listen") == 0))
            dst = &a->listen;
        if (dst != NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "keel %s: %s needs a value\n%s", cmd, s, usage);
                return -EINVAL;
            }
            *dst = argv[++i];
        } else if ((allowed & ARG_VERBOSE) && strcmp(s, "-v") == 0) {
            a->verbose = 1;
        } else if ((allowed & ARG_CONTROL) && strcmp(s, "--control") == 0) {
            a->control = 1;
        } else {
            fprintf(stderr, "keel %s: unknown %s \"%s\"\n%s", cmd, s[0] == '-' ? "flag" : "argument", s, usage);
            return -EINVAL;
        }
    }
    return 0;
}

/* every error of a refused config, one a line, in file order */
static void print_errors(const struct keel_config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "%s\n", errs->msg[i]);
    if (errs->more > 0)
        fprintf(stderr, "... and %zu more error%s\n", errs->more, errs->more == 1 ? "" : "s");
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
    struct args a = {0};
    unsigned allowed = strcmp(cmd, "serve") == 0   ? ARG_CONFIG | ARG_VERBOSE
                       : strcmp(cmd, "check") == 0 ? ARG_CONFIG
                       : strcmp(cmd, "sim") == 0   ? ARG_LISTEN | ARG_CONTROL
                                                   : 0;
    if (allowed != 0 || strcmp(cmd, "demo") == 0) {
        if (parse_args(argc, argv, allowed, &a) != 0)
            return 2;
        if (a.help) {
            fputs(usage, stdout);
            return 0;
        }
    }
    if (strcmp(cmd, "serve") == 0 || strcmp(cmd, "check") == 0) {
        int serve = strcmp(cmd, "serve") == 0;
        if (a.config == NULL) {
            fprintf(stderr, "keel %s: missing -c FILE\n%s", cmd, usage);
            return 2;
        }
        static struct keel_config_errors errs; /* 10 KiB: off the stack */
        struct keel_config *c = keel_config_load_all(a.config, &errs);
        if (c == NULL) {
            print_errors(&errs);
            return 1;
        }
        if (!serve) {
            printf("%s: ok (%zu upstreams, %zu models)\n", a.config, c->nupstreams, c->nmodels);
            keel_config_free(c);
            return 0;
        }
        if (a.verbose)
            keel_log_set_level(KEEL_LOG_DEBUG);
        unsigned long long nofile = raise_fd_limit();
        keel_info("open file limit %llu: room for about %llu concurrent streams", nofile, nofile / 2);
        return keel_gateway_run(c);
    }
    if (strcmp(cmd, "sim") == 0) {
        raise_fd_limit();
        if (a.control)
            return keel_sim_control_run(a.listen ? a.listen : "127.0.0.1:4200");
        return keel_sim_run(a.listen ? a.listen : "127.0.0.1:4100");
    }
    if (strcmp(cmd, "_exec") == 0 && argc >= 3) /* internal: how keel starts a managed backend */
        return exec_backend(&argv[2]);
    if (strcmp(cmd, "demo") == 0)
        return keel_demo_run(argv[0]);
    if (strcmp(cmd, "audit") == 0) { /* its flags are report.c's, but for help */
        for (int i = 2; i < argc; i++)
            if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
                fputs(usage, stdout);
                return 0;
            }
        return keel_report_run(argc, argv);
    }
    if (strcmp(cmd, "key") == 0) {
        if (argc == 3 && (strcmp(argv[2], "-h") == 0 || strcmp(argv[2], "--help") == 0)) {
            fputs(usage, stdout);
            return 0;
        }
        if (argc != 4 || strcmp(argv[2], "new") != 0 || argv[3][0] == '\0' || argv[3][0] == '-') {
            fprintf(stderr, "keel key: expected `keel key new NAME`\n%s", usage);
            return 2;
        }
        return keel_key_new(argv[3]);
    }
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "keel: unknown command \"%s\"\n%s", cmd, usage);
    return 2;
}
