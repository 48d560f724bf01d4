/**
 * @file obs.h
 * @brief Observability: metrics registry, Prometheus exposition, HTTP
 * endpoint, per-component resource probe and the report renderer.
 *
 * Threads: a registry is shared by every component of a process. Creating a
 * series takes the registry's mutex (cold path, done once per series at
 * start-up); updating a series is lock-free (C11 atomics) and allocates
 * nothing, so it may be called per record from any thread. Rendering takes
 * the mutex only to walk the list of series.
 */
#ifndef DRST_OBS_H
#define DRST_OBS_H

#include <stdio.h>
#include "drst/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Metrics registry                                                    */
/* ------------------------------------------------------------------ */

typedef struct drst_metrics drst_metrics_t;
/** One labelled series (a counter, gauge or histogram); owned by its registry. */
typedef struct drst_metric drst_metric_t;

typedef enum drst_metric_type {
    DRST_METRIC_COUNTER = 0,  /**< monotonic; rendered as `counter` */
    DRST_METRIC_GAUGE = 1,    /**< set/add; rendered as `gauge` */
    DRST_METRIC_HISTOGRAM = 2 /**< cumulative buckets, _sum and _count */
} drst_metric_type_t;

/** @brief New empty registry, or NULL (message in err). */
drst_metrics_t *drst_metrics_new(char *err, size_t errlen);

/** @brief Free a registry and every series in it; NULL is a no-op. No
 * thread may use its series any more. */
void drst_metrics_free(drst_metrics_t *m);

/**
 * @brief Get or create the series `name{labels}`.
 *
 * @param name    metric name, [a-zA-Z_:][a-zA-Z0-9_:]*; every series of one
 *                name must have the same type and help (first one wins for help)
 * @param help    one-line help text (copied)
 * @param labels  NULL or a NULL-terminated list of key, value, key, value...
 *                (copied); keys [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"
 * @param buckets histogram upper bounds, strictly increasing, finite (copied;
 *                +Inf is implicit); NULL/0 for counters and gauges. A
 *                histogram with NULL buckets gets 1e-5..10 in a 1-2.5-5 series.
 * @return the series (owned by the registry, valid until drst_metrics_free())
 *         or NULL with the message in err (bad name, type clash, no memory).
 * @locks takes the registry mutex. @locality any thread.
 */
drst_metric_t *drst_metrics_get(drst_metrics_t *m, drst_metric_type_t type, const char *name,
                                const char *help, const char *const *labels, const double *buckets,
                                size_t nbuckets, char *err, size_t errlen);

/** @brief Add v (>= 0 for counters; negative adds are ignored on counters).
 * Lock-free, no allocation. */
void drst_metric_add(drst_metric_t *s, double v);
/** @brief Add 1. */
void drst_metric_inc(drst_metric_t *s);
/** @brief Set a gauge (ignored on other types). */
void drst_metric_set(drst_metric_t *s, double v);
/** @brief Record one observation into a histogram (ignored on other types). */
void drst_metric_observe(drst_metric_t *s, double v);
/** @brief Current value of a counter or gauge; the count of a histogram. */
double drst_metric_value(const drst_metric_t *s);
/** @brief Sum of a histogram's observations (0 for other types). */
double drst_metric_sum(const drst_metric_t *s);

/**
 * @brief Render every series in Prometheus text exposition format 0.0.4
 * (`# HELP`, `# TYPE`, samples; families in creation order).
 * @param out receives a malloc'ed NUL-terminated text, freed by the caller
 * @param len receives its length (may be NULL)
 * @locks takes the registry mutex.
 */
drst_err_t drst_metrics_render(drst_metrics_t *m, char **out, size_t *len, char *err,
                               size_t errlen) DRST_WUR;

/**
 * @brief Append one JSON line `{"ts":T,"metrics":{"name{labels}":value,...}}`
 * to `f` (histograms contribute name_count and name_sum). This is the
 * metrics JSONL file of docs/formats.md.
 * @locks takes the registry mutex.
 */
drst_err_t drst_metrics_write_jsonl(drst_metrics_t *m, FILE *f, double ts, char *err,
                                    size_t errlen) DRST_WUR;

/* ------------------------------------------------------------------ */
/* HTTP endpoint (libmicrohttpd, one internal thread)                  */
/* ------------------------------------------------------------------ */

typedef struct drst_http drst_http_t;

/**
 * @brief Health callback for /healthz: return 0 if healthy (HTTP 200), non-0
 * otherwise (HTTP 503); write a short message into msg. Called on the HTTP
 * thread: it must be thread-safe.
 */
typedef int (*drst_health_fn)(void *opaque, char *msg, size_t msglen);

/**
 * @brief Parse "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT".
 * A missing host means 127.0.0.1 (loopback unless told otherwise); port 0
 * asks the system for a free port.
 * @param host receives the host text (NUL-terminated), hostlen >= 2
 */
