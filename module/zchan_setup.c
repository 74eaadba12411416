// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: making and describing channels - ZCHAN_IOC_CREATE,
 * ZCHAN_IOC_ATTACH, ZCHAN_IOC_PEER_FD, ZCHAN_IOC_INFO and ZCHAN_IOC_LANE.
 *
 * A file gets its role once, under its lock; whatever fails on the way
 * leaves nothing behind (the layout is reported before anything is taken).
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "zchan_priv.h"
#include "zchan_trace.h"

/*
 * Validate CREATE's geometry and fill in the defaults.  A pool too large is
 * -ENOMEM whatever else is asked; the default max_msg always fits.
 */
static int zchan_check_geometry(struct zchan_create *c, u64 *pool_size)
{
	u64 pool = c->pool_size ? c->pool_size : ZCHAN_DEFAULT_POOL_SIZE;
	u64 limit = READ_ONCE(zchan_max_pool_bytes);

	if (pool > min_t(u64, limit, ZCHAN_POOL_SIZE_MAX)) {
		trace_zchan_limit(pool, limit, ZCHAN_TRACE_LIMIT_POOL);
		return -ENOMEM;
	}
	pool = PAGE_ALIGN(pool);
	if (!c->ring_entries)
		c->ring_entries = ZCHAN_DEFAULT_RING_ENTRIES;
	if (!is_power_of_2(c->ring_entries) ||
	    c->ring_entries > ZCHAN_RING_ENTRIES_MAX)
		return -EINVAL;
	if (!c->max_msg)
		c->max_msg = min_t(u64, pool / 4, ZCHAN_MSG_MAX);
	if (c->max_msg > pool / 2 || c->max_msg > ZCHAN_MSG_MAX)
		return -EINVAL;
	*pool_size = pool;
	return 0;
}

/*
 * Validate CREATE's maxima of ends (0 means 1).  The shapes with several
 * consumers (broadcast, work queue) are not built: -EOPNOTSUPP, after
 * every -EINVAL.
 */
static int zchan_check_ends(struct zchan_create *c)
{
	if (c->max_producers > ZCHAN_ENDS_MAX ||
	    c->max_consumers > ZCHAN_ENDS_MAX)
		return -EINVAL;
	c->max_producers = max(c->max_producers, 1U);
	c->max_consumers = max(c->max_consumers, 1U);
	if (c->flags & ZCHAN_CREATE_BROADCAST || c->max_consumers > 1)
		return -EOPNOTSUPP;
	return 0;
}

/* ATTACH's and PEER_FD's role: 0 is the consumer, as before the field. */
static int zchan_check_role(u32 role)
{
	if (!role)
		return ZCHAN_ROLE_CONSUMER;
	if (role != ZCHAN_ROLE_CONSUMER && role != ZCHAN_ROLE_PRODUCER)
		return -EINVAL;
	return role;
}

long zchan_ioctl_create(struct zchan_file *zf, struct zchan_create __user *arg)
{
	struct zchan_channel *chan;
	struct zchan_layout layout;
	struct zchan_create c;
	u64 pool_size;
	long ret;

	if (copy_from_user(&c, arg, sizeof(c)))
		return -EFAULT;
	if (c.flags & ~(ZCHAN_CREATE_PUBLISH_ON_CLOSE | ZCHAN_CREATE_BROADCAST) ||
	    c.mode & ~0777 || !zchan_all_zero(c.reserved, sizeof(c.reserved)))
		return -EINVAL;
	if (strnlen((const char *)c.name, sizeof(c.name)) == sizeof(c.name))
		return -EINVAL;
	ret = zchan_check_geometry(&c, &pool_size);
	if (ret)
		return ret;
	ret = zchan_check_ends(&c);
	if (ret)
		return ret;

	mutex_lock(&zf->lock);
	ret = -EINVAL;
	if (zf->role != ZCHAN_ROLE_NONE)
		goto out_unlock;
	/* Report the layout first: no channel to undo if that faults. */
	zchan_fill_layout(&layout, pool_size, c.ring_entries, c.max_msg);
	ret = -EFAULT;
	if (copy_to_user(&arg->layout, &layout, sizeof(layout)))
		goto out_unlock;
	chan = zchan_channel_alloc(&c, pool_size);
	if (IS_ERR(chan)) {
		ret = PTR_ERR(chan);
		goto out_unlock;
	}
	ret = zchan_channel_link(chan);
	if (ret) {
		zchan_channel_put(chan);
		goto out_unlock;
	}
	zchan_file_set_role(zf, chan, &chan->lane0.prod);
	zchan_end_set_task(chan, &chan->lane0.prod, current);
	trace_zchan_create(chan);
out_unlock:
	mutex_unlock(&zf->lock);
	return ret;
}

