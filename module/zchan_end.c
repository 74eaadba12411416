// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: the life of an end - FREE until a file takes it, OPEN while it is
 * held, GONE once released (its last holder stopped, or the file of an
 * end nobody held went away).  Releasing an end tells the peer: the
 * end's closed word, then the wakeups.  A new producer end comes with a
 * lane of its own.
 */
#include "zchan_priv.h"
#include "zchan_trace.h"

/*
 * Take the consumer end of @chan (the caller holds a reference): taken
 * once - if it ever was, -EBUSY on a 1:1 channel (as before roles), else
 * -EUSERS (the role's one end); -ENOENT if every producer left meanwhile.
 */
int zchan_take_consumer(struct zchan_channel *chan)
{
	struct zchan_end *end = &chan->cons;
	int ret = 0;

	spin_lock(&chan->lock);
	if (end->state != ZCHAN_END_FREE)
		ret = chan->max_producers > 1 ? -EUSERS : -EBUSY;
	else if (!chan->producers)
		ret = -ENOENT;
	else
		WRITE_ONCE(end->state, ZCHAN_END_OPEN);
	spin_unlock(&chan->lock);
	return ret;
}

/* Undo zchan_take_consumer() for an end no file ever held. */
void zchan_untake_consumer(struct zchan_channel *chan)
{
	spin_lock(&chan->lock);
	WRITE_ONCE(chan->cons.state, ZCHAN_END_FREE);
	spin_unlock(&chan->lock);
}

/*
 * May a producer end join @chan now?  The caller holds the lock.  Not to
 * a full role (-EUSERS: a 1:1 channel's producer is CREATE's), nor to a
 * stream whose consumer, or whose every producer, is gone (-EPIPE: the
 * consumer's end of the stream stays final).
 */
static int zchan_may_add_producer(struct zchan_channel *chan,
				  struct zchan_end *caller)
{
	if (chan->max_producers == 1)
		return -EUSERS;
	if (!chan->producers || chan->cons.state == ZCHAN_END_GONE ||
	    (caller && caller->state != ZCHAN_END_OPEN))
		return -EPIPE;
	if (chan->producers >= chan->max_producers)
		return -EUSERS;
	if (chan->nr_lanes >= ZCHAN_LANES_MAX)
		return -ENOSPC;
	return 0;
}

/**
 * zchan_take_producer - a new producer end of @chan, with a lane of its own
 * @chan: the channel (the caller holds a reference)
 * @caller: the end asking (PEER_FD), which must be open; NULL for ATTACH
 *
 * The lane is zeroed, charged to the channel's owner, and counted in the
 * consumer's lanes word before the end is returned: the consumer knows
 * of the lane before its producer can publish anything.
 *
 * Return: the new end, open, or -EPIPE, -EUSERS, -ENOSPC (the
 * channel made ZCHAN_LANES_MAX lanes), -ENOMEM.
 */
struct zchan_end *zchan_take_producer(struct zchan_channel *chan,
				      struct zchan_end *caller)
{
	struct zchan_lane *lane;
	u32 i;
	int ret;

	mutex_lock(&chan->lane_mutex);
	spin_lock(&chan->lock);
	ret = zchan_may_add_producer(chan, caller);
	i = chan->nr_lanes;
	spin_unlock(&chan->lock);
	if (ret)
		goto out_unlock;
	lane = zchan_lane_alloc(chan, i);
	if (IS_ERR(lane)) {
		ret = PTR_ERR(lane);
		goto out_unlock;
	}
	/*
	 * The consumer may be asleep, armed in the lanes it knew: its
	 * need_wakeup in a new lane starts set, so that the lane's first
	 * message kicks.  Only a kick clears it, and a kicked consumer arms
	 * every lane again before it sleeps.
	 */
	WRITE_ONCE(*lane->w.need_wakeup[ZCHAN_END_CONS], 1);
	/* Stored before nr_lanes counts it: readers look below nr_lanes. */
	ret = xa_insert(&chan->lanes, i, lane, GFP_KERNEL_ACCOUNT);
	if (ret)
		goto err_free_lane;

