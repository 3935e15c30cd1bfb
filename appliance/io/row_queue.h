/*
 * A bounded queue of pointers between one producer thread and one consumer
 * thread: the hand-off from an import's parser thread to its writer
 * (docs/IMPORT_EXPORT.md, "Performance"). It holds at most the capacity it
 * was made with, so the producer waits when the consumer falls behind and
 * memory stays bounded whatever the input's size. The invariant: every
 * item pushed is either popped by the consumer or handed back to the
 * producer by a failing push (the caller then frees it), never lost; and
 * neither side can wait forever once the other has finished or cancelled.
 */
#ifndef OUTPOST_ROW_QUEUE_H
#define OUTPOST_ROW_QUEUE_H

#include <stddef.h>

struct row_queue;

/* A queue for up to `cap` items (at least 1). Returns 0 or -ENOMEM. */
int row_queue_new(size_t cap, struct row_queue **out);
void row_queue_free(struct row_queue *q);

/* Producer: adds `item` (not NULL), waiting while the queue is full.
 * Returns 0, or -ECANCELED when the consumer has cancelled (the item is
 * not queued; it stays the caller's). */
int row_queue_push(struct row_queue *q, void *item);

/* Producer: no more items; the consumer's pop returns NULL once the
 * queue is empty. */
void row_queue_finish(struct row_queue *q);

/* Consumer: the oldest item, waiting while the queue is empty; NULL when
 * the producer has finished and everything was taken. */
void *row_queue_pop(struct row_queue *q);

/* Consumer: wants no more items. A waiting or later push fails with
 * -ECANCELED; items still queued stay there for row_queue_pop to drain
 * (pop no longer waits: it returns NULL once the queue is empty). */
void row_queue_cancel(struct row_queue *q);

#endif
