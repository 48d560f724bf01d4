/* The local store backend: one file per key under a root directory.
 * Immutable puts link() a fully written and fsync'ed temp file into place
 * (link fails if the key exists, so nothing is ever overwritten); atomic
 * puts rename() it over the old file and fsync the directory, so a reader
 * opening the key sees the old or the new bytes, never a mix. Temp files
 * start with '.', which list() skips. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error_int.h"
#include "store/store_int.h"

typedef struct local {
    char *root;
} local_t;

static char *join(const local_t *l, const char *key)
{
    size_t n = strlen(l->root) + strlen(key) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", l->root, key);
    return p;
}

/* mkdir -p of the directory part of `path` */
static int mkparents(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char *d = strdup(path);
    if (!d)
        return -1;
    char *s = strrchr(d, '/');
    if (s && s != d)
        *s = 0;
    else if (s)
        s[1] = 0;
    int fd = open(s ? d : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(d);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static drst_err_t local_open(const char *location, void **state, char *err, size_t errlen)
{
    static const char *const dirs[] = {"datasets", "models", "state", "results"};
    local_t *l = calloc(1, sizeof(*l));
    if (!l || !(l->root = strdup(location))) {
        free(l);
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "store: out of memory");
    }
    size_t n = strlen(l->root);
    while (n > 1 && l->root[n - 1] == '/')
        l->root[--n] = 0;
    char *probe = join(l, "x");
    if (!probe || mkparents(probe) != 0) {
        drst_err_t rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno,
                                      "store: cannot create directory '%s'", l->root);
        free(probe);
        free(l->root);
        free(l);
        return rc;
    }
    free(probe);
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char *p = join(l, dirs[i]);
        if (!p || (mkdir(p, 0755) != 0 && errno != EEXIST)) {
            drst_err_t rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno,
                                          "store: cannot create '%s'", p ? p : dirs[i]);
            free(p);
            free(l->root);
            free(l);
            return rc;
        }
        free(p);
    }
    *state = l;
    return DRST_OK;
}

static void local_close(void *state)
{
    local_t *l = state;
    if (!l)
        return;
    free(l->root);
    free(l);
}

static drst_err_t local_get(void *state, const char *key, unsigned char **buf, size_t *len,
                            char *err, size_t errlen)
{
    drst_err_t rc = DRST_OK;
    char *p = join(state, key);
    unsigned char *b = NULL;
    if (!p)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "store: out of memory");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = drst_seterrno(err, errlen, errno == ENOENT ? DRST_ERR_NOTFOUND : DRST_ERR_IO, errno,
                           "store: cannot open key '%s'", key);
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = drst_seterr(err, errlen, DRST_ERR_IO, "store: key '%s' is not a regular file", key);
        goto out;
    }
    size_t n = (size_t)st.st_size, got = 0;
    b = malloc(n + 1);
    if (!b) {
        rc = drst_seterr(err, errlen, DRST_ERR_NOMEM, "store: out of memory reading '%s'", key);
        goto out;
    }
    while (got < n) {
        ssize_t k = read(fd, b + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "store: cannot read key '%s'", key);
            goto out;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    b[got] = 0;
    *buf = b;
    *len = got;
    b = NULL;
out:
    if (fd >= 0)
        close(fd);
    free(b);
    free(p);
    return rc;
}

/* Write a temp file next to `path`, fsync'ed; returns its malloc'd name. */
static drst_err_t write_temp(const char *path, const void *buf, size_t len, char **tmp_out,
                             char *err, size_t errlen)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "store: out of memory");
    snprintf(tmp, n, "%s", path);
    char *slash = strrchr(tmp, '/');
    snprintf(slash + 1, n - (size_t)(slash + 1 - tmp), ".tmp-XXXXXX");
    if (mkparents(tmp) != 0) {
        drst_err_t rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno,
                                      "store: cannot create the folder of '%s'", path);
        free(tmp);
        return rc;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        drst_err_t rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno,
                                      "store: cannot create a temp file for '%s'", path);
        free(tmp);
        return rc;
    }
    const unsigned char *p = buf;
    size_t off = 0;
    while (off < len) {
        ssize_t k = write(fd, p + off, len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    int e = errno;
    if (off < len || fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return drst_seterrno(err, errlen, DRST_ERR_IO, off < len ? e : errno,
                             "store: cannot write '%s'", path);
    }
    if (close(fd) != 0) {
        unlink(tmp);
        free(tmp);
        return drst_seterrno(err, errlen, DRST_ERR_IO, errno, "store: cannot write '%s'", path);
    }
    *tmp_out = tmp;
    return DRST_OK;
}

static drst_err_t local_put(void *state, const char *key, const void *buf, size_t len, int replace,
                            char *err, size_t errlen)
{
    char *p = join(state, key), *tmp = NULL;
    if (!p)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "store: out of memory");
    drst_err_t rc = write_temp(p, buf, len, &tmp, err, errlen);
    if (rc)
        goto out;
    if (replace) {
        if (rename(tmp, p) != 0) {
            rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "store: cannot replace key '%s'",
                               key);
            unlink(tmp);
            goto out;
        }
    } else {
        if (link(tmp, p) != 0) {
            int e = errno;
            unlink(tmp);
            rc = e == EEXIST ? drst_seterr(err, errlen, DRST_ERR_BUSY,
                                           "store: key '%s' exists and is immutable", key)
                             : drst_seterrno(err, errlen, DRST_ERR_IO, e,
                                             "store: cannot create key '%s'", key);
            goto out;
        }
        unlink(tmp);
    }
    if (fsync_dir_of(p) != 0)
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "store: cannot sync the folder of '%s'",
                           key);
