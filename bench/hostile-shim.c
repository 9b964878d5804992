/* hostile-shim.c - bench/hostile-shim.so, LD_PRELOADed into `keel sim` by bench/hostile.sh only:
 * every connection the sim accepts gets SO_SNDBUF = $HOSTILE_SNDBUF bytes. The sim stands for a
 * provider across a network; without it, each slow reader's stream would also park up to 4 MB
 * (loopback's autotuned send buffer) in the sim's socket on the same machine, and the sim, not
 * keel, would exhaust the machine's TCP memory. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/socket.h>

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (real == NULL)
        real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    int s = real(fd, addr, len, flags);
    const char *v = getenv("HOSTILE_SNDBUF");
    if (s >= 0 && v != NULL) {
        int size = (int)strtol(v, NULL, 10);
        if (size > 0)
            setsockopt(s, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
    return s;
}
