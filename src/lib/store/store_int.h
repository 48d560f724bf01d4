/* Store internals: the backend table. Not public API. */
#ifndef DRST_STORE_INT_H
#define DRST_STORE_INT_H

#include "drst/store.h"

extern const struct drst_store_ops drst_store_local_ops;
extern const struct drst_store_ops drst_store_s3_ops; /* store/s3_store.c */

#endif
