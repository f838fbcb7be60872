/*
 * What the Kafka files share and no other module may use: a librdkafka queue
 * bound to the loop through a pipe (kafka_wake.c), used by the producer and
 * the consumer alike.
 */
#ifndef HSC_KAFKA_INTERNAL_H
#define HSC_KAFKA_INTERNAL_H

#include <ev.h>
#include <librdkafka/rdkafka.h>

#include "hsc/error.h"

/*
 * A queue whose readiness wakes the loop. librdkafka writes a byte to the
 * pipe when the queue turns non-empty; the loop watches the read end and the
 * owner drains the queue. A partial drain must be finished by the owner (the
 * byte is only written on the empty -> non-empty edge), hence
 * hsc_consumer_poll(). Zeroed with fds -1 (kafka_wake_clear) before init.
 */
struct kafka_wake {
    int fds[2];
    rd_kafka_queue_t *q;
    ev_io io;
    struct ev_loop *loop; /* set once the watcher runs */
};

/* Marks w as holding nothing, so kafka_wake_destroy is safe before init. */
void kafka_wake_clear(struct kafka_wake *w);

/*
 * Takes q (destroyed by kafka_wake_destroy), makes the pipe and starts the
 * watcher on loop: cb gets w->io with its data set to data.
 */
int kafka_wake_init(struct kafka_wake *w, struct ev_loop *loop, rd_kafka_queue_t *q,
                    void (*cb)(struct ev_loop *, ev_io *, int), void *data, hsc_err *err);

/* Empties the pipe (from the watcher's callback, before draining the queue). */
void kafka_wake_drain(struct kafka_wake *w);

/* Stops the watcher, detaches the queue from the pipe, destroys it and closes the pipe. */
void kafka_wake_destroy(struct kafka_wake *w);

/*
 * Ends a producer's or consumer's handle rk and its wake w, in the only safe
 * order: w's queue belongs to rk, so it goes first.
 */
void kafka_handle_destroy(rd_kafka_t *rk, struct kafka_wake *w);

#endif
