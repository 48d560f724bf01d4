/**
 * @file drst.h
 * @brief Umbrella header of libdrst: include this one.
 *
 * One header per plane of docs/DESIGN (telemetry, stream, model, drift,
 * store, flow); common.h holds errors and diagnostics.
 */
#ifndef DRST_DRST_H
#define DRST_DRST_H

#include "drst/common.h"
#include "drst/telemetry.h"

#endif