out:
    free(tmp);
    free(p);
    return rc;
}

static drst_err_t local_put_immutable(void *state, const char *key, const void *buf, size_t len,
                                      char *err, size_t errlen)
{
    return local_put(state, key, buf, len, 0, err, errlen);
}

static drst_err_t local_put_atomic(void *state, const char *key, const void *buf, size_t len,
                                   char *err, size_t errlen)
{
    return local_put(state, key, buf, len, 1, err, errlen);
}

static drst_err_t local_append(void *state, const char *key, const void *buf, size_t len, char *err,
                               size_t errlen)
{
    char *p = join(state, key);
    drst_err_t rc = DRST_OK;
    if (!p)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "store: out of memory");
    if (mkparents(p) != 0) {
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "store: cannot create folder of '%s'",
                           key);
        free(p);
        return rc;
    }
    int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "store: cannot open key '%s'", key);
        free(p);
        return rc;
    }
    /* one write() per record: O_APPEND keeps records whole between writers */
    ssize_t k = write(fd, buf, len);
    if (k < 0 || (size_t)k != len || fsync(fd) != 0)
        rc =
            drst_seterrno(err, errlen, DRST_ERR_IO, errno, "store: cannot append to key '%s'", key);
    close(fd);
    free(p);
    return rc;
}

typedef struct keylist {
    char **v;
    size_t n, cap;
} keylist_t;

static int kl_push(keylist_t *kl, const char *k)
{
    if (kl->n == kl->cap) {
        size_t cap = kl->cap ? kl->cap * 2 : 64;
        char **v = realloc(kl->v, cap * sizeof(*v));
        if (!v)
            return -1;
        kl->v = v;
        kl->cap = cap;
    }
    if (!(kl->v[kl->n] = strdup(k)))
        return -1;
    kl->n++;
    return 0;
}

static int walk(const char *root, const char *rel, keylist_t *kl, int depth)
{
    size_t n = strlen(root) + strlen(rel) + 2;
    char *dir = malloc(n);
    if (!dir)
        return -1;
    snprintf(dir, n, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(dir);
    free(dir);
    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        size_t kn = strlen(rel) + strlen(e->d_name) + 2;
        char *key = malloc(kn);
        if (!key) {
            rc = -1;
            break;
        }
        snprintf(key, kn, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        size_t fn = strlen(root) + kn + 1;
        char *full = malloc(fn);
        struct stat st;
        if (!full) {
            free(key);
            rc = -1;
            break;
        }
        snprintf(full, fn, "%s/%s", root, key);
        if (stat(full, &st) == 0) {
            if (S_ISDIR(st.st_mode) && depth < 32)
                rc = walk(root, key, kl, depth + 1);
            else if (S_ISREG(st.st_mode))
                rc = kl_push(kl, key);
        }
        free(full);
        free(key);
    }
    closedir(d);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static drst_err_t local_list(void *state, const char *prefix, drst_store_list_fn fn, void *opaque,
                             char *err, size_t errlen)
{
    local_t *l = state;
    keylist_t kl = {0};
    /* walk the folder part of the prefix, then filter on the whole prefix */
    char *dir = strdup(prefix ? prefix : "");
    if (!dir)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "store: out of memory");
    char *s = strrchr(dir, '/');
    if (s)
        *s = 0;
    else
        dir[0] = 0;
    drst_err_t rc = DRST_OK;
    if (walk(l->root, dir, &kl, 0) != 0)
        rc = drst_seterrno(err, errlen, DRST_ERR_IO, errno, "store: cannot list '%s'",
                           prefix ? prefix : "");
    free(dir);
    if (!rc && kl.n)
        qsort(kl.v, kl.n, sizeof(*kl.v), cmp_str);
    size_t plen = prefix ? strlen(prefix) : 0;
    int stop = 0;
    for (size_t i = 0; i < kl.n; i++) {
        if (!rc && !stop && strncmp(kl.v[i], prefix ? prefix : "", plen) == 0)
            stop = fn(opaque, kl.v[i]);
        free(kl.v[i]);
    }
    free(kl.v);
    return rc;
}

static int local_exists(void *state, const char *key)
{
    char *p = join(state, key);
    struct stat st;
    int ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

static drst_err_t local_del(void *state, const char *key, char *err, size_t errlen)
{
    char *p = join(state, key);
    if (!p)
        return drst_seterr(err, errlen, DRST_ERR_NOMEM, "store: out of memory");
    drst_err_t rc = DRST_OK;
    if (unlink(p) != 0)
        rc = drst_seterrno(err, errlen, errno == ENOENT ? DRST_ERR_NOTFOUND : DRST_ERR_IO, errno,
                           "store: cannot delete key '%s'", key);
    free(p);
    return rc;
}

const struct drst_store_ops drst_store_local_ops = {
    .scheme = "file",
    .open = local_open,
    .close = local_close,
    .get = local_get,
    .put_immutable = local_put_immutable,
    .put_atomic = local_put_atomic,
    .append = local_append,
    .list = local_list,
    .exists = local_exists,
    .del = local_del,
};
