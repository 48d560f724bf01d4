/**
 * @file sim.h
 * @brief Scenario simulator: SYNTHETIC datasets in DRST's schema.
 *
 * drst_sim_* generates a deterministic, physically plausible time series of
 * a chain of poll-mode VNFs (rates, latency and 12 perf events per VNF) so
 * that drst can be demonstrated and tested where DRST's real data is absent.
 * The data is synthetic: real data stays the judge of accuracy.
 *
 * The output schema is that of DRST's combined.csv: an unnamed index column,
 * input_rate, output_rate, latency, then `<vnf>_<event>` columns, event-major
 * and VNF-minor, for the events of drst_sim_events(). A structural change
 * (scenario key `replace=OLD:NEW`) adds NEW's columns right after OLD's in
 * each event group; cells of a VNF that is not in the chain on a row are
 * empty (NaN). See docs/simulate.md for the model and the scenario format.
 */
#ifndef DRST_SIM_H
#define DRST_SIM_H

#include <stdio.h>
#include "drst/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A parsed list of scenario segments (immutable once built). */
typedef struct drst_sim_scenario drst_sim_scenario_t;
/** A running simulation (row generator). */
typedef struct drst_sim drst_sim_t;

/** Number of perf events per VNF (12). */
#define DRST_SIM_NEVENTS 12

/** @brief The 12 perf event names in column order; static storage. */
const char *const *drst_sim_events(void);

/** @brief The default chain: firewall, nf_router, ndpi_stats, payload_scan, bridge. */
const char *const *drst_sim_default_vnfs(size_t *n);

/**
 * @brief Names of the built-in scenarios (steady, sweep, random-rates,
 * gaussian, contention, structural), NULL-terminated, static storage.
 */
const char *const *drst_sim_builtins(void);

/** @brief One-line description of a built-in scenario, or NULL if unknown. */
const char *drst_sim_builtin_describe(const char *name);

/**
 * @brief Build a built-in scenario by name.
 * @return a new scenario (free with drst_sim_scenario_free()) or NULL with
 *         the message in err (unknown name).
 */
drst_sim_scenario_t *drst_sim_scenario_builtin(const char *name, char *err, size_t errlen);

/**
 * @brief Parse a scenario text: one segment per line, `key=value` tokens
 * separated by blanks, `#` starts a comment (format in docs/simulate.md).
 *
 * Lines that cannot be used are reported to `diag` (file:line + reason) and
 * skipped; with diag->strict the first one fails with DRST_ERR_STRICT.
 * @param buf   text, need not be NUL-terminated; `name` names it in messages
 * @param out   receives a new scenario owned by the caller, NULL on error
 * @return DRST_OK, DRST_ERR_EMPTY (no usable segment), DRST_ERR_STRICT,
 *         DRST_ERR_NOMEM.
 */
drst_err_t drst_sim_scenario_parse(const char *buf, size_t len, const char *name,
                                   drst_sim_scenario_t **out, drst_diag_t *diag, char *err,
                                   size_t errlen) DRST_WUR;

/** @brief drst_sim_scenario_parse() on a file's content (DRST_ERR_IO if unreadable). */
drst_err_t drst_sim_scenario_load(const char *path, drst_sim_scenario_t **out, drst_diag_t *diag,
                                  char *err, size_t errlen) DRST_WUR;

/** @brief Total rows the scenario's segments ask for. */
size_t drst_sim_scenario_rows(const drst_sim_scenario_t *sc);

/** @brief Free a scenario; NULL is a no-op. */
void drst_sim_scenario_free(drst_sim_scenario_t *sc);

/** @brief Options of drst_sim_new(); zero-initialise for defaults. */
typedef struct drst_sim_opts {
    uint64_t seed;           /**< PRNG seed (xoshiro256** seeded by splitmix64) */
    size_t rows;             /**< 0: the scenario's own total; else segments are scaled */
    const char *const *vnfs; /**< chain (copied); NULL: drst_sim_default_vnfs() */
    size_t nvnfs;            /**< entries in vnfs (1..64) */
} drst_sim_opts_t;

/**
 * @brief Start a simulation of `sc` (which must outlive nothing: it is
 * copied). Same scenario, options and seed give the same rows, bit for bit.
 * @return the simulation or NULL (message in err: a `replace=` naming a VNF
 *         not in the chain, bad VNF names, too many rows...).
 */
drst_sim_t *drst_sim_new(const drst_sim_scenario_t *sc, const drst_sim_opts_t *opts, char *err,
                         size_t errlen);

/** @brief Free a simulation; NULL is a no-op. */
void drst_sim_free(drst_sim_t *s);

/** @brief Number of value columns (without the index column). */
size_t drst_sim_ncols(const drst_sim_t *s);
/** @brief Name of value column i (< ncols); owned by the simulation. */
const char *drst_sim_colname(const drst_sim_t *s, size_t i);
/** @brief Rows this simulation produces in total. */
size_t drst_sim_nrows(const drst_sim_t *s);

/**
 * @brief Produce the next row into `row` (ncols doubles; NaN for VNFs not
 * in the chain at this row). No allocation.
 * @return DRST_OK, or DRST_ERR_EOF after the last row.
 */
drst_err_t drst_sim_next(drst_sim_t *s, double *row) DRST_WUR;

/**
 * @brief Write every remaining row as CSV (header first if no row was taken
 * yet) in DRST's format: index column, rates with 6 decimals, latency with
 * 3, counters as integers, NaN as an empty cell.
 * @param f caller-owned stream, not closed
 */
drst_err_t drst_sim_write_csv(drst_sim_t *s, FILE *f, char *err, size_t errlen) DRST_WUR;

#ifdef __cplusplus
}
#endif
#endif /* DRST_SIM_H */
