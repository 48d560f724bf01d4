/* Single-producer single-consumer ring of packet descriptors.
 *
 * The only file of the flow plane using C11 atomics. The producer owns
 * `head`, the consumer owns `tail`; each reads the other's index with
 * acquire and publishes its own with release, so a descriptor is fully
 * written before the consumer can see it and fully read before the
 * producer can overwrite it. Each side caches the other's index to touch the
 * shared cache line only when the cached value says the ring is full/empty. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "flow/flow_int.h"

#define CACHELINE 64

struct spsc {
    _Alignas(CACHELINE) _Atomic uint32_t head; /* next slot to write (producer) */
    uint32_t tail_cache;                       /* producer's view of tail */
    _Alignas(CACHELINE) _Atomic uint32_t tail; /* next slot to read (consumer) */
    uint32_t head_cache;                       /* consumer's view of head */
    _Alignas(CACHELINE) uint32_t mask;
    pkt_t *slot;
};

spsc_t *spsc_new(uint32_t size_pow2)
{
    if (size_pow2 < 2 || (size_pow2 & (size_pow2 - 1)))
        return NULL;
    spsc_t *r = aligned_alloc(CACHELINE, sizeof(*r));
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->slot = malloc(sizeof(pkt_t) * size_pow2);
    if (!r->slot) {
        free(r);
        return NULL;
    }
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->mask = size_pow2 - 1;
    return r;
}

void spsc_free(spsc_t *r)
{
    if (!r)
        return;
    free(r->slot);
    free(r);
}

uint32_t spsc_push(spsc_t *r, const pkt_t *v, uint32_t n)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t cap = r->mask + 1;
    uint32_t room = cap - (head - r->tail_cache);
    if (room < n) {
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        room = cap - (head - r->tail_cache);
    }
    if (n > room)
        n = room;
    for (uint32_t i = 0; i < n; i++)
        r->slot[(head + i) & r->mask] = v[i];
    atomic_store_explicit(&r->head, head + n, memory_order_release);
    return n;
}

uint32_t spsc_pop(spsc_t *r, pkt_t *v, uint32_t n)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t avail = r->head_cache - tail;
    if (avail < n) {
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        avail = r->head_cache - tail;
    }
    if (n > avail)
        n = avail;
    for (uint32_t i = 0; i < n; i++)
        v[i] = r->slot[(tail + i) & r->mask];
    atomic_store_explicit(&r->tail, tail + n, memory_order_release);
    return n;
}
