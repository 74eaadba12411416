// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: the channel object - its geometry and layout, its pages (two
 * rings and the data pool), the shared words found through the layout,
 * and its references.  Creating one charges its creator's limits; the
 * last reference (a file or a mapping) frees everything it owns.
 */
#include <linux/cred.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "zchan_priv.h"

static void zchan_region_free(struct zchan_region *r)
{
	unsigned long i;

	for (i = 0; i < r->nr_pages; i++)
		__free_page(r->pages[i]);
	atomic64_sub(r->nr_pages, &zchan_stats.pages);
	kvfree(r->pages);
	r->pages = NULL;
	r->nr_pages = 0;
}

/*
 * Order-0 pages only: a large pool never needs a high-order allocation and
 * every page is an ordinary refcounted page that get_user_pages() can pin.
 */
static int zchan_region_alloc(struct zchan_region *r, size_t bytes)
{
	unsigned long nr = bytes >> PAGE_SHIFT;

	r->nr_pages = 0;
	r->pages = kvcalloc(nr, sizeof(*r->pages), GFP_KERNEL_ACCOUNT);
	if (!r->pages)
		return -ENOMEM;
	while (r->nr_pages < nr) {
		struct page *page;

		page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!page)
			goto err_free;
		r->pages[r->nr_pages++] = page;
		atomic64_inc(&zchan_stats.pages);
		if (!(r->nr_pages & 255)) {
			if (fatal_signal_pending(current))
				goto err_free;
			cond_resched();
		}
	}
	return 0;

err_free:
	zchan_region_free(r);
	return -ENOMEM;
}

static void zchan_lane_regions_free(struct zchan_lane *lane)
{
	zchan_region_free(&lane->pool);
	zchan_region_free(&lane->cons_ring);
	zchan_region_free(&lane->prod_ring);
}

static void zchan_end_init(struct zchan_end *end, enum zchan_end_id id,
			   struct zchan_lane *lane)
{
	init_waitqueue_head(&end->wq);
	INIT_LIST_HEAD(&end->uring_waits);
	INIT_LIST_HEAD(&end->holders);
	end->id = id;
	end->lane = lane;
}

/*
 * Find the shared words through the layout's offsets, the one description
 * of the ring (zchan_layout_set_words() places them all in the rings'
 * first pages, ahead of the descriptors).
 */
static void zchan_find_words(struct zchan_channel *chan,
			     struct zchan_lane *lane)
{
	const struct zchan_layout *l = &chan->layout;
	void *prod = page_address(lane->prod_ring.pages[0]);
	void *cons = page_address(lane->cons_ring.pages[0]);
	struct zchan_ring_words *w = &lane->w;

	w->tail = prod + l->prod_tail;
	w->head_seen = prod + l->prod_head_seen;
	w->alloc = prod + l->prod_alloc;
	w->need_wakeup[ZCHAN_END_PROD] = prod + l->prod_need_wakeup;
	w->closed[ZCHAN_END_PROD] = prod + l->prod_closed;
	w->state[ZCHAN_END_PROD] = prod + l->prod_state;
	w->head = cons + l->cons_head;
	w->read = cons + l->cons_read;
	w->lanes = cons + l->cons_lanes;
	w->need_wakeup[ZCHAN_END_CONS] = cons + l->cons_need_wakeup;
	w->closed[ZCHAN_END_CONS] = cons + l->cons_closed;
	w->state[ZCHAN_END_CONS] = cons + l->cons_state;
}

/* A lane's pages, zeroed, and its words; its producer end still FREE. */
static int zchan_lane_init(struct zchan_channel *chan, struct zchan_lane *lane,
			   u32 i)
{
	const struct zchan_layout *l = &chan->layout;

	lane->index = i;
	zchan_end_init(&lane->prod, ZCHAN_END_PROD, lane);
	if (zchan_region_alloc(&lane->prod_ring, l->prod_ring_size))
		return -ENOMEM;
	if (zchan_region_alloc(&lane->cons_ring, l->cons_ring_size))
		goto err_free_prod;
	if (zchan_region_alloc(&lane->pool, l->pool_size))
		goto err_free_cons;
	zchan_find_words(chan, lane);
	return 0;

err_free_cons:
	zchan_region_free(&lane->cons_ring);
err_free_prod:
	zchan_region_free(&lane->prod_ring);
	return -ENOMEM;
}

