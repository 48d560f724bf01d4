/**
 * @file run.h
 * @brief The whole loop in one process: offline training, a producer,
 * P partitions, N inference consumers, the drift monitor, the retrainer,
 * hot swap, metrics, traces and the report (`drst run`, docs/run.md).
 *
 * drst_run_execute() wires the public pieces of every plane: telemetry
 * (CSV tables), model + store (train, publish baseline and latest), stream
 * (in-process log or Kafka, JSON records, end-of-stream sentinels), control
 * (drst_monitor_t; the retrain of a trigger's window), obs (metrics
 * registry, optional HTTP endpoint, resource probe, drst_report_write()).
 *
 * Threads it starts (all joined before it returns): one producer, N
 * consumers (each its own group member of group "infer"), one monitor
 * (its own group "monitor", reordering records by sequence number), one
 * retrainer, the probe's sampler and, with metrics_addr, libmicrohttpd's.
 * The calling thread supervises: progress callback, metrics snapshots.
 *
 * Evaluation clock. Without tps (full speed) the run is evaluated on the
 * data's own clock: a release triggered at record i serves from record i + K
 * (K = retrain_lag, or when 0 the records the data clock advances during the
 * retrain's measured wall time at data_rate records per second, at least 1);
 * the producer holds back until the release is ready, so every record is
 * served by the same model whatever the machine's speed. With tps > 0 every
 * component runs asynchronously, as in production: a release serves as soon
 * as consumers see it (never a record at or before its trigger).
 */
#ifndef DRST_RUN_H
#define DRST_RUN_H

#include "drst/common.h"
#include "drst/model.h"
#include "drst/obs.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One streamed stage: a CSV file, optionally only its first or last rows. */
typedef struct drst_run_stage {
    const char *path; /**< CSV file (borrowed) */
    long head;        /**< >= 0: only the first `head` rows; -1: all */
    long tail;        /**< >= 0: only the last `tail` rows (after head); -1: all */
} drst_run_stage_t;

/**
 * @brief Parse "FILE[:head=N|:tail=N]" into `st` (st->path points into a
 * malloc'd copy returned in *storage, freed by the caller).
 * @return DRST_OK or DRST_ERR_INVAL (message in err).
 */
drst_err_t drst_run_stage_parse(const char *arg, drst_run_stage_t *st, char **storage, char *err,
                                size_t errlen) DRST_WUR;

/** @brief Live figures handed to the progress callback (supervisor thread). */
typedef struct drst_run_progress {
    double elapsed_s;    /**< wall seconds since the stream started */
    uint64_t total;      /**< records to stream */
    uint64_t produced;   /**< records produced */
    uint64_t inferred;   /**< records inferred (all consumers) */
    uint64_t monitored;  /**< records fed to the monitor */
    double rate;         /**< inferred records per second so far */
    double acc_static;   /**< cumulative acc@0.2 of the static model (NaN: none yet) */
    double acc_adaptive; /**< cumulative acc@0.2 of the adaptive model */
    double drift_score;  /**< last drift score (NaN: none yet) */
    int version;         /**< adaptive model version serving the newest records */
    uint64_t triggers, swaps;
    int retraining; /**< a retrain is running */
} drst_run_progress_t;

