/* The retrain step of `drst run`: the control plane's retrainer
 * (drst_retrain_window(): the tier's search space, successive halving,
 * full training, gain gate) on the trigger's window + replay reservoir +
 * the offline training data, deterministic for the seed. */
#include <math.h>
#include <string.h>

#include "run/run_int.h"

drst_err_t run_retrain(const run_job_t *job, const drst_table_t *base, const drst_model_t *current,
                       const char *target, const char *families, uint64_t seed,
                       run_retrain_out_t *out, char *err, size_t errlen)
{
    drst_retrain_config_t cfg;
    drst_retrain_result_t res;
    drst_err_t rc;
    memset(out, 0, sizeof(*out));
    memset(&cfg, 0, sizeof(cfg));
    cfg.seed = seed;
    cfg.target = target;
    cfg.base = base;
    cfg.families = families;
    cfg.threads = 2;
    cfg.importance = -1;
    rc = drst_retrain_window(job->window, job->replay, current, job->tier, &cfg, &out->model, &res,
                             err, errlen);
    out->wall_s = res.wall_s;
    out->val_new_acc20 = res.new_val.rows ? res.new_val.acc20 : NAN;
    out->val_cur_acc20 = res.cur_val.rows ? res.cur_val.acc20 : NAN;
    if (rc != DRST_OK)
        return rc;
    out->gate_passed = res.gate_passed;
    snprintf(out->desc, sizeof(out->desc),
             "%s; tier %d, %zu candidates, %zu rungs; held-back acc@0.2 %.3f vs serving %.3f%s",
             res.best, res.tier, res.candidates, res.rungs, out->val_new_acc20, out->val_cur_acc20,
             res.schema_changed ? "; schema changed" : "");
    return DRST_OK;
}
