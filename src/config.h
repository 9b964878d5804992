/* config.h - keel's configuration (DESIGN.md "Configuration"), loaded from YAML with libyaml.
 * Every error names FILE:LINE: key: problem, and one load reports every error it finds (struct
 * keel_config_errors). The loaded config is immutable and owned by one struct keel_config;
 * everything in it dies with keel_config_free. */
#ifndef KEEL_CONFIG_H
#define KEEL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct keel_timeouts {
    uint64_t connect_ms;    /* TCP+TLS connect to the upstream */
    uint64_t first_byte_ms; /* until the first content progress */
    uint64_t stall_ms;      /* longest gap between two content progresses */
    uint64_t total_ms;      /* the whole client request, all attempts included */
};

struct keel_retry {
    uint64_t same_target; /* extra tries on one target before failing over */
    uint64_t backoff_ms;  /* base of full-jitter exponential backoff */
    uint64_t max_wait_ms; /* longest 429 Retry-After worth waiting for on the same target */
};

struct keel_breaker_conf {
    uint64_t failures;   /* consecutive counting failures that open it */
    uint64_t rejections; /* consecutive auth/not_found rejections that open it (README: why apart) */
    uint64_t cooldown_ms;
    uint64_t max_cooldown_ms;
    enum keel_probe_mode {
        KEEL_PROBE_BACKGROUND, /* `probe: background` (default): keel probes an open target itself */
        KEEL_PROBE_REQUEST,    /* `probe: request`: the first client request after the cooldown is
                                * the probe, the cooldown doubled after each failed one */
    } probe;
};

/* a local inference server keel runs and heals (seed 002) */
struct keel_managed_conf {
    char **argv;               /* command; argv[0] resolved to a path at load; "{port}" kept */
    size_t argc;
    char **env;                /* "NAME=value": the child's whole environment */
    size_t nenv;
    char *health;              /* path polled until 200, e.g. "/health" */
    uint64_t start_timeout_ms; /* spawn -> ready, or it is a failed start */
    int port;                  /* fixed port; 0 = keel picks a free one once */
    int ready_probe;           /* after health: one tiny real completion must answer */
    char *probe_model;         /* the model that probe asks for; NULL = the first target's */
    uint64_t idle_unload_ms;   /* stop it after this long without requests; 0 = never */
};

/* an upstream whose inference servers a control plane runs (seed 002 as it happened: Lemonade's
 * lemond, LM Studio, llama-swap): keel asks it to load a target's model, reads the data-plane URL
 * back from its health answer after every load, and sends chat traffic there */
struct keel_control_conf {
    char *url;                    /* the control API's base URL, without trailing '/' */
    char *load, *unload, *health; /* paths under url: POST, POST, GET */
    char *body;                   /* load's and unload's body; "{model}" stands for the model */
    char *url_at;                 /* where health's answer holds the model's data-plane URL (core/jpath.h) */
    char *base_path;              /* appended to that URL to give the target's base_url ("" none) */
    uint64_t load_timeout_ms;     /* unload, load, read back and check: the whole sequence */
    int ready_probe;              /* the data plane must answer one 1-token completion first */
};

#define KEEL_MAX_UPSTREAM_HEADERS 16 /* an upstream's `headers:`, at most */
#define KEEL_MAX_WORKERS 64          /* `workers:`, at most */

struct keel_upstream_conf {
    char *name;
    const char *kind; /* the protocol it speaks: "openai" or "anthropic" (core/event.h's decoders) */
    char *base_url; /* without trailing '/'; "{port}" replaced once the managed port is known */
    char *api_key;  /* secret (STYLE S1): never logged; wiped on free; NULL if none */
    char **headers; /* [nheaders] "Name: value" lines sent with every request to it (`headers:`;
                     * values may hold secrets: never logged, wiped on free) */
    size_t nheaders;
    int responses;  /* it serves OpenAI's Responses API at {base_url}/responses (`responses: true`,
                     * kind openai only): a Responses client's request goes to it as sent */
    struct keel_managed_conf *managed; /* NULL: a remote upstream */
    struct keel_control_conf *control; /* NULL: none; else base_url is NULL: the data plane's URL
                                        * is the control plane's to say (managed.c) */
};

