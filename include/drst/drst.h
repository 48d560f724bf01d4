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
#include "drst/flow.h"
#include "drst/telemetry.h"
#include "drst/stream.h"
#include "drst/drift.h"
#include "drst/sim.h"
#include "drst/obs.h"
#include "drst/model.h"
#include "drst/store.h"
#include "drst/infer.h"
#include "drst/control.h"

#endif
