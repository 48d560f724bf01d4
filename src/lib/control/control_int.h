/* Internal helpers shared by the control-plane files. Not public API. */
#ifndef DRST_CONTROL_INT_H
#define DRST_CONTROL_INT_H

#include "drst/control.h"

/** UTC stamp "YYYYmmddTHHMMSSZ" of `t` seconds (or now if t < 0). */
void ctl_stamp(double t, char *buf, size_t n);

/** Table from a CSV object of the store (parsed in memory). */
drst_err_t ctl_table_get(drst_store_t *s, const char *key, drst_table_t **out, char *err,
                         size_t errlen);

/** Table written as CSV into an immutable store object. */
drst_err_t ctl_table_put(drst_store_t *s, const drst_table_t *t, const char *key, char *err,
                         size_t errlen);

#endif
