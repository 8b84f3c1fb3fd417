/*
 * mhd_ceiling.c — the ceiling of `make bench`'s HTTP figures: a minimal
 * libmicrohttpd server that answers every GET with the same bytes from memory
 * (read once from FILE), with the daemon's threading (an internal polling
 * thread pool of THREADS threads on epoll) and the response queued on the
 * access handler's second call (0.9.75 closes the connection when it is queued
 * on the first; see SPEC appendix). Whatever parkpulsed adds on top — routing,
 * locking, building the JSON, caching — is measured against this.
 *
 *   mhd_ceiling PORT THREADS CONTENT-TYPE FILE     (runs until SIGINT/SIGTERM)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct MHD_Response *body;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_len, void **ctx)
{
    static int first_call;
    (void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_len;
    if (*ctx == NULL) {
        *ctx = &first_call;
        return MHD_YES;
    }
    return MHD_queue_response(c, MHD_HTTP_OK, body);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: mhd_ceiling PORT THREADS CONTENT-TYPE FILE\n");
        return 2;
    }
    int port = atoi(argv[1]), threads = atoi(argv[2]);
    if (port <= 0 || port > 65535 || threads < 1 || threads > 64) {
        fprintf(stderr, "mhd_ceiling: bad port or thread count\n");
        return 2;
    }
    FILE *f = fopen(argv[4], "rb");
    if (f == NULL) {
        perror(argv[4]);
        return 1;
    }
    static char data[64 << 20];
    size_t len = fread(data, 1, sizeof data, f);
    fclose(f);
    body = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_PERSISTENT);
    if (body == NULL || MHD_add_response_header(body, "Content-Type", argv[3]) != MHD_YES)
        return 1;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
        NULL, on_request, NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
        MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "mhd_ceiling: cannot listen on port %d\n", port);
        return 1;
    }
    printf("ready %zu bytes\n", len);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(body);
    return 0;
}
