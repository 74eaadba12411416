// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: the life of an end - FREE until a file takes it, OPEN while it is
 * held, GONE once released (its last holder stopped, or the file of an
 * end nobody held went away).  Releasing an end tells the peer: the
 * end's closed word, then the wakeups.
 */
#include "zchan_priv.h"
#include "zchan_trace.h"

/*
 * Take the consumer end of @chan (the caller holds a reference): -EBUSY if
 * it was ever taken, -ENOENT if the producer left meanwhile.
 */
int zchan_take_consumer(struct zchan_channel *chan)
{
	struct zchan_end *end = &chan->ends[ZCHAN_END_CONS];
	int ret = 0;

	spin_lock(&chan->lock);
	if (end->state != ZCHAN_END_FREE)
		ret = -EBUSY;
	else if (chan->ends[ZCHAN_END_PROD].state != ZCHAN_END_OPEN)
		ret = -ENOENT;
	else
		WRITE_ONCE(end->state, ZCHAN_END_OPEN);
	spin_unlock(&chan->lock);
	return ret;
}

/*
 * Take a new producer end of @chan.  The producer of a 1:1 channel is
 * taken once, by CREATE: -EBUSY, as a 1:1 consumer taken before.
 */
int zchan_take_producer(struct zchan_channel *chan)
{
	return -EBUSY;
}

/* Undo zchan_take_consumer() for an end no file ever held. */
void zchan_untake_consumer(struct zchan_channel *chan)
{
	spin_lock(&chan->lock);
	WRITE_ONCE(chan->ends[ZCHAN_END_CONS].state, ZCHAN_END_FREE);
	spin_unlock(&chan->lock);
}

/*
 * ZCHAN_CREATE_PUBLISH_ON_CLOSE: the producer is gone; publish every slot
 * it handed out (committed messages, and loans it left as SKIP
 * placeholders), so nothing committed is lost.  The words are the
 * producer's: read once, and publish nothing unless they are consistent.
 */
static void zchan_publish_on_close(struct zchan_channel *chan)
{
	u32 entries = chan->layout.ring_entries;
	u32 tail = READ_ONCE(*chan->w.tail);
	u32 alloc = READ_ONCE(*chan->w.alloc);
	u32 head = READ_ONCE(*chan->w.head);

	if (alloc == tail || alloc - tail > entries || alloc - head > entries ||
	    tail - head > entries)
		return;
	/* Release: the consumer's acquire of tail sees the descriptors. */
	smp_store_release(chan->w.tail, alloc);
}

/*
 * An end's last holder stopped or its file is gone: tell the peer (closed
 * word first, then the wakeups), and when both ends are gone, unpublish
 * the channel.  The pages stay until the last reference (a file or a
 * mapping) is dropped.  Once per end.
 */
void zchan_end_release(struct zchan_channel *chan, enum zchan_end_id e)
{
	bool dead;

	spin_lock(&chan->lock);
	if (chan->ends[e].state == ZCHAN_END_GONE) {
		spin_unlock(&chan->lock);
		return;
	}
	if (e == ZCHAN_END_PROD && chan->publish_on_close)
		zchan_publish_on_close(chan);
	WRITE_ONCE(chan->ends[e].state, ZCHAN_END_GONE);
	/* Release: a reader that sees closed also sees what came before. */
	smp_store_release(chan->w.closed[e], 1);
	dead = chan->ends[!e].state != ZCHAN_END_OPEN;
	spin_unlock(&chan->lock);
	trace_zchan_release(chan, e, !dead);
	zchan_end_set_task(chan, e, NULL);
	/* Only one release sees both ends gone. */
	if (dead)
		zchan_channel_unlink(chan);
	if (e == ZCHAN_END_CONS)
		zchan_pages_abort(chan);
	zchan_wake_end(chan, !e);
}
