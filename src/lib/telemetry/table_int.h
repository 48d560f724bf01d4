/* Internal helpers of the telemetry plane (not public API). */
#ifndef DRST_TELEMETRY_TABLE_INT_H
#define DRST_TELEMETRY_TABLE_INT_H

#include "drst/telemetry.h"

/** @brief Make room for at least `rows` rows. @return DRST_OK or DRST_ERR_NOMEM. */
drst_err_t drst_table_reserve(drst_table_t *t, size_t rows) DRST_WUR;

/** @brief Grow the row capacity geometrically. @return DRST_OK or DRST_ERR_NOMEM. */
drst_err_t drst_table_grow(drst_table_t *t) DRST_WUR;

#endif
