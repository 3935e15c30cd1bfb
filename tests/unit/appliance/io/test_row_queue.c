/* Tests for appliance/io/row_queue.c: items arrive once each and in order
 * through a queue far smaller than the stream; a consumer that cancels
 * frees a producer waiting on a full queue, and its later pushes fail with
 * the item handed back; a producer that finishes ends the consumer's wait;
 * a queue of capacity 0 still holds one item. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "row_queue.h"
#include "testlib.h"

#define STREAM 20000

struct producer {
    struct row_queue *q;
    int pushed;
    int refused;
    int stop_after; /* push this many, then finish (0: STREAM) */
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    int n = p->stop_after ? p->stop_after : STREAM;
    for (int i = 1; i <= n; i++) {
        if (row_queue_push(p->q, (void *)(intptr_t)i) < 0) {
            p->refused = i;
            break;
        }
        p->pushed = i;
    }
    row_queue_finish(p->q);
    return NULL;
}

static void test_order(void)
{
    for (size_t cap = 1; cap <= 256; cap *= 16) {
        struct row_queue *q;
        CHECK_EQ(row_queue_new(cap, &q), 0);
        struct producer p = {.q = q};
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, produce, &p), 0);
        intptr_t want = 1;
        int wrong = 0;
        void *it;
        while ((it = row_queue_pop(q)))
            if ((intptr_t)it != want++)
                wrong++;
        pthread_join(t, NULL);
        CHECK_EQ(wrong, 0);
        CHECK_EQ(want - 1, STREAM);
        CHECK_EQ(p.pushed, STREAM);
        CHECK(row_queue_pop(q) == NULL); /* finished stays finished */
        row_queue_free(q);
    }
}

static void test_cancel_frees_the_producer(void)
{
    struct row_queue *q;
    CHECK_EQ(row_queue_new(4, &q), 0);
    struct producer p = {.q = q};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, produce, &p), 0);
    CHECK((intptr_t)row_queue_pop(q) == 1);
    CHECK((intptr_t)row_queue_pop(q) == 2);
    row_queue_cancel(q);
    /* the join returns: the producer, waiting or about to, was refused */
    pthread_join(t, NULL);
    CHECK(p.refused > 2);
    CHECK(p.refused <= 7); /* at most 2 taken + 4 queued before the refusal */
    CHECK_EQ(p.pushed, p.refused - 1);
    /* what was queued before the cancel can still be drained, in order */
    int drained = 0;
    intptr_t want = 3;
    void *it;
    while ((it = row_queue_pop(q))) {
        CHECK(it == (void *)want++);
        drained++;
    }
    CHECK_EQ(drained, p.pushed - 2);
    CHECK_EQ(row_queue_push(q, (void *)1), -ECANCELED);
    row_queue_free(q);
}

static void test_small_streams(void)
{
    /* nothing at all: the consumer's wait ends with the finish */
    struct row_queue *q;
    CHECK_EQ(row_queue_new(0, &q), 0);
    struct producer p = {.q = q, .stop_after = -1};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, produce, &p), 0);
    CHECK(row_queue_pop(q) == NULL);
    pthread_join(t, NULL);
    row_queue_free(q);

    /* one item through a queue of capacity 0 (taken as 1), same thread */
    CHECK_EQ(row_queue_new(0, &q), 0);
    CHECK_EQ(row_queue_push(q, (void *)42), 0);
    row_queue_finish(q);
    CHECK(row_queue_pop(q) == (void *)42);
    CHECK(row_queue_pop(q) == NULL);
    row_queue_free(q);
}

int main(void)
{
    RUN(test_order);
    RUN(test_cancel_frees_the_producer);
    RUN(test_small_streams);
    return tl_report();
}
