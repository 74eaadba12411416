// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * The consumer end of a fan-in channel (max_producers above one): a group
 * of lanes, one per producer end, each an ordinary 1:1 consumer handle of
 * the backend (Documentation/many.rst).
 *
 * Every producer end writes only its own lane, with the 1:1 data path
 * unchanged; this end takes the lanes' messages through ring.c, never
 * waiting in a lane (ZCHAN_NONBLOCK): round-robin over the lanes that have
 * any, up to FANIN_BUDGET messages from one lane per turn, so a producer
 * that never stops cannot starve the others, while each lane keeps its
 * producer's order.  A release goes to the lane whose pool holds the
 * message.  The group waits on one fd (zchan_ops.group_init) with
 * wait.c's spin-arm-re-check-sleep, arming every lane.
 *
 * A lane leaves the rotation when its producer is gone and everything it
 * committed was taken (ring.c delivers what a killed producer committed),
 * after its announcements of further lanes were read; its handle stays
 * while messages borrowed from it are out.  A lane whose producer
 * corrupts it (-EPROTO, its sticky err) is dropped: the call that found
 * it returns -EPROTO once, the other lanes go on.  The end of the stream
 * (-EPIPE, POLLHUP) is every lane gone and drained, and no new one
 * announced.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "zchan_int.h"

/* Messages taken from one lane before the next lane's turn. */
#define FANIN_BUDGET	32U

struct zchan_lane {
	struct zchan *z;
	bool done;		/* out of the rotation: gone and drained */
	bool witness;		/* done, kept on g->fd to show the end */
	bool dropped;		/* done for corrupting its ring */
	bool marked;		/* in a zchan_release_batch(): marks set */
	uint32_t mark_last;	/* __zchan_release_mark()'s cursor */
};

struct zchan_fanin {
	struct zchan_lane *lanes;
	unsigned int nlanes;
	unsigned int cap;
	unsigned int cur;	/* the lane whose turn it is */
	unsigned int budget;	/* what it may still give this turn */
	int err;		/* a lane dropped: reported once */
	struct zchan_stats gone;	/* the counters of lanes let go */
};

static int fanin_hold(struct zchan *g);

/* ------------------------------------------------------------------ */
/* Lanes                                                               */

static void stats_add(struct zchan_stats *to, const struct zchan_stats *st)
{
	to->messages += st->messages;
	to->bytes += st->bytes;
	to->kicks += st->kicks;
	to->waits += st->waits;
	to->spins += st->spins;
	to->syscalls += st->syscalls;
}

static unsigned int live_lanes(const struct zchan_fanin *f)
{
	unsigned int i, n = 0;

	for (i = 0; i < f->nlanes; i++)
		n += !f->lanes[i].done;
	return n;
}

/* Nothing borrowed from it is still out. */
static bool lane_idle(const struct zchan *lane)
{
	return !lane->slots || lane->c_read == lane->c_head;
}

/* Let go of lane @i (done, nothing borrowed): its handle goes. */
static void lane_free(struct zchan *g, unsigned int i)
{
	struct zchan_fanin *f = g->fanin;
	struct zchan *lane = f->lanes[i].z;

	stats_add(&f->gone, &lane->st);
	zchan_close(lane);
	f->lanes[i] = f->lanes[--f->nlanes];
	if (f->cur >= f->nlanes) {
		f->cur = 0;
		f->budget = FANIN_BUDGET;
	}
}

/* Lane @i leaves the rotation (@dropped: for corrupting its ring). */
static void lane_retire(struct zchan *g, unsigned int i, bool dropped)
{
	struct zchan_fanin *f = g->fanin;
	struct zchan_lane *l = &f->lanes[i];

	l->done = true;
	l->dropped = dropped;
	if (dropped)
		store_release(l->z->own_closed, 1);	/* its producer: -EPIPE */
	/*
	 * The last lane stays on g->fd (hung up, or kicked by
	 * fanin_self_kick()), so that the fd can show the end of the
	 * stream; the next lane added takes it off.
	 */
	if (!live_lanes(f)) {
		l->witness = true;
		return;
	}
	g->ops->lanes->lane_del(g, l->z, dropped);
	if (lane_idle(l->z))
		lane_free(g, i);
}

