/* A fixed-size ring buffer. */
#include <stdlib.h>
#include <string.h>
#include "ringbuf.h"

#define RB_MIN_CAPACITY 16
#define RB_MASK(rb, i) ((i) & ((rb)->capacity - 1))

typedef struct ring_buffer {
    unsigned char *data;
    size_t capacity;
    size_t head;
    size_t tail;
} ring_buffer_t;

struct rb_stats {
    size_t reads;
    size_t writes;
};

union rb_word {
    unsigned int u;
    float f;
};

enum rb_status { RB_OK = 0, RB_FULL, RB_EMPTY };

typedef int (*rb_visit_fn)(unsigned char byte, void *ctx);

static struct rb_stats global_stats;

static size_t next_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

ring_buffer_t *rb_create(size_t capacity)
{
    ring_buffer_t *rb = malloc(sizeof(*rb));
    if (!rb)
        return NULL;
    rb->capacity = next_pow2(capacity < RB_MIN_CAPACITY ? RB_MIN_CAPACITY : capacity);
    rb->data = calloc(rb->capacity, 1);
    rb->head = rb->tail = 0;
    return rb;
}

void rb_destroy(ring_buffer_t *rb)
{
    if (rb) {
        free(rb->data);
        free(rb);
    }
}

static inline size_t rb_used(const ring_buffer_t *rb)
{
    return rb->head - rb->tail;
}

enum rb_status rb_push(ring_buffer_t *rb, unsigned char byte)
{
    if (rb_used(rb) == rb->capacity)
        return RB_FULL;
    rb->data[RB_MASK(rb, rb->head++)] = byte;
    global_stats.writes++;
    return RB_OK;
}

enum rb_status
rb_pop(ring_buffer_t *rb, unsigned char *out)
{
    if (rb_used(rb) == 0)
        return RB_EMPTY;
    *out = rb->data[RB_MASK(rb, rb->tail++)];
    global_stats.reads++;
    return RB_OK;
}

int rb_foreach(ring_buffer_t *rb, rb_visit_fn fn, void *ctx)
{
    size_t i;
    for (i = rb->tail; i != rb->head; i++) {
        int rc = fn(rb->data[RB_MASK(rb, i)], ctx);
        if (rc)
            return rc;
    }
    return 0;
}

const struct rb_stats *rb_get_stats(void)
{
    return &global_stats;
}