/** @brief Options of drst_run_execute(); start from drst_run_opts_init(). */
typedef struct drst_run_opts {
    const char *train_path;         /**< offline training CSV (required) */
    const drst_run_stage_t *stages; /**< streamed stages, in order (required) */
    size_t nstages;
    const char *out_dir;                 /**< run files + report (required; created) */
    const char *store;                   /**< store location; NULL: <out_dir>/store */
    int partitions;                      /**< P [3] */
    int consumers;                       /**< N inference consumers [3] */
    double tps;                          /**< > 0: pace the producer (asynchronous run) [0] */
    const char *bootstrap;               /**< Kafka bootstrap servers; NULL: in-process log */
    const char *topic;                   /**< ["drst-run"; Kafka: a fresh "drst-run-<ms>-<pid>"] */
    long retrain_lag;                    /**< K in records; 0: measured (see file comment) [0] */
    double data_rate;                    /**< data clock, records per second [1] */
    uint64_t seed;                       /**< models, monitor and retrain seed [42] */
    drst_model_family_t family;          /**< family of the offline (static) model [gbdt] */
    drst_model_family_t adaptive_family; /**< family of adaptive version 1, trained on the
                                              same offline data [knn] */
    size_t online;            /**< online memory capacity in records: every labelled record the
                                   monitor sees is searched by knn releases from the next record on
                                   (0: off) [65536] */
    const char *target;       /**< ["output_rate"] */
    const char *exclude;      /**< comma list of non-features ["input_rate,latency"] */
    size_t window;            /**< monitor window W [100] */
    size_t stride;            /**< monitor stride S [25] */
    uint64_t refresh;         /**< periodic retrain after this many records (0 off) [0] */
    const char *families;     /**< retrain candidates' families, e.g. "gbdt,ridge"; NULL:
                                   the adaptive family when the online memory is on
                                   (a release of another family cannot use it), else all */
    const char *metrics_addr; /**< serve /metrics and /healthz here; NULL: off */
    int no_report;            /**< do not call drst_report_write() at the end */
    volatile int *stop;       /**< set non-zero (e.g. from a signal) to stop early */
    /** Called about every progress_s seconds on the calling thread (may be NULL). */
    void (*progress)(void *opaque, const drst_run_progress_t *p);
    void *opaque;
    double progress_s; /**< [0.5] */
    /** Called once the HTTP endpoint listens (may be NULL), with its port. */
    void (*on_listen)(void *opaque, uint16_t port);
} drst_run_opts_t;

/** @brief Fill `o` with the defaults in brackets above (pointers NULL). */
void drst_run_opts_init(drst_run_opts_t *o);

/** @brief What a run measured (all accuracies prequential over the streamed records). */
typedef struct drst_run_summary {
    uint64_t records;       /**< records inferred */
    uint64_t labelled;      /**< of which with a label (scored) */
    double static_acc[3];   /**< acc@0.05, 0.1, 0.2 of the static (offline) model */
    double adaptive_acc[3]; /**< same for the adaptive (retrained, swapped) model */
    double static_mape, adaptive_mape;
    uint64_t triggers;   /**< monitor triggers that started a retrain */
    uint64_t suppressed; /**< triggers skipped: a retrain was in flight */
    uint64_t retrains;   /**< retrains finished */
    uint64_t retrain_failures;
    uint64_t swaps;          /**< releases that served records */
    uint64_t rejected_gate;  /**< retrains whose release did not pass the gain gate */
    double retrain_s_total;  /**< summed retrain wall time */
    long lag_min, lag_max;   /**< K applied (records), -1 when no release */
    int final_version;       /**< adaptive version at the end (1 = the offline release) */
    uint64_t online_records; /**< records in the online memory at the end */
    uint64_t errors;         /**< records that could not be decoded or predicted */
    uint64_t dead_letters;
    double train_s;        /**< offline training wall time */
    double wall_s;         /**< stream start to last record inferred */
    double records_per_s;  /**< records / wall_s */
    int async;             /**< 1 if paced (tps), 0 if evaluated on the data clock */
    uint16_t metrics_port; /**< bound port with metrics_addr, else 0 */
    size_t report_images;
    int gnuplot_missing;
    char report_error[DRST_ERRLEN]; /**< non-empty: the report failed (the run did not) */
} drst_run_summary_t;

/**
 * @brief Run the whole loop (see the file comment) and write the run files
 * of docs/formats.md under opts->out_dir, then the report.
 * @param sum   receives the figures (may be NULL)
 * @param diag  receives rejected CSV lines of the inputs (may be NULL)
 * @return DRST_OK, DRST_ERR_INVAL (bad option), DRST_ERR_IO/NOTFOUND
 *         (unreadable input), DRST_ERR_SCHEMA (no target / features),
 *         DRST_ERR_TRANSPORT, or the first component's error (message in err).
 * @locality the calling thread; starts and joins its own threads.
 */
drst_err_t drst_run_execute(const drst_run_opts_t *opts, drst_run_summary_t *sum, drst_diag_t *diag,
                            char *err, size_t errlen) DRST_WUR;

/**
 * @brief Write `sum` as one JSON object (no newline): records, static.acc@0.05,
 * ..., adaptive.acc@0.2, triggers, swaps, wall_s, records_per_s and the rest.
 * @param json receives a malloc'd NUL-terminated string.
 */
drst_err_t drst_run_summary_json(const drst_run_summary_t *sum, char **json, char *err,
                                 size_t errlen) DRST_WUR;

#ifdef __cplusplus
}
#endif
#endif /* DRST_RUN_H */