/**
 * zchan_lane_alloc - a new lane @i of @chan, its pool charged to the owner
 * @chan: the channel
 * @i: the lane's number, above 0
 *
 * Return: the lane, not yet stored in the channel, or -ENOMEM (memory, or
 * the owner's max_user_pool_bytes).
 */
struct zchan_lane *zchan_lane_alloc(struct zchan_channel *chan, u32 i)
{
	struct zchan_lane *lane;
	int ret;

	ret = zchan_user_grow(chan->user, chan->layout.pool_size);
	if (ret)
		return ERR_PTR(ret);
	lane = kzalloc(sizeof(*lane), GFP_KERNEL_ACCOUNT);
	if (!lane)
		goto err_shrink;
	if (zchan_lane_init(chan, lane, i))
		goto err_free_lane;
	return lane;

err_free_lane:
	kfree(lane);
err_shrink:
	zchan_user_shrink(chan->user, chan->layout.pool_size);
	return ERR_PTR(-ENOMEM);
}

/* Free a lane from zchan_lane_alloc() (and its charge). */
void zchan_lane_free(struct zchan_channel *chan, struct zchan_lane *lane)
{
	zchan_end_set_task(chan, &lane->prod, NULL);
	zchan_lane_regions_free(lane);
	zchan_user_shrink(chan->user, chan->layout.pool_size);
	kfree(lane);
}

void zchan_channel_put(struct zchan_channel *chan)
{
	struct zchan_lane *lane;
	unsigned long i;

	if (!refcount_dec_and_test(&chan->ref))
		return;
	zchan_end_set_task(chan, &chan->lane0.prod, NULL);
	zchan_end_set_task(chan, &chan->cons, NULL);
	zchan_pages_free(chan);
	xa_for_each(&chan->lanes, i, lane)
		zchan_lane_free(chan, lane);
	xa_destroy(&chan->lanes);
	zchan_lane_regions_free(&chan->lane0);
	mutex_destroy(&chan->lane_mutex);
	zchan_user_uncharge(chan->user, chan->layout.pool_size);
	atomic_dec(&zchan_stats.channels);
	kfree(chan);
}

void zchan_fill_layout(struct zchan_layout *l, u64 pool_size, u32 entries,
		       u32 max_msg)
{
	memset(l, 0, sizeof(*l));
	l->pool_size = pool_size;
	l->ring_entries = entries;
	l->max_msg = max_msg;
	zchan_layout_set_words(l);
	l->prod_ring_off = ZCHAN_OFF_PROD_RING;
	l->prod_ring_size = PAGE_ALIGN(l->prod_descs +
				       (size_t)entries * sizeof(struct zchan_desc));
	l->cons_ring_off = ZCHAN_OFF_CONS_RING;
	l->cons_ring_size = PAGE_ALIGN(max3(max(l->cons_head, l->cons_read),
					    max(l->cons_need_wakeup,
						l->cons_closed),
					    l->cons_state) + sizeof(u32));
	l->pool_off = ZCHAN_OFF_POOL;
	l->features = ZCHAN_FEATURES;
}

/**
 * zchan_lane_layout - the layout of lane @i of @chan, for its mappings
 * @chan: the channel
 * @i: the lane; lane 0 is at the 1:1 channel's offsets
 * @l: filled in
 */
void zchan_lane_layout(struct zchan_channel *chan, u32 i,
		       struct zchan_layout *l)
{
	*l = chan->layout;
	if (!i)
		return;
	l->prod_ring_off += ZCHAN_OFF_LANE(i);
	l->cons_ring_off += ZCHAN_OFF_LANE(i);
	l->pool_off += ZCHAN_OFF_LANE(i);
}