/* whether keel runs or reaches the upstream's servers through a backend (managed.h): one it
 * starts itself, or one a control plane loads */
static inline int keel_upstream_backed(const struct keel_upstream_conf *u)
{
    return u->managed != NULL || u->control != NULL;
}

struct keel_target_conf {
    const struct keel_upstream_conf *upstream; /* borrowed from keel_config.upstreams */
    char *model;                               /* the model name sent upstream */
    struct keel_timeouts timeouts;             /* defaults merged with this target's overrides */
    struct keel_retry retry;
    struct keel_breaker_conf breaker;
    uint64_t context_window; /* tokens; 0 = not declared */
    int stream_upstream;     /* ask for a stream even for a non-stream client, and assemble it (1) */
    uint64_t max_tokens;     /* sent to a target whose protocol requires it when the client set none */
    int continuation;        /* `continuation: prefill` (1): it continues an assistant prefill, so a
                              * stream cut after the commit point may be finished on it */
    char *continuation_body; /* `continuation_body:`: a JSON object whose members go into the body
                              * of a continuation request to it (vLLM: continue_final_message); NULL */
    int priced;              /* `price:` given: what its tokens cost, per million (currency units) */
    double price_input, price_output, price_cached; /* cached: of the input, read from a cache
                                                      * (the input price when not given) */
};

/* the API an alias serves (a model's `api` key): the endpoint its clients call and the one its
 * targets are asked on */
enum keel_api {
    KEEL_API_CHAT,       /* "chat", the default: chat completions (and Messages, translated) */
    KEEL_API_EMBEDDINGS, /* "embeddings": POST /v1/embeddings; no target on a kind anthropic
                          * upstream (it has no such API); stream_upstream, max_tokens unused */
};

struct keel_model_conf {
    char *name;        /* the alias clients send as "model" */
    enum keel_api api; /* KEEL_API_CHAT unless the model says `api: embeddings` */
    uint64_t cliff_ms; /* the client's cancel deadline for this model (seed 000) */
    struct keel_target_conf *targets;
    size_t ntargets; /* >= 1 */
};

/* a client key keel issued (`keys:` / `keys_file:`): only its hash is known */
struct keel_key_conf {
    char *name;                /* what the audit, metrics and `keel audit --key` call it */
    unsigned char sha256[32];  /* SHA-256 of the key as the client sends it */
    char **models;             /* the aliases it may use, [nmodels]; NULL: every one */
    size_t nmodels;
    uint64_t rpm, tpm;         /* requests and tokens per minute; 0: no limit */
};

/* `state:`: where instances share breakers and cool-downs (Redis); absent: this process alone */
struct keel_state_conf {
    char *host;     /* from `redis: redis://[:PASSWORD@]HOST[:PORT][/DB]` */
    int port;       /* 6379 when not given */
    int db;         /* 0 when not given */
    char *password; /* secret: never logged; NULL: no AUTH */
    char *prefix;   /* of every key and channel keel uses; "keel:" by default */
};