	spin_lock(&chan->lock);
	/* An end may have gone while the lane was made. */
	ret = zchan_may_add_producer(chan, caller);
	if (!ret) {
		chan->producers++;
		WRITE_ONCE(lane->prod.state, ZCHAN_END_OPEN);
		/* Release: a reader of either count finds the lane ready. */
		smp_store_release(&chan->nr_lanes, i + 1);
		/* Release: for the consumer, as nr_lanes for the kernel. */
		smp_store_release(chan->lane0.w.lanes, i + 1);
	}
	spin_unlock(&chan->lock);
	if (ret) {
		xa_erase(&chan->lanes, i);
		goto err_free_lane;
	}
	mutex_unlock(&chan->lane_mutex);
	/* A consumer that sleeps learns of the lane: a new lane is news. */
	zchan_wake_end(chan, &chan->cons);
	return &lane->prod;

err_free_lane:
	zchan_lane_free(chan, lane);
out_unlock:
	mutex_unlock(&chan->lane_mutex);
	return ERR_PTR(ret);
}

/*
 * ZCHAN_CREATE_PUBLISH_ON_CLOSE: @lane's producer is gone; publish every
 * slot it handed out (committed messages, and loans it left as SKIP
 * placeholders), so nothing committed is lost.  The words are the
 * producer's: read once, and publish nothing unless they are consistent.
 */
static void zchan_publish_on_close(struct zchan_channel *chan,
				   struct zchan_lane *lane)
{
	u32 entries = chan->layout.ring_entries;
	u32 tail = READ_ONCE(*lane->w.tail);
	u32 alloc = READ_ONCE(*lane->w.alloc);
	u32 head = READ_ONCE(*lane->w.head);

	if (alloc == tail || alloc - tail > entries || alloc - head > entries ||
	    tail - head > entries)
		return;
	/* Release: the consumer's acquire of tail sees the descriptors. */
	smp_store_release(lane->w.tail, alloc);
}

/*
 * The consumer is gone: its closed word in every lane, under the lock
 * (a lane made later is refused, see zchan_may_add_producer()).
 */
static void zchan_close_consumer(struct zchan_channel *chan)
{
	struct zchan_lane *lane;
	u32 i, n;

	zchan_for_each_lane(chan, i, n, lane) {
		/* Release: a reader that sees closed sees what came before. */
		smp_store_release(lane->w.closed[ZCHAN_END_CONS], 1);
	}
}

/*
 * An end's last holder stopped or its file is gone: tell the peer (closed
 * word first, then the wakeups), and when every end is gone, unpublish
 * the channel.  The pages stay until the last reference (a file or a
 * mapping) is dropped.  Once per end.  A producer's release wakes the
 * consumer, which sees the hang-up once no producer is left; the
 * consumer's release wakes every producer.
 */
void zchan_end_release(struct zchan_channel *chan, struct zchan_end *end)
{
	struct zchan_lane *lane = end->lane;
	bool dead;

	spin_lock(&chan->lock);
	if (end->state == ZCHAN_END_GONE) {
		spin_unlock(&chan->lock);
		return;
	}
	if (lane && chan->publish_on_close && !lane->dropped)
		zchan_publish_on_close(chan, lane);
	if (lane && end->state == ZCHAN_END_OPEN)
		chan->producers--;
	WRITE_ONCE(end->state, ZCHAN_END_GONE);
	if (lane)
		/* Release: a reader that sees closed sees what came before. */
		smp_store_release(lane->w.closed[ZCHAN_END_PROD], 1);
	else
		zchan_close_consumer(chan);
	dead = lane ? !chan->producers && chan->cons.state != ZCHAN_END_OPEN :
		      !chan->producers;
	spin_unlock(&chan->lock);
	trace_zchan_release(chan, end->id, !dead);
	zchan_end_set_task(chan, end, NULL);
	/* Only one release sees every end gone. */
	if (dead)
		zchan_channel_unlink(chan);
	if (lane) {
		zchan_wake_end(chan, &chan->cons);
	} else {
		zchan_pages_abort(chan);
		zchan_wake_producers(chan);
	}
}

/*
 * ZCHAN_LANE_DROP: the consumer gives up on @lane (its producer corrupted
 * it).  Its producer end is released as if it had gone, the lane stops
 * making the consumer ready, and the producer is told as after the
 * consumer's death.
 */
void zchan_lane_drop(struct zchan_channel *chan, struct zchan_lane *lane)
{
	spin_lock(&chan->lock);
	WRITE_ONCE(lane->dropped, true);
	spin_unlock(&chan->lock);
	zchan_end_release(chan, &lane->prod);
	zchan_wake_end(chan, &lane->prod);
}
