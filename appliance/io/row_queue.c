/*
 * The bounded hand-off queue; see row_queue.h. A ring of pointers under
 * one mutex, with one condition for "not full" (the producer waits on it)
 * and one for "not empty" (the consumer waits on it). A side wakes the
 * other only when that side is waiting and a quarter of the capacity is
 * ready for it (items to take, or room to fill), or at the end: waking
 * for every item cost a context switch a row and about a third more CPU
 * in an import, since the two sides run at nearly the same speed.
 */
#include "row_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct row_queue {
    pthread_mutex_t mu;
    pthread_cond_t not_full;
    pthread_cond_t not_empty;
    size_t cap, head, count;
    size_t batch;  /* a quarter of cap, at least 1: what is worth a wake-up */
    int finished;  /* the producer pushes no more */
    int cancelled; /* the consumer takes no more */
    int producer_waiting, consumer_waiting;
    void **items;
};

int row_queue_new(size_t cap, struct row_queue **out)
{
    if (cap == 0)
        cap = 1;
    struct row_queue *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    q->items = calloc(cap, sizeof *q->items);
    if (!q->items) {
        free(q);
        return -ENOMEM;
    }
    q->cap = cap;
    q->batch = cap / 4 ? cap / 4 : 1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_full, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    *out = q;
    return 0;
}

void row_queue_free(struct row_queue *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->not_empty);
    free(q->items);
    free(q);
}

int row_queue_push(struct row_queue *q, void *item)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == q->cap && !q->cancelled) {
        q->producer_waiting = 1;
        pthread_cond_wait(&q->not_full, &q->mu);
    }
    q->producer_waiting = 0;
    if (q->cancelled) {
        pthread_mutex_unlock(&q->mu);
        return -ECANCELED;
    }
    q->items[(q->head + q->count) % q->cap] = item;
    q->count++;
    if (q->consumer_waiting && q->count >= q->batch)
        pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

void row_queue_finish(struct row_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->finished = 1;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

void *row_queue_pop(struct row_queue *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && !q->finished && !q->cancelled) {
        q->consumer_waiting = 1;
        pthread_cond_wait(&q->not_empty, &q->mu);
    }
    q->consumer_waiting = 0;
    void *item = NULL;
    if (q->count) {
        item = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        if (q->producer_waiting && q->cap - q->count >= q->batch)
            pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    return item;
}

void row_queue_cancel(struct row_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->cancelled = 1;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
}