/* A new channel of CREATE's checked geometry, its producer end open. */
struct zchan_channel *zchan_channel_alloc(struct zchan_create *c,
					  u64 pool_size)
{
	const struct cred *cred = current_cred();
	struct zchan_channel *chan;
	struct zchan_user *user;
	int ret;

	user = zchan_user_charge(cred->fsuid, pool_size);
	if (IS_ERR(user))
		return ERR_CAST(user);

	ret = -ENOMEM;
	chan = kzalloc(sizeof(*chan), GFP_KERNEL_ACCOUNT);
	if (!chan)
		goto err_uncharge;
	refcount_set(&chan->ref, 1);
	spin_lock_init(&chan->lock);
	zchan_end_init(&chan->cons, ZCHAN_END_CONS, NULL);
	xa_init(&chan->lanes);
	mutex_init(&chan->lane_mutex);
	INIT_HLIST_NODE(&chan->name_node);
	INIT_LIST_HEAD(&chan->node);
	zchan_pages_init(chan);
	atomic64_set(&chan->kicks, 0);
	atomic64_set(&chan->waits, 0);
	zchan_fill_layout(&chan->layout, pool_size, c->ring_entries,
			  c->max_msg);
	chan->mode = c->mode;
	chan->publish_on_close = c->flags & ZCHAN_CREATE_PUBLISH_ON_CLOSE;
	chan->max_producers = c->max_producers;
	chan->max_consumers = c->max_consumers;
	chan->uid = cred->fsuid;
	chan->gid = cred->fsgid;
	chan->user = user;
	strscpy(chan->name, (const char *)c->name, sizeof(chan->name));

	if (zchan_lane_init(chan, &chan->lane0, 0))
		goto err_free_chan;
	chan->lane0.prod.state = ZCHAN_END_OPEN;
	chan->producers = 1;
	chan->nr_lanes = 1;
	if (chan->max_producers > 1)
		WRITE_ONCE(*chan->lane0.w.lanes, 1);
	atomic_inc(&zchan_stats.channels);
	atomic64_inc(&zchan_stats.created);
	return chan;

err_free_chan:
	mutex_destroy(&chan->lane_mutex);
	kfree(chan);
err_uncharge:
	zchan_user_uncharge(user, pool_size);
	return ERR_PTR(ret);
}

/**
 * zchan_end_set_task - note which task acts for end @end
 * @chan: the channel
 * @end: the end
 * @task: the task (current, mostly), or NULL to forget it
 *
 * Cheap when @task is already the one noted: the common case of a WAIT.
 */
void zchan_end_set_task(struct zchan_channel *chan, struct zchan_end *end,
			struct task_struct *task)
{
	struct task_struct *old;

	if (READ_ONCE(end->task) == task)
		return;
	if (task)
		get_task_struct(task);
	spin_lock(&chan->lock);
	old = end->task;
	/* A released end keeps no task; its peer's spin ends on EPOLLHUP. */
	if (task && end->state == ZCHAN_END_GONE)
		old = task;
	else
		WRITE_ONCE(end->task, task);
	spin_unlock(&chan->lock);
	if (old)
		put_task_struct(old);
}

/*
 * The task acting for the peer of @end, referenced, or NULL: a producer's
 * peer is the consumer, the consumer's the producer of a one-lane channel
 * (with several lanes, no one producer is the one it waits for).
 */
struct task_struct *zchan_peer_task_get(struct zchan_channel *chan,
					struct zchan_end *end)
{
	struct task_struct *task = NULL;

	spin_lock(&chan->lock);
	if (end->lane)
		task = chan->cons.task;
	else if (chan->nr_lanes == 1)
		task = chan->lane0.prod.task;
	if (task)
		get_task_struct(task);
	spin_unlock(&chan->lock);
	return task;
}

/*
 * Payload bytes of the messages in slots [head, tail), and (if @msgs) how
 * many there are: each descriptor read once, the walk bounded by the ring
 * size whatever the producer wrote there.  ZCHAN_DESC_SKIP slots carry no
 * message: a dropped loan, or a placeholder the producer wrote ahead into
 * a slot already released.
 */
u64 zchan_queued_bytes(struct zchan_channel *chan, struct zchan_lane *lane,
		       u32 head, u32 tail, u32 *msgs)
{
	const struct zchan_layout *l = &chan->layout;
	u32 n = min(tail - head, l->ring_entries);
	u32 count = 0;
	u64 bytes = 0;

	for (; n; n--, head++) {
		size_t off = l->prod_descs + sizeof(struct zchan_desc) *
			     (size_t)(head & (l->ring_entries - 1));
		struct page *page = lane->prod_ring.pages[off >> PAGE_SHIFT];
		struct zchan_desc *d = page_address(page) + offset_in_page(off);

		if (READ_ONCE(d->flags) & ZCHAN_DESC_SKIP)
			continue;
		bytes += READ_ONCE(d->len);
		count++;
	}
	if (msgs)
		*msgs = count;
	return bytes;
}
