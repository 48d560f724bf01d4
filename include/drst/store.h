/**
 * @file store.h
 * @brief The store: a keyed object store (local directory now, S3 later) and
 * the model release layout on top of it.
 *
 * Keys are relative to the store root, use '/' as separator and are
 * validated (drst_store_key_valid()): no empty key, no leading '/', no "."
 * or ".." component, no control characters, at most 1024 bytes.
 *
 * Backends are `const struct drst_store_ops` tables listed in one array in
 * src/lib/store/store.c; drst_store_open() picks one by URI scheme.
 *
 * Release layout (DESIGN.md): immutable `models/model_<UTC-ts>_<hash12>` and
 * `models/metrics_<UTC-ts>_<hash12>.json`, never overwritten; mutable
 * two-line pointers `models/latest` and `models/baseline` ("<model key>\n
 * <metrics key>\n") replaced atomically; `models/history`, an append-only
 * log of pointer moves (`<UTC-ts> <pointer> set|rollback <model> <metrics>`).
 * Readers only follow the pointers.
 *
 * A store handle may be used from several threads at once for reads; writers
 * to the same pointer must be serialized by the caller (one publisher).
 */
#ifndef DRST_STORE_H
#define DRST_STORE_H

#include "drst/common.h"
#include "drst/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct drst_store drst_store_t;

#define DRST_STORE_KEY_MAX 1024

/** @brief Called once per key by drst_store_list(); return non-zero to stop. */
typedef int (*drst_store_list_fn)(void *opaque, const char *key);

/**
 * @brief A store backend. Every function receives the backend state made by
 * open(); keys are already validated. Used only inside the library and by
 * backend authors.
 */
struct drst_store_ops {
    const char *scheme; /**< URI scheme, e.g. "file"; "" for a bare path */
    drst_err_t (*open)(const char *location, void **state, char *err, size_t errlen);
    void (*close)(void *state);
    /** Whole object into a malloc'd buffer (NUL-terminated beyond len). NOTFOUND if absent. */
    drst_err_t (*get)(void *state, const char *key, unsigned char **buf, size_t *len, char *err,
                      size_t errlen);
    /** Create an object that must not exist yet (BUSY if it does); atomic and durable. */
    drst_err_t (*put_immutable)(void *state, const char *key, const void *buf, size_t len,
                                char *err, size_t errlen);
    /** Create or replace atomically: readers see the old or the new bytes, never a mix. */
    drst_err_t (*put_atomic)(void *state, const char *key, const void *buf, size_t len, char *err,
                             size_t errlen);
    /** Append bytes to an object (created if absent); may be NULL (get + put_atomic used). */
    drst_err_t (*append)(void *state, const char *key, const void *buf, size_t len, char *err,
                         size_t errlen);
    /** Every key under `prefix` (a folder, e.g. "models/"), in byte order. */
    drst_err_t (*list)(void *state, const char *prefix, drst_store_list_fn fn, void *opaque,
                       char *err, size_t errlen);
    /** 1 if the key exists, 0 if not (errors are reported as "does not exist"). */
    int (*exists)(void *state, const char *key);
    /** Remove an object (for tests and garbage collection). NOTFOUND if absent. */
    drst_err_t (*del)(void *state, const char *key, char *err, size_t errlen);
    /** Optional (NULL: writes are never pending): wait up to timeout_s for
     * asynchronous writes to reach the backend. DRST_OK when none is left,
     * else DRST_ERR_TIMEOUT naming how many remain and the last upload error. */
    drst_err_t (*flush)(void *state, double timeout_s, char *err, size_t errlen);
};

/** @brief 1 if `key` is a valid store key, else 0. */
int drst_store_key_valid(const char *key);

/**
 * @brief Open a store: a directory path, or `file://PATH` (created if
 * missing, with datasets/ models/ state/ results/), or `s3://bucket/prefix`
 * (local-first: writes land in a spool and are uploaded asynchronously; see
 * docs/s3.md for endpoint, region and credentials).
 * @return a handle owned by the caller (drst_store_close()) or NULL.
 */
drst_store_t *drst_store_open(const char *uri, char *err, size_t errlen);
/** @brief Close a store; NULL is a no-op. */
void drst_store_close(drst_store_t *s);
/** @brief The location the store was opened with. */
const char *drst_store_uri(const drst_store_t *s);