struct keel_config {
    int refs;                /* keel_config_hold/drop: the gateway and each request hold one */
    char *file;
    char *listen_host; /* as written: an IP literal or a host name */
    char *listen_addr; /* the numeric address to bind: listen_host itself if a literal, else what
                        * it resolved to at load (its first IPv4 address, else its first IPv6 one) */
    int listen_port;   /* 0 = any free port (tests) */
    char *admin_host;  /* admin_listen, as listen_host */
    char *admin_addr;  /* as listen_addr */
    int admin_port;
    char *audit_log;         /* NULL if none */
    uint64_t audit_max_size; /* rotate past this many bytes */
    uint64_t audit_keep;     /* rotated files kept: FILE.1 .. FILE.N */
    char *webhook;           /* events.webhook: URL events are POSTed to; NULL = log only */
    uint64_t max_body;       /* largest client request body, bytes */
    uint64_t drain_ms;       /* how long SIGTERM waits for in-flight requests */
    uint64_t max_inflight;   /* client requests in flight before new ones get 503 gateway_busy */
    uint64_t workers;        /* loops serving clients (gateway.c); 0: one per core. At start only */
    uint64_t max_connections; /* open client connections; 0 = from the open-file limit at start */
    uint64_t max_memory;     /* bytes all requests in flight may hold in bodies and buffered answers */
    uint64_t max_headers;    /* header fields per request (431 past it) */
    uint64_t max_header_size; /* bytes of a request's head (431 past it) */
    uint64_t max_json_depth; /* nesting of a request body (400 past it) */
    uint64_t header_timeout_ms; /* a request's whole head, from accept or its first byte */
    uint64_t body_timeout_ms;   /* a request's whole body, from its head */
    uint64_t idle_timeout_ms;   /* a kept-alive connection between requests */
    uint64_t send_timeout_ms;   /* one write the client does not take */
    uint64_t cliff_ms;       /* default cliff: the clients' cancel deadline */
    uint64_t cliff_margin_ms; /* warn when a model's p99 or max comes this close to its cliff */
    struct keel_timeouts timeouts; /* defaults */
    struct keel_retry retry;
    struct keel_breaker_conf breaker;
    struct keel_upstream_conf *upstreams;
    size_t nupstreams;
    struct keel_model_conf *models;
    struct keel_key_conf *keys; /* `keys:` then `keys_file:`'s; none: every client is let in */
    size_t nkeys;
    char *admin_token;          /* a bearer token the admin listener asks for (all but /healthz); NULL: none */
    struct keel_state_conf *state; /* NULL: no shared state */
    size_t nmodels;
};

#define KEEL_CONFIG_MAX_ERRORS 20

/* The errors one load found, in file order: sorted by line, in the order found within a line.
 * Past KEEL_CONFIG_MAX_ERRORS the first ones in the file are kept and the rest only counted.
 * Caller storage, filled whole by each load (no pointers in it, nothing to free). A load stops
 * early only where the rest would mean nothing: a YAML syntax error, a file that is not a
 * mapping, a file that cannot be read. */
struct keel_config_errors {
    size_t n;    /* entries of msg[]: 0 iff the load returned a config; <= KEEL_CONFIG_MAX_ERRORS */
    size_t more; /* errors found past the cap: counted, not kept */
    char msg[KEEL_CONFIG_MAX_ERRORS][512]; /* "FILE:LINE: key: problem" ("FILE: problem": no line) */
    unsigned long _line[KEEL_CONFIG_MAX_ERRORS]; /* msg[i]'s line (0: none), the sort key */
};

/* Returns a config, or NULL with every error found in errs. Caller frees with keel_config_free.
 * `getenv_fn` resolves ${VAR} (NULL = getenv). listen and admin_listen host names are resolved
 * here (getaddrinfo: /etc/hosts, DNS), so a name that does not resolve is a config error. */
struct keel_config *keel_config_load_all(const char *file, struct keel_config_errors *errs);
struct keel_config *keel_config_parse_all(const char *file, const char *text, size_t len,
                                          const char *(*getenv_fn)(const char *),
                                          struct keel_config_errors *errs);
/* The same for a caller that reports on one line (SIGHUP's log line, the fuzz drivers): err gets
 * the first error in the file, then " (and N more errors)" if there are others. */
struct keel_config *keel_config_load(const char *file, char *err, size_t errlen);
struct keel_config *keel_config_parse(const char *file, const char *text, size_t len,
                                      const char *(*getenv_fn)(const char *), char *err, size_t errlen);
void keel_config_free(struct keel_config *c);
/* reference counting for SIGHUP: a config lives while a request started under it runs */
struct keel_config *keel_config_hold(struct keel_config *c);
void keel_config_drop(struct keel_config *c);
const struct keel_model_conf *keel_config_model(const struct keel_config *c, const char *name);

/* "host:port" or "[v6]:port" -> host (malloc'd) and port; 0 or -EINVAL */
int keel_parse_hostport(const char *s, char **host, int *port);

#endif