long zchan_ioctl_attach(struct zchan_file *zf, struct zchan_attach __user *arg)
{
	struct zchan_layout layout;
	struct zchan_channel *chan;
	struct zchan_end *end;
	struct zchan_attach a;
	int role;
	long ret;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (a.flags || !zchan_all_zero(a.reserved, sizeof(a.reserved)))
		return -EINVAL;
	role = zchan_check_role(a.role);
	if (role < 0)
		return role;
	if (!a.name[0] || strnlen((const char *)a.name, sizeof(a.name)) == sizeof(a.name))
		return -EINVAL;

	mutex_lock(&zf->lock);
	ret = -EINVAL;
	if (zf->role != ZCHAN_ROLE_NONE)
		goto out_unlock;

	chan = zchan_channel_find((const char *)a.name);
	if (IS_ERR(chan)) {
		ret = PTR_ERR(chan);
		goto out_unlock;
	}

	/*
	 * Report the layout before taking the end: a fault leaves no trace.
	 * A producer's lane is known once taken: the layout is written
	 * again then (a fault now, from another thread, releases the end).
	 */
	end = &chan->cons;
	if (copy_to_user(&arg->layout, &chan->layout, sizeof(chan->layout)))
		ret = -EFAULT;
	else if (role == ZCHAN_ROLE_PRODUCER)
		ret = PTR_ERR_OR_ZERO(end = zchan_take_producer(chan, NULL));
	else
		ret = zchan_take_consumer(chan);
	if (!ret && end->lane) {
		zchan_lane_layout(chan, end->lane->index, &layout);
		if (copy_to_user(&arg->layout, &layout, sizeof(layout))) {
			zchan_end_release(chan, end);
			ret = -EFAULT;
		}
	}
	if (ret) {
		zchan_channel_put(chan);
		goto out_unlock;
	}
	zchan_file_set_role(zf, chan, end);
	zchan_end_set_task(chan, end, current);
	trace_zchan_attach(chan);
out_unlock:
	mutex_unlock(&zf->lock);
	return ret;
}

long zchan_ioctl_peer_fd(struct file *file, struct zchan_peer_fd __user *arg)
{
	struct zchan_file *zf = file->private_data;
	struct zchan_end *caller, *end;
	struct file *peer_file;
	struct zchan_channel *chan;
	struct zchan_peer_fd p;
	struct zchan_file *peer;
	int new_role, fd, ret;

	if (copy_from_user(&p, arg, sizeof(p)))
		return -EFAULT;
	if (p.flags & ~ZCHAN_PEER_FD_CLOEXEC || p.resv ||
	    !zchan_all_zero(p.reserved, sizeof(p.reserved)))
		return -EINVAL;
	new_role = zchan_check_role(p.role);
	if (new_role < 0)
		return new_role;
	caller = zchan_file_end(zf, &chan);
	/* Any end may make a producer; only a producer the consumer. */
	if (!caller || (new_role == ZCHAN_ROLE_CONSUMER && !caller->lane))
		return -EINVAL;

	peer = zchan_file_alloc();
	if (!peer)
		return -ENOMEM;
	fd = get_unused_fd_flags(O_RDWR |
			(p.flags & ZCHAN_PEER_FD_CLOEXEC ? O_CLOEXEC : 0));
	if (fd < 0) {
		ret = fd;
		goto err_free_peer;
	}
	/* The number is reserved but not installed: report it first. */
	ret = -EFAULT;
	if (put_user(fd, &arg->fd))
		goto err_put_fd;
	end = &chan->cons;
	if (new_role == ZCHAN_ROLE_PRODUCER)
		ret = PTR_ERR_OR_ZERO(end = zchan_take_producer(chan, caller));
	else
		ret = zchan_take_consumer(chan);
	if (ret == -ENOENT)
		ret = -EPIPE;	/* this end is released (ZCHAN_IOC_USE) */
	if (ret)
		goto err_put_fd;
	/* The caller's file operations: a channel file's, zchan_fops. */
	peer_file = anon_inode_getfile("[zchan]", file->f_op, peer, O_RDWR);
	if (IS_ERR(peer_file)) {
		ret = PTR_ERR(peer_file);
		goto err_untake;
	}
	zchan_channel_get(chan);
	zchan_file_set_role(peer, chan, end);
	trace_zchan_peer_fd(chan);
	fd_install(fd, peer_file);
	return 0;

err_untake:
	/*
	 * No file ever held the end: give a consumer back untouched; a new
	 * lane is known to the consumer already, its producer is released.
	 */
	if (end->lane)
		zchan_end_release(chan, end);
	else
		zchan_untake_consumer(chan);
err_put_fd:
	put_unused_fd(fd);
err_free_peer:
	zchan_file_free(peer);
	return ret;
}

