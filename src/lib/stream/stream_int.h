/* Stream plane internals shared by the codec and the transports. Not public API. */
#ifndef DRST_STREAM_INT_H
#define DRST_STREAM_INT_H

#include "drst/stream.h"

/* First four bytes of a binary record; never the start of a JSON text. */
#define DRST_RECORD_BIN_MAGIC "DRB1"

/* Every transport handle starts with this header (drst_stream_t is opaque
 * outside; the wrappers in transport.c dispatch through ops). */
struct drst_stream {
    const struct drst_transport_ops *ops;
};

/* JSON string literal (with quotes) of s[0..n) into buf; returns the length
 * or 0 if cap is too small. */
size_t drst_json_escape(const char *s, size_t n, char *buf, size_t cap);

/* Kafka's default partitioner hash (murmur2, positive), so that keyed
 * records land on the same partition on every transport. */
int32_t drst_partition_for_key(const void *key, size_t keylen, int32_t partitions);

#endif
