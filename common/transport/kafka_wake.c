/*
 * Binds a librdkafka queue to a libev loop: librdkafka writes a byte to a
 * pipe when the queue turns non-empty, and the loop watches the read end, so
 * delivery reports, rebalances and messages are all served from the loop's
 * thread; and ends a handle together with its bound queue.
 */
#include "kafka_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

void kafka_wake_clear(struct kafka_wake *w)
{
    memset(w, 0, sizeof(*w));
    w->fds[0] = w->fds[1] = -1;
}

static int make_pipe(int fds[2], hsc_err *err)
{
    if (pipe(fds) != 0)
        return hsc_err_set(err, HSC_EIO, "pipe: %s", strerror(errno));
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    return HSC_OK;
}

int kafka_wake_init(struct kafka_wake *w, struct ev_loop *loop, rd_kafka_queue_t *q,
                    void (*cb)(struct ev_loop *, ev_io *, int), void *data, hsc_err *err)
{
    if (make_pipe(w->fds, err)) {
        rd_kafka_queue_destroy(q);
        return err ? err->code : HSC_EIO;
    }
    w->q = q;
    rd_kafka_queue_io_event_enable(q, w->fds[1], "1", 1);
    ev_io_init(&w->io, cb, w->fds[0], EV_READ);
    w->io.data = data;
    ev_io_start(loop, &w->io);
    w->loop = loop;
    return HSC_OK;
}

void kafka_wake_drain(struct kafka_wake *w)
{
    char buf[64];
    while (read(w->fds[0], buf, sizeof(buf)) > 0) {
    }
}

void kafka_wake_destroy(struct kafka_wake *w)
{
    if (w->loop) {
        ev_io_stop(w->loop, &w->io);
        w->loop = NULL;
    }
    if (w->q) {
        rd_kafka_queue_io_event_enable(w->q, -1, NULL, 0);
        rd_kafka_queue_destroy(w->q);
        w->q = NULL;
    }
    for (int i = 0; i < 2; i++)
        if (w->fds[i] >= 0) {
            close(w->fds[i]);
            w->fds[i] = -1;
        }
}

void kafka_handle_destroy(rd_kafka_t *rk, struct kafka_wake *w)
{
    kafka_wake_destroy(w);
    rd_kafka_destroy(rk);
}