struct zchan *__zchan_fanin_lane(const struct zchan *g, unsigned int i,
				 bool *live)
{
	const struct zchan_fanin *f = g->fanin;

	if (i >= f->nlanes)
		return NULL;
	*live = !f->lanes[i].done;
	return f->lanes[i].z;
}

/*
 * A new lane (the backends' @adopt_lanes and @peer_fds): the group takes
 * @lane, or closes it (-EUSERS: twice as many lanes as a channel can have
 * producers, gone ones not yet drained included, which only a hostile
 * producer's announcements make; the count of producers is the backend's
 * to keep).
 */
int __zchan_fanin_add(struct zchan *g, struct zchan *lane)
{
	struct zchan_fanin *f = g->fanin;
	unsigned int i;
	int ret;

	if (f->nlanes >= 2 * ZCHAN_ENDS_MAX) {
		zchan_close(lane);
		return -EUSERS;
	}
	if (f->nlanes == f->cap) {
		unsigned int cap = f->cap ? 2 * f->cap : 4;
		struct zchan_lane *l = realloc(f->lanes, cap * sizeof(*l));

		if (!l) {
			zchan_close(lane);
			return -ENOMEM;
		}
		f->lanes = l;
		f->cap = cap;
	}
	ret = g->ops->lanes->lane_add(g, lane);
	if (ret) {
		zchan_close(lane);
		return ret;
	}
	memset(&f->lanes[f->nlanes], 0, sizeof(f->lanes[0]));
	f->lanes[f->nlanes++].z = lane;
	/* a live lane again: the end of the stream is off */
	for (i = 0; i < f->nlanes; i++) {
		if (!f->lanes[i].witness)
			continue;
		f->lanes[i].witness = false;
		g->ops->lanes->lane_del(g, f->lanes[i].z, f->lanes[i].dropped);
		if (lane_idle(f->lanes[i].z))
			lane_free(g, i);
		break;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Taking turns                                                        */

/*
 * The next lane's turn.  Before the first lane's turn comes again, the
 * group looks for new lanes (cheaply: zchan_ops.adopt_lanes without
 * @slow), so that a lane made while every other is busy is next in line.
 */
static int next_turn(struct zchan *g)
{
	struct zchan_fanin *f = g->fanin;
	int ret = 0;

	if (f->cur + 1 >= f->nlanes)
		ret = g->ops->lanes->adopt_lanes(g, false);
	if (++f->cur >= f->nlanes)
		f->cur = 0;
	f->budget = FANIN_BUDGET;
	return ret < 0 ? ret : 0;
}

/*
 * The lane whose turn it is and that has a message (its index), -EAGAIN
 * if none has, -EPIPE at the end of the stream (@slow only: it reads the
 * announcements first), or the -EPROTO of a lane just dropped.  @slow
 * allows system calls: the lanes' liveness, announcements.
 */
static int fanin_next(struct zchan *g, bool slow)
{
	struct zchan_fanin *f = g->fanin;
	unsigned int i, n;
	int mask, ret;

	if (unlikely(f->err)) {
		ret = f->err;
		f->err = 0;
		return ret;
	}
again:
	/* n + 1 turns: the lane whose budget ran out has its next one last */
	n = f->nlanes;
	for (i = 0; i <= n && f->nlanes; i++) {
		struct zchan_lane *l = &f->lanes[f->cur];

		if (!l->done && f->budget) {
			mask = __zchan_ready_mask(l->z, 0, slow);
			if (unlikely(mask < 0)) {
				lane_retire(g, f->cur, true);
				return mask;
			}
			if (mask & POLLIN)
				return (int)f->cur;
			if (mask & POLLHUP) {
				/* its announcements first: they came before */
				ret = g->ops->lanes->adopt_lanes(g, true);
				if (ret < 0)
					return ret;
				lane_retire(g, f->cur, false);
				goto again;
			}
		}
		ret = next_turn(g);
		if (ret)
			return ret;
	}
	if (!slow)
		return -EAGAIN;
	n = f->nlanes;
	ret = g->ops->lanes->adopt_lanes(g, true);
	if (ret < 0)
		return ret;
	if (f->nlanes != n) {
		slow = false;	/* asked once: look at the new lanes */
		goto again;
	}
	return live_lanes(f) ? -EAGAIN : -EPIPE;
}

/* wait.c's readiness test of the group: POLLIN, POLLHUP, 0 or -errno. */
static int fanin_ready(struct zchan *g, uint32_t need, bool slow)
{
	int ret = fanin_next(g, slow);

	if (ret >= 0)
		return POLLIN;
	if (ret == -EAGAIN)
		return 0;
	return ret == -EPIPE ? POLLHUP : ret;
}

/* Arm every lane: a message on any of them wakes g->fd. */
static void fanin_arm(struct zchan *g)
{
	struct zchan_fanin *f = g->fanin;
	unsigned int i;

	for (i = 0; i < f->nlanes; i++)
		if (!f->lanes[i].done)
			__zchan_arm(f->lanes[i].z);
}

/*
 * The lane with the next message: waits unless ZCHAN_NONBLOCK (arming
 * every lane before it says -EAGAIN, as a 1:1 end arms).
 */
static int fanin_get(struct zchan *g, unsigned int flags, struct zchan **lane)
{
	bool slow = false;
	int ret;

	for (;;) {
		ret = fanin_next(g, slow);
		if (ret == -EAGAIN && !slow && (flags & ZCHAN_NONBLOCK)) {
			fanin_arm(g);
			ret = fanin_next(g, true);
		}
		if (ret >= 0) {
			*lane = g->fanin->lanes[ret].z;
			return 0;
		}
		if (ret != -EAGAIN || (flags & ZCHAN_NONBLOCK))
			return ret;
		ret = __zchan_wait_until(g, fanin_ready, 0, -1);
		if (ret < 0)
			return ret;
		slow = ret & POLLHUP;	/* the end: only a slow look says it */
	}
}

/*
 * A lane's call that took @n messages (or failed with @ret): its budget,
 * or, for -EPROTO, the lane is dropped; other errors (-EMSGSIZE) leave the
 * message where it is.
 */
static int took(struct zchan *g, struct zchan *lane, int ret, unsigned int n)
{
	struct zchan_fanin *f = g->fanin;

	if (ret == -EPROTO && f->lanes[f->cur].z == lane)
		lane_retire(g, f->cur, true);
	else
		f->budget = f->budget > n ? f->budget - n : 0;
	return ret;
}

ssize_t __zchan_fanin_recv(struct zchan *g, void *buf, size_t cap,
			   unsigned int flags)
{
	struct zchan *lane;
	ssize_t n;
	int ret;

	if (!buf && cap)
		return -EINVAL;
	ret = __zchan_hold(g);
	if (!ret)
		ret = fanin_get(g, flags, &lane);
	if (ret)
		return ret;
	n = zchan_recv(lane, buf, cap, ZCHAN_NONBLOCK);
	return n < 0 ? took(g, lane, (int)n, 0) : (took(g, lane, 0, 1), n);
}

ssize_t __zchan_fanin_recv_zc(struct zchan *g, const void **buf,
			      unsigned int flags)
{
	struct zchan *lane;
	ssize_t n;
	int ret;

	if (!buf)
		return -EINVAL;
	ret = __zchan_hold(g);
	if (!ret)
		ret = fanin_get(g, flags, &lane);
	if (ret)
		return ret;
	n = zchan_recv_zc(lane, buf, ZCHAN_NONBLOCK);
	return n < 0 ? took(g, lane, (int)n, 0) : (took(g, lane, 0, 1), n);
}

/*
 * Up to @nr messages, each lane's turn as long as its budget lasts: a
 * batch may hold several lanes' messages, each lane's in its order.
 */
int __zchan_fanin_recv_batch(struct zchan *g, struct zchan_msg *msgs,
			     unsigned int nr, unsigned int flags)
{
	struct zchan_fanin *f = g->fanin;
	struct zchan *lane;
	unsigned int n = 0, want;
	int ret;

	if (!msgs || !nr || nr > INT32_MAX)
		return -EINVAL;
	ret = __zchan_hold(g);
	if (!ret)
		ret = fanin_get(g, flags, &lane);
	while (!ret) {
		want = nr - n < f->budget ? nr - n : f->budget;
		ret = zchan_recv_batch(lane, msgs + n, want, ZCHAN_NONBLOCK);
		if (ret <= 0) {
			took(g, lane, ret, 0);
			break;
		}
		took(g, lane, 0, (unsigned int)ret);
		n += (unsigned int)ret;
		if (n == nr)
			break;
		ret = fanin_next(g, false);
		if (ret < 0)
			break;
		lane = f->lanes[ret].z;
		ret = 0;
	}
	if (n) {
		if (ret < 0 && ret != -EAGAIN && !f->err)
			f->err = ret;	/* the next call says it */
		return (int)n;
	}
	return ret;
}

/* ------------------------------------------------------------------ */
/* Releases                                                            */

/* The lane whose pool holds @buf, or -1 (a SEND_PAGES mapping: ask all). */
static int lane_of(const struct zchan_fanin *f, const void *buf)
{
	uintptr_t a = (uintptr_t)buf;
	unsigned int i;

	for (i = 0; i < f->nlanes; i++) {
		const struct zchan *z = f->lanes[i].z;

		if (a >= (uintptr_t)z->pool && a - (uintptr_t)z->pool < z->pool_size)
			return (int)i;
	}
	return -1;
}

/* A lane out of the rotation goes once nothing borrowed from it is out. */
static void free_idle_done(struct zchan *g)
{
	struct zchan_fanin *f = g->fanin;
	unsigned int i;

	for (i = f->nlanes; i-- > 0;)
		if (f->lanes[i].done && !f->lanes[i].witness &&
		    lane_idle(f->lanes[i].z))
			lane_free(g, i);
}

int __zchan_fanin_release(struct zchan *g, const void *buf)
{
	struct zchan_fanin *f = g->fanin;
	int i = lane_of(f, buf), ret = -EINVAL;
	unsigned int j;

	if (__zchan_hold(g))
		return -EINVAL;
	if (i >= 0) {
		ret = zchan_release(f->lanes[i].z, buf);
	} else {
		for (j = 0; j < f->nlanes && ret; j++)
			ret = zchan_release(f->lanes[j].z, buf);
	}
	if (!ret)
		free_idle_done(g);
	return ret;
}

/* Mark @buf borrowed in its lane: 0 or -EINVAL. */
static int mark(struct zchan_fanin *f, const void *buf)
{
	int i = lane_of(f, buf);
	unsigned int j;

	for (j = i >= 0 ? (unsigned int)i : 0; j < f->nlanes; j++) {
		struct zchan_lane *l = &f->lanes[j];

		if (!l->marked) {
			if (__zchan_hold(l->z))
				return -EINVAL;
			l->mark_last = l->z->c_head - 1;
		}
		if (!__zchan_release_mark(l->z, buf, &l->mark_last)) {
			l->marked = true;
			return 0;
		}
		if (i >= 0)
			break;
	}
	return -EINVAL;
}

/* All or nothing, across lanes as within one. */
int __zchan_fanin_release_batch(struct zchan *g, const struct zchan_msg *msgs,
				unsigned int nr)
{
	struct zchan_fanin *f = g->fanin;
	unsigned int n, i;
	int ret = 0;

	if (__zchan_hold(g))
		return -EINVAL;
	for (n = 0; n < nr && !ret; n++)
		ret = mark(f, msgs[n].buf);
	for (i = 0; i < f->nlanes; i++) {
		if (!f->lanes[i].marked)
			continue;
		f->lanes[i].marked = false;
		__zchan_release_settle(f->lanes[i].z, !ret);
	}
	if (ret)
		return ret;
	free_idle_done(g);
	return (int)nr;
}

/* ------------------------------------------------------------------ */
/* Waiting                                                             */

int __zchan_fanin_poll(struct zchan *g)
{
	int ret = __zchan_hold(g);

	return ret ? ret : fanin_ready(g, 0, true);
}

int __zchan_fanin_wait(struct zchan *g, int64_t timeout_ns)
{
	int ret = __zchan_hold(g);

	return ret ? ret : __zchan_wait_until(g, fanin_ready, 0, timeout_ns);
}

/* The events to poll g->fd for, armed; -1 (the cqe's -EBADF): not ours. */
int __zchan_fanin_prep_wait(struct zchan *g, unsigned int *events)
{
	if (__zchan_hold(g))
		return -1;
	*events = __zchan_poll_events(g, fanin_ready, 0);
	return g->fd;
}

/*
 * The group's table: waits arm every lane and sleep in poll() on g->fd;
 * its own fd is made readable through a lane's (self_kick); the rest
 * (kicks, holders) is the lanes' own.
 */
static void fanin_init(struct zchan *g)
{
	g->ops->lanes->init(g);
}

static void fanin_free(struct zchan *g)
{
	struct zchan_fanin *f = g->fanin;

	if (f) {
		while (f->nlanes)
			lane_free(g, f->nlanes - 1);
		free(f->lanes);
		free(f);
		g->fanin = NULL;
	}
	g->ops->lanes->free(g);
}

static bool fanin_release(struct zchan *g)
{
	return false;	/* the lanes' holders are the lanes' */
}

static void fanin_close(struct zchan *g, bool last)
{
}

/*
 * The re-check before a sleep need not ask the producers' processes where
 * the lanes' own fds wake g->fd when they go (memfd); after a wake-up it
 * does.
 */
static bool fanin_arm_sleep(struct zchan *g, int64_t timeout_ns, bool again)
{
	fanin_arm(g);
	return false;
}

static int fanin_sleep(struct zchan *g, int64_t timeout_ns)
{
	struct pollfd pfd = { .fd = g->fd, .events = POLLIN };
	int ms = timeout_ns < 0 ? -1 : (int)(timeout_ns / 1000000);
	int ret;

	if (timeout_ns > 0 && ms == 0)
		ms = 1;
	__zchan_count_syscalls(g, 1);
	ret = __sys_poll(&pfd, 1, ms);
	if (ret < 0)
		return ret;
	return ret ? 0 : -ETIME;
}

/* g->fd readable now: through any lane still on it. */
static void fanin_self_kick(struct zchan *g)
{
	struct zchan_fanin *f = g->fanin;
	unsigned int i;

	for (i = 0; i < f->nlanes; i++) {
		struct zchan *lane = f->lanes[i].z;

		if ((!f->lanes[i].done || f->lanes[i].witness) &&
		    lane->ops->self_kick) {
			lane->ops->self_kick(lane);
			return;
		}
	}
}

static void fanin_kick(struct zchan *g)
{
}

static bool fanin_peer_asleep(struct zchan *g, uint32_t nw)
{
	return false;
}

static bool fanin_peer_gone(struct zchan *g)
{
	return false;
}

/*
 * A forked child's first call on an inherited consumer end: it holds
 * every lane now (each lane's producer watches it from then on), as a
 * 1:1 end's first call holds it.  A lane out of the rotation need not be.
 */
static int fanin_hold(struct zchan *g)
{
	struct zchan_fanin *f = g->fanin;
	unsigned int i;
	int ret;

	for (i = 0; i < f->nlanes; i++) {
		ret = __zchan_hold(f->lanes[i].z);
		if (ret && !f->lanes[i].done)
			return ret;
	}
	return 0;
}

/* The consumer's view: producer ends whose lane's producer is not gone. */
static int fanin_ends(struct zchan *g, unsigned int role)
{
	struct zchan_fanin *f = g->fanin;
	unsigned int i;
	int ret, n = 0;

	if (role == ZCHAN_ROLE_CONSUMER)
		return 1;
	ret = g->ops->lanes->adopt_lanes(g, true);
	if (ret < 0)
		return ret;
	for (i = 0; i < f->nlanes; i++)
		if (!f->lanes[i].done && !__zchan_peer_gone(f->lanes[i].z, true))
			n++;
	return n;
}

/* A new producer end: the lanes' backend makes it (and adds its lane). */
static int fanin_peer_fds(struct zchan *g, unsigned int role, int *fds,
			  struct zchan_layout *l)
{
	if (role == ZCHAN_ROLE_CONSUMER)
		return -EUSERS;		/* this is the consumer */
	return g->ops->lanes->peer_fds(g, role, fds, l);
}

static void fanin_peer_sent(struct zchan *g, unsigned int role)
{
	g->ops->lanes->peer_sent(g, role);
}

#define FANIN_OPS(lane_ops, be) {		\
	.backend	= (be),			\
	.init		= fanin_init,		\
	.free		= fanin_free,		\
	.peer_fds	= fanin_peer_fds,	\
	.peer_sent	= fanin_peer_sent,	\
	.hold		= fanin_hold,		\
	.release	= fanin_release,	\
	.close		= fanin_close,		\
	.kick		= fanin_kick,		\
	.peer_asleep	= fanin_peer_asleep,	\
	.arm		= fanin_arm,		\
	.arm_sleep	= fanin_arm_sleep,	\
	.sleep		= fanin_sleep,		\
	.self_kick	= fanin_self_kick,	\
	.peer_gone	= fanin_peer_gone,	\
	.ends		= fanin_ends,		\
	.lanes		= (lane_ops),		\
}

static const struct zchan_ops fanin_kernel_ops =
	FANIN_OPS(&__zchan_kernel_ops, ZCHAN_BACKEND_KERNEL);
static const struct zchan_ops fanin_memfd_ops =
	FANIN_OPS(&__zchan_memfd_ops, ZCHAN_BACKEND_MEMFD);

/*
 * *@end, a consumer end just received or attached: if its channel has
 * several producers, it becomes the first lane of a new group handle,
 * which takes its place in *@end (and the lanes announced meanwhile).
 * On failure *@end is closed.
 */
int __zchan_fanin_new(struct zchan **end)
{
	struct zchan *c = *end, *g;
	const struct zchan_ops *ops;
	int ret;

	if (c->role != ZCHAN_CONSUMER || c->max_producers <= 1)
		return 0;
	ops = c->ops == &__zchan_kernel_ops ? &fanin_kernel_ops :
					      &fanin_memfd_ops;
	ret = -EOPNOTSUPP;
	if (!c->ops->group_init)
		goto out_close;
	ret = -ENOMEM;
	g = __zchan_alloc(ZCHAN_FANIN, ops);
	if (!g)
		goto out_close;
	g->fanin = calloc(1, sizeof(*g->fanin));
	if (!g->fanin) {
		__zchan_free(g);
		goto out_close;
	}
	g->fanin->budget = FANIN_BUDGET;
	g->max_producers = c->max_producers;
	g->max_consumers = c->max_consumers;
	g->chan_flags = c->chan_flags;
	g->flags = c->flags;
	g->layout = c->layout;
	g->pool_size = c->pool_size;
	g->entries = c->entries;
	g->mask = c->mask;
	g->max_msg = c->max_msg;
	g->spin_ns = c->spin_ns;
	ret = c->ops->group_init(g, c);
	if (ret) {
		__zchan_free(g);
		goto out_close;
	}
	ret = __zchan_fanin_add(g, c);	/* closes c if it fails */
	if (!ret)
		ret = c->ops->adopt_lanes(g, true);
	if (ret) {
		__zchan_free(g);
		return ret;
	}
	*end = g;
	return 0;
out_close:
	zchan_close(c);
	return ret;
}

void __zchan_fanin_stats(const struct zchan *g, struct zchan_stats *st)
{
	const struct zchan_fanin *f = g->fanin;
	unsigned int i;

	*st = g->st;
	stats_add(st, &f->gone);
	for (i = 0; i < f->nlanes; i++)
		stats_add(st, &f->lanes[i].z->st);
}