/*
 * INFO's published, released and queued_bytes: of a producer's lane, or
 * summed over the lanes for the consumer (free-running, as each lane's).
 */
static void zchan_info_counts(struct zchan_channel *chan,
			      struct zchan_end *end, struct zchan_info *info)
{
	struct zchan_lane *lane;
	u32 i, n, tail, head;

	for (i = 0, n = end->lane ? 1 : zchan_nr_lanes(chan); i < n; i++) {
		lane = end->lane ? end->lane : zchan_lane(chan, i);
		tail = READ_ONCE(*lane->w.tail);
		head = READ_ONCE(*lane->w.head);
		info->published += tail;
		info->released += head;
		info->queued_bytes += zchan_queued_bytes(chan, lane, head,
							 tail, NULL);
	}
}

long zchan_ioctl_info(struct zchan_file *zf, struct zchan_info __user *arg)
{
	struct zchan_channel *chan;
	struct zchan_info info;
	struct zchan_end *end;
	unsigned int role;

	if (copy_from_user(&info, arg, sizeof(info)))
		return -EFAULT;
	if (info.flags || !zchan_all_zero(info.reserved, sizeof(info.reserved)))
		return -EINVAL;

	memset(&info, 0, sizeof(info));
	info.layout.features = ZCHAN_FEATURES;
	chan = zchan_file_chan(zf, &role);
	info.role = role;
	if (chan) {
		end = zf->end;
		info.producers = READ_ONCE(chan->producers);
		if (READ_ONCE(chan->cons.state) == ZCHAN_END_OPEN)
			info.consumers = 1;
		/* For a producer: its own lane's end. */
		if (end->lane ? READ_ONCE(end->state) == ZCHAN_END_OPEN :
				info.producers)
			info.state |= ZCHAN_STATE_PRODUCER_OPEN;
		if (info.consumers)
			info.state |= ZCHAN_STATE_CONSUMER_OPEN;
		info.max_producers = chan->max_producers;
		info.max_consumers = chan->max_consumers;
		if (chan->name[0])
			info.state |= ZCHAN_STATE_NAMED;
		/* Whoever joins a lane learns whether to keep its alloc. */
		if (chan->publish_on_close)
			info.state |= ZCHAN_STATE_PUBLISH_ON_CLOSE;
		zchan_lane_layout(chan, end->lane ? end->lane->index : 0,
				  &info.layout);
		zchan_info_counts(chan, end, &info);
		info.kicks = atomic64_read(&chan->kicks);
		info.waits = atomic64_read(&chan->waits);
		memcpy(info.name, chan->name, sizeof(info.name));
	}
	if (copy_to_user(arg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

long zchan_ioctl_lane(struct zchan_file *zf, struct zchan_lane_info __user *arg)
{
	struct zchan_channel *chan;
	struct zchan_lane_info li;
	struct zchan_lane *lane;
	struct zchan_end *end;
	bool drop;
	u32 index;

	if (copy_from_user(&li, arg, sizeof(li)))
		return -EFAULT;
	if (li.flags & ~ZCHAN_LANE_DROP ||
	    !zchan_all_zero(li.reserved, sizeof(li.reserved)))
		return -EINVAL;
	end = zchan_file_end(zf, &chan);
	if (!end || end->lane)
		return -EINVAL;
	index = li.index;
	drop = li.flags & ZCHAN_LANE_DROP;
	memset(&li, 0, sizeof(li));
	li.index = index;
	li.lanes = zchan_nr_lanes(chan);
	if (index >= li.lanes)
		return -ENOENT;
	lane = zchan_lane(chan, index);
	if (drop)
		zchan_lane_drop(chan, lane);
	if (READ_ONCE(lane->dropped))
		li.state |= ZCHAN_LANE_DROPPED;
	switch (READ_ONCE(lane->prod.state)) {
	case ZCHAN_END_OPEN:
		li.state |= ZCHAN_LANE_OPEN;
		break;
	case ZCHAN_END_GONE:
		li.state |= ZCHAN_LANE_CLOSED;
		break;
	}
	zchan_lane_layout(chan, index, &li.layout);
	if (copy_to_user(arg, &li, sizeof(li)))
		return -EFAULT;
	return 0;
}
