/* Single-producer single-consumer ring of packet descriptors.
 *
 * The only file of the flow plane using C11 atomics. The producer owns
 * `head`, the consumer owns `tail`; each reads the other's index with
 * acquire and publishes its own with release, so a descriptor is fully
 * written before the consumer can see it and fully read before the
 * producer can overwrite it. Each side caches the other's index to touch the
 * shared cache line only when the cached value says the ring is full/empty.
 *
 * Descriptors are written and read in place (spsc_wslot / spsc_peek): the
 * source copies a parsed descriptor once, into the slot, and the worker
 * reads it there; `head` is published once per batch, not per descriptor.
 *
 * An empty ring puts its consumer to sleep on a condition variable instead
 * of spinning: on a machine with fewer idle cores than threads, a spinning
 * worker takes CPU time from the source, which is the bottleneck. The
 * producer wakes it only once the ring holds a wake threshold of
 * descriptors (or on spsc_publish(r, 1), at a flush), so a worker is woken
 * a few hundred times per million packets, not once per batch. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "flow/flow_int.h"

#define CACHELINE 64

struct spsc {
    /* producer's line */
    _Alignas(CACHELINE) _Atomic uint32_t head; /* published: slots [tail, head) are readable */
    uint32_t phead;                            /* next slot the producer writes */
    uint32_t tail_cache;                       /* producer's view of tail */
    /* consumer's line */
    _Alignas(CACHELINE) _Atomic uint32_t tail; /* next slot to read (consumer) */
    uint32_t head_cache;                       /* consumer's view of head */
    /* shared, read-mostly */
    _Alignas(CACHELINE) _Atomic int sleeping; /* consumer waits on cv */
    uint32_t mask, wake_fill;
    pkt_t *slot;
    pthread_mutex_t mu;
    pthread_cond_t cv;
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
    atomic_init(&r->sleeping, 0);
    r->mask = size_pow2 - 1;
    /* An eighth of the ring: enough work to be worth a wake-up, and the
     * producer still has 7/8 of the ring to fill while the worker starts. */
    r->wake_fill = size_pow2 / 8 ? size_pow2 / 8 : 1;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    return r;
}

void spsc_free(spsc_t *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->slot);
    free(r);
}

pkt_t *spsc_wslot(spsc_t *r)
{
    uint32_t cap = r->mask + 1;
    if (r->phead - r->tail_cache == cap) {
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (r->phead - r->tail_cache == cap)
            return NULL;
    }
    return &r->slot[r->phead & r->mask];
}

void spsc_wnext(spsc_t *r)
{
    r->phead++;
}

void spsc_publish(spsc_t *r, int wake)
{
    /* seq_cst store, then seq_cst load of `sleeping`: with the consumer's
     * seq_cst store of `sleeping` then load of `head` in spsc_wait, one of
     * the two sees the other's store (no lost wake-up). */
    atomic_store(&r->head, r->phead);
    if (!atomic_load(&r->sleeping))
        return;
    r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint32_t fill = r->phead - r->tail_cache;
    if (fill == 0 || (!wake && fill < r->wake_fill))
        return;
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->sleeping, 0);
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

uint32_t spsc_peek(spsc_t *r, const pkt_t **first, uint32_t max)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t avail = r->head_cache - tail;
    if (avail == 0) {
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        avail = r->head_cache - tail;
    }
    uint32_t to_end = r->mask + 1 - (tail & r->mask); /* contiguous slots */
    if (avail > to_end)
        avail = to_end;
    if (avail > max)
        avail = max;
    *first = &r->slot[tail & r->mask];
    return avail;
}

void spsc_release(spsc_t *r, uint32_t n)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    atomic_store_explicit(&r->tail, tail + n, memory_order_release);
}

void spsc_wait(spsc_t *r)
{
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->sleeping, 1);
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (atomic_load(&r->head) == tail)
        while (atomic_load(&r->sleeping))
            pthread_cond_wait(&r->cv, &r->mu);
    atomic_store(&r->sleeping, 0);
    pthread_mutex_unlock(&r->mu);
}
