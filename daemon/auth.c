/*
 * auth.c — the token check of the writes (see auth.h): read the token file,
 * compare in constant time, answer 401 / 403 / 503 when the write may not
 * go on. Nothing here keeps the token: it is wiped from the stack after each
 * check.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

int auth_read_token(const char *file, char *tok, size_t len)
{
    if (file == NULL || *file == '\0')
        return -ENOENT;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, tok, len - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return e == ENOENT ? -EIO : -e; /* -ENOENT says "no token file" only */
    tok[n] = '\0';
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
        tok[--n] = '\0';
    return n > 0 ? 0 : -ENODATA;
}

bool auth_token_matches(const char *want, const char *got)
{
    size_t lw = strlen(want), lg = strlen(got);
    unsigned char diff = (unsigned char)(lw != lg);
    for (size_t i = 0; i < lw; i++)
        diff |= (unsigned char)(want[i] ^ (i < lg ? got[i] : 0));
    return diff == 0;
}

int auth_check(const char *token_file, const char *auth, api_response *resp)
{
    char tok[AUTH_TOKEN_MAX];
    int rc = auth_read_token(token_file, tok, sizeof tok);
    if (rc == -ENOENT) {
        api_error(resp, 403, "writes are disabled: no http.token_file");
        rc = -EPERM;
    } else if (rc < 0) {
        api_error(resp, 503, "token file unreadable");
    } else if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0 ||
               !auth_token_matches(tok, auth + 7)) {
        resp->www_authenticate = "Bearer realm=\"parkpulse\"";
        api_error(resp, 401, "missing or wrong bearer token");
        rc = -EACCES;
    }
    explicit_bzero(tok, sizeof tok);
    return rc;
}

int api_authorize(pp_app *app, const char *authorization, api_response *resp)
{
    pthread_rwlock_rdlock(&app->cfg_lock);
    int rc = auth_check(app->cfg->http_token_file, authorization, resp);
    pthread_rwlock_unlock(&app->cfg_lock);
    return rc;
}