drst_err_t drst_metrics_addr_parse(const char *s, char *host, size_t hostlen, uint16_t *port,
                                   char *err, size_t errlen) DRST_WUR;

/**
 * @brief Serve GET /metrics (rendered from `m`) and GET /healthz on `addr`
 * (drst_metrics_addr_parse() syntax; the host must be a numeric IPv4/IPv6
 * address or "localhost"). Anything else answers 404.
 * @param m       borrowed; must outlive the server
 * @param health  may be NULL (always healthy)
 * @return the running server (stop with drst_http_stop()) or NULL (message
 *         in err, e.g. address in use).
 */
drst_http_t *drst_http_start(const char *addr, drst_metrics_t *m, drst_health_fn health,
                             void *opaque, char *err, size_t errlen);

/** @brief The bound port (useful after asking for port 0). */
uint16_t drst_http_port(const drst_http_t *h);

/** @brief Stop the server thread and free it; NULL is a no-op. */
void drst_http_stop(drst_http_t *h);

/* ------------------------------------------------------------------ */
/* Resource probe                                                      */
/* ------------------------------------------------------------------ */

typedef struct drst_probe drst_probe_t;

/**
 * @brief Start a probe appending `t,component,cpu_s,rss_bytes` rows to
 * `csv_path` (header written if the file is new or empty) every `interval_s`
 * seconds from its own thread, plus one row per component at
 * drst_probe_sample() and at drst_probe_free().
 *
 * cpu_s is the user+system CPU time of the component's registered threads
 * (/proc/self/task/TID/stat, in clock ticks); the component "process" is
 * always present with the whole process's CPU time. rss_bytes is the
 * process's resident set (/proc/self/statm): threads share one address
 * space, so every component of a process reports the same RSS. t is
 * CLOCK_REALTIME seconds.
 * @param interval_s 0 disables the thread (samples only on request)
 */
drst_probe_t *drst_probe_new(const char *csv_path, double interval_s, char *err, size_t errlen);

/**
 * @brief Register the CALLING thread under `component` (several threads may
 * share a component; their CPU times are summed). Takes the probe's mutex.
 */
drst_err_t drst_probe_register_self(drst_probe_t *p, const char *component, char *err,
                                    size_t errlen) DRST_WUR;

/** @brief Write one row per component now. Takes the probe's mutex. */
drst_err_t drst_probe_sample(drst_probe_t *p, char *err, size_t errlen) DRST_WUR;

/** @brief Stop the thread, write a final sample, close the file; NULL is a no-op. */
void drst_probe_free(drst_probe_t *p);

/**
 * @brief CPU seconds (user+system) of thread `tid` of process `pid`
 * (tid 0: the whole process), read from /proc.
 */
drst_err_t drst_probe_read_cpu(long pid, long tid, double *cpu_s, char *err,
                               size_t errlen) DRST_WUR;

/** @brief Resident set size in bytes of process `pid` (0: self), from /proc/PID/statm. */
drst_err_t drst_probe_read_rss(long pid, uint64_t *rss_bytes, char *err, size_t errlen) DRST_WUR;

/** @brief The calling thread's kernel thread id. */
long drst_probe_gettid(void);

/* ------------------------------------------------------------------ */
/* Report                                                              */
/* ------------------------------------------------------------------ */

/** @brief Options of drst_report_write(); zero-initialise for defaults. */
typedef struct drst_report_opts {
    const char *in_dir;  /**< the run's files (docs/formats.md); default out_dir */
    const char *out_dir; /**< receives report.md, *.png, data/ (created) */
    const double *taus;  /**< accuracy tolerances; default 0.05, 0.1, 0.2 */
    size_t ntaus;
    size_t window;       /**< records per window for windowed accuracy; default 100 */
    const char *gnuplot; /**< gnuplot program; default "gnuplot" from PATH */
    const char *title;   /**< report title; default "drst run report" */
} drst_report_opts_t;

/** @brief What drst_report_write() found and made. */
typedef struct drst_report_info {
    size_t records;      /**< trace rows read */
    size_t images;       /**< images written */
    int gnuplot_missing; /**< 1 if gnuplot could not be run (report without images) */
    uint64_t rejected;   /**< input lines rejected (also reported to diag) */
} drst_report_info_t;

/**
 * @brief Read the run's files from in_dir and write out_dir/report.md plus
 * PNG images rendered by gnuplot (pngcairo) and the plotted data in
 * out_dir/data/. Missing optional files leave their sections out; no trace
 * file at all is DRST_ERR_NOTFOUND. Bad lines go to `diag`.
 * @param info may be NULL
 */
drst_err_t drst_report_write(const drst_report_opts_t *opts, drst_report_info_t *info,
                             drst_diag_t *diag, char *err, size_t errlen) DRST_WUR;

#ifdef __cplusplus
}
#endif
#endif /* DRST_OBS_H */
