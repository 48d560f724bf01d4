/* libFuzzer target: the simulator's scenario parser, then a short simulation. */
#include <stddef.h>
#include <stdint.h>

#include "drst/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    drst_sim_scenario_t *sc = NULL;
    drst_diag_t d = {0};
    char err[DRST_ERRLEN];
    if (drst_sim_scenario_parse((const char *)data, size, "fuzz", &sc, &d, err, sizeof(err)))
        return 0;
    drst_sim_opts_t o = {.seed = 1, .rows = 50};
    drst_sim_t *s = drst_sim_new(sc, &o, err, sizeof(err));
    if (s) {
        double row[3 + 12 * 64];
        while (drst_sim_next(s, row) == DRST_OK)
            ;
    }
    drst_sim_free(s);
    drst_sim_scenario_free(sc);
    return 0;
}
