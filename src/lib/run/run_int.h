/* Internals of `drst run` (src/lib/run/): shared by run.c and retrain.c. Not public API. */
#ifndef DRST_RUN_INT_H
#define DRST_RUN_INT_H

#include "drst/control.h"
#include "drst/run.h"

/* What the retrainer thread is asked to do for one trigger. */
typedef struct run_job {
    drst_table_t *window; /* labelled window at the trigger (owned by the job) */
    drst_table_t *replay; /* older labelled records (owned, may be NULL) */
    int tier;
    drst_trigger_source_t source;
    uint64_t at; /* sequence number of the triggering record */
    double score;
} run_job_t;

/* Outcome of one retrain. */
typedef struct run_retrain_out {
    drst_model_t *model; /* new model (caller-owned), NULL on failure */
    int gate_passed;     /* serve it */
    double wall_s;       /* measured wall time of the retrain */
    char desc[768];      /* winner / method description */
    double val_new_acc20, val_cur_acc20;
} run_retrain_out_t;

/* Retrain on a job's window: the control plane's retrainer (drst_retrain_window()). */
drst_err_t run_retrain(const run_job_t *job, const drst_table_t *base, const drst_model_t *current,
                       const char *target, const char *families, uint64_t seed,
                       run_retrain_out_t *out, char *err, size_t errlen);

#endif