drst_err_t drst_store_get(drst_store_t *s, const char *key, unsigned char **buf, size_t *len,
                          char *err, size_t errlen) DRST_WUR;
drst_err_t drst_store_put_immutable(drst_store_t *s, const char *key, const void *buf, size_t len,
                                    char *err, size_t errlen) DRST_WUR;
drst_err_t drst_store_put_atomic(drst_store_t *s, const char *key, const void *buf, size_t len,
                                 char *err, size_t errlen) DRST_WUR;
drst_err_t drst_store_append(drst_store_t *s, const char *key, const void *buf, size_t len,
                             char *err, size_t errlen) DRST_WUR;
drst_err_t drst_store_list(drst_store_t *s, const char *prefix, drst_store_list_fn fn, void *opaque,
                           char *err, size_t errlen) DRST_WUR;
int drst_store_exists(drst_store_t *s, const char *key);
drst_err_t drst_store_delete(drst_store_t *s, const char *key, char *err, size_t errlen) DRST_WUR;

/**
 * @brief Wait up to `timeout_s` seconds for asynchronous writes (S3 spool) to
 * reach the backend. A backend without pending writes returns DRST_OK at once.
 * @return DRST_OK, or DRST_ERR_TIMEOUT naming how many writes remain.
 */
drst_err_t drst_store_flush(drst_store_t *s, double timeout_s, char *err, size_t errlen) DRST_WUR;

/* ---- model releases ---- */

/** @brief Which pointers a publish moves. */
typedef enum drst_publish {
    DRST_PUBLISH_NONE = 0,
    DRST_PUBLISH_LATEST = 1,
    DRST_PUBLISH_BASELINE = 2,
    DRST_PUBLISH_BOTH = 3
} drst_publish_t;

/** @brief A pointer's content: model key and metrics key. */
typedef struct drst_release {
    char model_key[DRST_STORE_KEY_MAX + 1];
    char metrics_key[DRST_STORE_KEY_MAX + 1];
} drst_release_t;

/**
 * @brief Publish a model: write models/model_<ts>_<hash12> and its metrics
 * JSON (immutable), then move the pointers in `which` and log the moves.
 * @param rel receives the keys written (may be NULL)
 */
drst_err_t drst_store_publish_model(drst_store_t *s, const drst_model_t *m, drst_publish_t which,
                                    drst_release_t *rel, char *err, size_t errlen) DRST_WUR;

/**
 * @brief Read pointer `name` ("latest" or "baseline").
 * @return DRST_OK, DRST_ERR_NOTFOUND (no such pointer), DRST_ERR_FORMAT.
 */
drst_err_t drst_store_read_pointer(drst_store_t *s, const char *name, drst_release_t *rel,
                                   char *err, size_t errlen) DRST_WUR;

/**
 * @brief Point `name` at a release (atomic replace, then a history line).
 * The model key must exist. An empty metrics key is derived from the model key.
 */
drst_err_t drst_store_set_pointer(drst_store_t *s, const char *name, const drst_release_t *rel,
                                  char *err, size_t errlen) DRST_WUR;

/**
 * @brief Move pointer `name` back to the release it pointed at before the
 * current one (history replayed as a stack: a set pushes, a rollback pops).
 * @param rel receives the release now pointed at (may be NULL)
 * @return DRST_OK or DRST_ERR_STATE (nothing to roll back to).
 */
drst_err_t drst_store_rollback(drst_store_t *s, const char *name, drst_release_t *rel, char *err,
                               size_t errlen) DRST_WUR;

/**
 * @brief Resolve "latest", "baseline" or a model key (with or without the
 * "models/" prefix) to a release.
 */
drst_err_t drst_store_resolve(drst_store_t *s, const char *ref, drst_release_t *rel, char *err,
                              size_t errlen) DRST_WUR;

/** @brief Resolve `ref` and load the model it names. */
drst_err_t drst_store_load_model(drst_store_t *s, const char *ref, drst_model_t **out,
                                 drst_release_t *rel, char *err, size_t errlen) DRST_WUR;

#ifdef __cplusplus
}
#endif
#endif /* DRST_STORE_H */
