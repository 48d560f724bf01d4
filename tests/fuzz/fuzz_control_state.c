/* libFuzzer target: the control plane's stored JSON (state/monitor.json,
 * state/retrain/request.json, state/locks/retrain) is outside input when a
 * monitor or retrainer restarts. The input is written under each key of a
 * scratch store and read back by the functions that parse it; they must
 * fail cleanly (no crash, no leak) on anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drst/drst.h"
#include "drst/control.h"

static drst_store_t *store;
static drst_monitor_t *mon;

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (!store) {
        char dir[] = "/tmp/drst_fuzz_control_XXXXXX";
        if (!mkdtemp(dir))
            return 0;
        store = drst_store_open(dir, NULL, 0);
        static const char *names[] = {"a", "b", "c"};
        drst_monitor_config_t c = {0};
        c.window = 20;
        c.stride = 5;
        mon = drst_monitor_new(&c, names, 3, store, NULL, 0);
        if (!store || !mon)
            abort();
    }
    drst_lease_info_t li;
    drst_retrain_request_t rq;
    if (drst_store_put_atomic(store, DRST_CONTROL_LEASE_KEY, data, size, NULL, 0) == DRST_OK)
        (void)!drst_lease_read(store, DRST_CONTROL_LEASE_KEY, &li, NULL, 0);
    if (drst_store_put_atomic(store, DRST_CONTROL_REQUEST_KEY, data, size, NULL, 0) == DRST_OK)
        (void)!drst_retrain_request_read(store, &rq, NULL, 0);
    if (drst_store_put_atomic(store, DRST_CONTROL_MONITOR_KEY, data, size, NULL, 0) == DRST_OK)
        (void)!drst_monitor_resume(mon, NULL, 0);
    return 0;
}
