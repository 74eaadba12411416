// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * The ring protocol, userspace half (see protocol.md / <linux/zchan.h>).
 *
 * Producer: loans take a ring slot and cache-line aligned pool space from a
 * private record, commits publish (store-release tail) up to the first
 * slot not yet committed, then a full fence orders the tail store before
 * the load of the consumer's need_wakeup (Dekker pattern against the
 * consumer's "arm, fence, re-check"): a kick is only sent when the consumer
 * sleeps.  Reclaim trusts nothing but the consumer's head, bounded by what
 * was published.
 *
 * Consumer: load-acquire tail, bound it, copy each descriptor once,
 * validate it against the pool before exposing pool + off; releases in any
 * order, head advances (store-release) over contiguous released slots,
 * then fence and need_wakeup as above.
 *
 * No syscall and no allocation here unless a peer sleeps or we must.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "zchan_int.h"

static int zchan_fail(struct zchan *z, int err)
{
	if (!z->err)
		z->err = err;
	return z->err;
}

/* ------------------------------------------------------------------ */
/* Notifications                                                       */

void zchan_kick(struct zchan *z)
{
	z->st.kicks++;
	if (z->backend == ZCHAN_BACKEND_KERNEL) {
		struct zchan_kick k = { 0 };

		/* An error here (peer gone) shows up through 'closed'. */
		zchan_keep_errno(ioctl(z->fd, ZCHAN_IOC_KICK, &k));
	} else {
		uint64_t one = 1;
		ssize_t ret;

		/* EAGAIN: counter saturated, the peer is woken anyway. */
		ret = zchan_keep_errno(write(z->peer_efd, &one, sizeof(one)));
		(void)ret;
	}
}

/*
 * Called after our own store (tail or head) and before reading the peer's
 * need_wakeup.  The kernel clears need_wakeup when it delivers a kick; the
 * memfd peer cannot (the word is read-only here), so there need_wakeup is a
 * generation and we kick each generation once.
 */
static void zchan_notify_peer(struct zchan *z)
{
	uint32_t nw;

	smp_mb();
	nw = load_once(z->peer_need_wakeup);
	if (likely(!nw))
		return;
	if (z->backend == ZCHAN_BACKEND_MEMFD) {
		if (nw == z->kicked_gen)
			return;
		z->kicked_gen = nw;
	}
	zchan_kick(z);
}

/*
 * Announce that this end is about to sleep (or returns -EAGAIN), then the
 * caller re-checks its condition: either it sees the peer's last store or
 * the peer sees need_wakeup and kicks.
 *
 * memfd: the generation only moves on after a kick from the peer was
 * drained, so it is always the peer's last kicked generation or the one
 * after it: the peer can never mistake a new wait for one it already
 * kicked, however often we arm.
 */
void zchan_arm(struct zchan *z)
{
	if (z->backend == ZCHAN_BACKEND_MEMFD) {
		if (z->kick_seen || !z->arm_gen) {
			if (++z->arm_gen == 0)
				z->arm_gen = 1;
			z->kick_seen = false;
		}
		store_once(z->own_need_wakeup, z->arm_gen);
	} else {
		store_once(z->own_need_wakeup, 1);
	}
	smp_mb();
}

/* memfd: consume pending kicks so the epoll fd stops being readable. */
void zchan_drain(struct zchan *z)
{
	uint64_t cnt = 0;

	if (z->backend != ZCHAN_BACKEND_MEMFD)
		return;
	if (zchan_keep_errno(read(z->own_efd, &cnt, sizeof(cnt))) != sizeof(cnt))
		cnt = 0;
	if (cnt > z->self_kicks)
		z->kick_seen = true;
	z->self_kicks = 0;
}

/* memfd: make our own epoll fd readable (zchan_prep_wait, ready now). */
void zchan_self_kick(struct zchan *z)
{
	uint64_t one = 1;

	if (zchan_keep_errno(write(z->own_efd, &one, sizeof(one))) == sizeof(one))
		z->self_kicks++;
}

/*
 * Has the peer end gone?  The kernel (or a memfd peer closing cleanly) sets
 * the peer's closed word; a memfd peer whose users all died is seen through
 * their pidfds (users.c) or as a hang-up of the liveness socket, which
 * costs syscalls: only when @slow.
 */
int zchan_peer_gone(struct zchan *z, bool slow)
{
	struct pollfd pfd;

	if (z->peer_dead)
		return 1;
	if (load_acquire(z->peer_closed)) {
		z->peer_dead = true;
		return 1;
	}
	if (!slow || z->backend != ZCHAN_BACKEND_MEMFD || z->sock < 0)
		return 0;
	pfd.fd = z->sock;
	pfd.events = POLLRDHUP;
	pfd.revents = 0;
	if ((zchan_keep_errno(poll(&pfd, 1, 0)) > 0 &&
	     (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL))) ||
	    zchan_keep_errno(zchan_users_peer_gone(z))) {
		z->peer_dead = true;
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Producer                                                            */

/* Take back the slots and pool space the consumer released. */
static int prod_reclaim(struct zchan *z)
{
	uint32_t head = load_acquire(z->head);
	uint32_t seen = z->p_seen;

	if (head == seen)
		return 0;
	if ((uint32_t)(head - seen) > (uint32_t)(z->p_tail - seen))
		return zchan_fail(z, -EPROTO);
	while (seen != head) {
		struct zchan_slot *s = &z->slots[seen & z->mask];

		z->pool_used -= s->span;
		s->state = SLOT_FREE;
		seen++;
	}
	z->p_seen = seen;
	if (!z->pool_used)
		z->pool_next = 0;	/* empty: restart at the front */
	store_release(z->head_seen, seen);
	return 1;
}

static uint32_t pool_span(uint32_t len)
{
	uint32_t a = len ? len : 1;

	return (a + ZCHAN_POOL_ALIGN - 1) & ~(ZCHAN_POOL_ALIGN - 1);
}

/* Would a message of @len bytes fit now?  Fills @off and @span if so. */
static bool prod_fits(const struct zchan *z, uint32_t len, uint64_t *off,
		      uint64_t *span)
{
	uint64_t a = pool_span(len), o = z->pool_next, pad = 0;

	if ((uint32_t)(z->p_alloc - z->p_seen) >= z->entries)
		return false;
	if (o + a > z->pool_size) {	/* never wrap a message */
		pad = z->pool_size - o;
		o = 0;
	}
	if (z->pool_used + pad + a > z->pool_size)
		return false;
	*off = o;
	*span = pad + a;
	return true;
}

/*
 * Room for @len bytes, reclaiming if needed: 1 yes, 0 no, -ENOBUFS if only
 * our own outstanding loans hold the space (waiting would never end).
 */
static int prod_room(struct zchan *z, uint32_t len)
{
	uint64_t off, span;
	int ret;

	if (prod_fits(z, len, &off, &span))
		return 1;
	ret = prod_reclaim(z);
	if (ret < 0)
		return ret;
	if (prod_fits(z, len, &off, &span))
		return 1;
	if (z->p_seen == z->p_tail)
		return -ENOBUFS;
	return 0;
}

static int prod_alloc(struct zchan *z, uint32_t len, uint32_t *idx)
{
	struct zchan_slot *s;
	uint64_t off, span;

	if (!prod_fits(z, len, &off, &span))
		return -EAGAIN;
	*idx = z->p_alloc++;
	s = &z->slots[*idx & z->mask];
	s->off = off;
	s->len = len;
	s->span = (uint32_t)span;
	s->state = SLOT_LOANED;
	z->pool_used += span;
	z->pool_next = off + pool_span(len);
	if (z->pool_next == z->pool_size)
		z->pool_next = 0;
	if (z->alloc) {
		/*
		 * ZCHAN_CREATE_PUBLISH_ON_CLOSE: a skipped placeholder, then
		 * alloc, so that a kernel publishing up to alloc when we are
		 * gone delivers what we committed and skips the rest.
		 */
		struct zchan_desc *d = &z->descs[*idx & z->mask];

		store_once(&d->off, off);
		store_once(&d->len, 0);
		store_once(&d->flags, ZCHAN_DESC_SKIP);
		store_release(z->alloc, z->p_alloc);
	}
	return 0;
}

static int prod_get(struct zchan *z, uint32_t len, unsigned int flags,
		    uint32_t *idx)
{
	int ret;

	for (;;) {
		if (unlikely(z->err))
			return z->err;
		if (unlikely(zchan_peer_gone(z, false)))
			return -EPIPE;
		if (likely(!prod_alloc(z, len, idx)))
			return 0;
		ret = prod_room(z, len);
		if (ret < 0)
			return ret;
		if (ret > 0)
			continue;
		if (flags & ZCHAN_NONBLOCK) {
			zchan_drain(z);
			zchan_arm(z);
			ret = prod_room(z, len);
			if (ret < 0)
				return ret;
			if (ret > 0)
				continue;
			if (zchan_peer_gone(z, true))
				return -EPIPE;
			return -EAGAIN;
		}
		ret = zchan_wait_ready(z, len, -1);
		if (ret < 0)
			return ret;
	}
}

static void prod_publish(struct zchan *z)
{
	uint32_t t = z->p_tail;

	while (t != z->p_alloc && z->slots[t & z->mask].state == SLOT_READY)
		t++;
	if (t == z->p_tail)
		return;
	z->p_tail = t;
	store_release(z->tail, t);
	zchan_notify_peer(z);
}

static void prod_commit_slot(struct zchan *z, uint32_t idx, uint32_t len,
			     bool skip)
{
	struct zchan_slot *s = &z->slots[idx & z->mask];
	struct zchan_desc *d = &z->descs[idx & z->mask];

	store_once(&d->off, s->off);
	store_once(&d->len, skip ? 0 : len);
	store_once(&d->flags, skip ? ZCHAN_DESC_SKIP : 0);
	s->state = SLOT_READY;
	if (!skip) {
		z->st.messages++;
		z->st.bytes += len;
	}
	prod_publish(z);
}

/*
 * The producer stops using its end: each loan still outstanding becomes a
 * skipped slot (as an aborted one), so that every message committed after
 * it is published before the end is marked closed.
 */
void zchan_prod_end_loans(struct zchan *z)
{
	uint32_t i;

	if (z->role != ZCHAN_PRODUCER || !z->slots || z->err)
		return;
	for (i = z->p_tail; i != z->p_alloc; i++)
		if (z->slots[i & z->mask].state == SLOT_LOANED)
			prod_commit_slot(z, i, 0, true);
}

static int prod_find_loan(struct zchan *z, const void *buf, uint32_t *idx)
{
	uint64_t off = (uintptr_t)buf - (uintptr_t)z->pool;
	uint32_t i;

	if ((uintptr_t)buf < (uintptr_t)z->pool || off >= z->pool_size)
		return -EINVAL;
	for (i = z->p_tail; i != z->p_alloc; i++) {
		struct zchan_slot *s = &z->slots[i & z->mask];

		if (s->state == SLOT_LOANED && s->off == off) {
			*idx = i;
			return 0;
		}
	}
	return -EINVAL;
}

static int check_producer(struct zchan *z, unsigned int flags)
{
	if (!z || z->role != ZCHAN_PRODUCER || (flags & ~ZCHAN_NONBLOCK))
		return -EINVAL;
	return zchan_use(z);
}

ZCHAN_EXPORT
ssize_t zchan_send(struct zchan *p, const void *buf, size_t len,
		   unsigned int flags)
{
	uint32_t idx;
	int ret;

	ret = check_producer(p, flags);
	if (ret)
		return ret;
	if (!buf && len)
		return -EINVAL;
	if (len > p->max_msg)
		return -EMSGSIZE;
	ret = prod_get(p, (uint32_t)len, flags, &idx);
	if (ret)
		return ret;
	if (len)
		memcpy(p->pool + p->slots[idx & p->mask].off, buf, len);
	prod_commit_slot(p, idx, (uint32_t)len, false);
	return (ssize_t)len;
}

ZCHAN_EXPORT
int zchan_loan(struct zchan *p, size_t len, void **buf, unsigned int flags)
{
	uint32_t idx;
	int ret;

	ret = check_producer(p, flags);
	if (ret)
		return ret;
	if (!buf || !len)
		return -EINVAL;
	if (len > p->max_msg)
		return -EMSGSIZE;
	ret = prod_get(p, (uint32_t)len, flags, &idx);
	if (ret)
		return ret;
	*buf = p->pool + p->slots[idx & p->mask].off;
	return 0;
}

ZCHAN_EXPORT
int zchan_commit(struct zchan *p, void *buf, size_t len)
{
	uint32_t idx;
	int ret;

	ret = check_producer(p, 0);
	if (ret)
		return ret;
	ret = prod_find_loan(p, buf, &idx);
	if (ret)
		return ret;
	if (len > p->slots[idx & p->mask].len)
		return -EINVAL;
	prod_commit_slot(p, idx, (uint32_t)len, len == 0);
	return 0;
}

ZCHAN_EXPORT
int zchan_abort(struct zchan *p, void *buf)
{
	return zchan_commit(p, buf, 0);
}

/* ------------------------------------------------------------------ */
/* Consumer                                                            */

static void cons_release_slot(struct zchan *z, uint32_t idx)
{
	uint32_t h = z->c_head;

	z->slots[idx & z->mask].state = SLOT_RELEASED;
	if (idx != h)
		return;		/* out of order: head waits for the gap */
	while (h != z->c_read && z->slots[h & z->mask].state == SLOT_RELEASED) {
		z->slots[h & z->mask].state = SLOT_FREE;
		h++;
	}
	z->c_head = h;
	store_release(z->head, h);
	zchan_notify_peer(z);
}

/*
 * Look at the next message without taking it: 1 and a validated copy of
 * its descriptor in @d, 0 if the ring is empty, -EPROTO on garbage.
 * Dropped loans (SKIP) are consumed and released on the way.
 */
static int cons_peek(struct zchan *z, struct zchan_desc *d)
{
	for (;;) {
		uint32_t tail = load_acquire(z->tail);
		uint32_t avail = tail - z->c_head;
		struct zchan_desc *sd;

		if (avail > z->entries || avail < z->c_read - z->c_head)
			return zchan_fail(z, -EPROTO);
		if (tail == z->c_read)
			return 0;
		sd = &z->descs[z->c_read & z->mask];
		d->off = load_once(&sd->off);
		d->len = load_once(&sd->len);
		d->flags = load_once(&sd->flags);
		if (d->flags & ~ZCHAN_DESC_SKIP)
			return zchan_fail(z, -EPROTO);
		if (!(d->flags & ZCHAN_DESC_SKIP)) {
			if (d->len > z->max_msg || d->off > z->pool_size ||
			    d->len > z->pool_size - d->off)
				return zchan_fail(z, -EPROTO);
			return 1;
		}
		/* a dropped loan: take and release it silently */
		z->slots[z->c_read & z->mask].state = SLOT_BORROWED;
		z->slots[z->c_read & z->mask].off = 0;
		store_release(z->read, ++z->c_read);
		cons_release_slot(z, z->c_read - 1);
	}
}

static uint32_t cons_take(struct zchan *z, const struct zchan_desc *d)
{
	uint32_t idx = z->c_read;
	struct zchan_slot *s = &z->slots[idx & z->mask];

	s->off = d->off;
	s->len = d->len;
	s->state = SLOT_BORROWED;
	z->c_read = idx + 1;
	store_release(z->read, z->c_read);
	z->st.messages++;
	z->st.bytes += d->len;
	return idx;
}

static int cons_get(struct zchan *z, unsigned int flags, struct zchan_desc *d)
{
	int ret;

	for (;;) {
		if (unlikely(z->err))
			return z->err;
		ret = cons_peek(z, d);
		if (likely(ret))
			return ret < 0 ? ret : 0;
		if (zchan_peer_gone(z, false)) {
			/* closed is set after the last tail: look again */
			ret = cons_peek(z, d);
			return ret ? (ret < 0 ? ret : 0) : -EPIPE;
		}
		if (flags & ZCHAN_NONBLOCK) {
			zchan_drain(z);
			zchan_arm(z);
			ret = cons_peek(z, d);
			if (ret)
				return ret < 0 ? ret : 0;
			if (zchan_peer_gone(z, true)) {
				ret = cons_peek(z, d);
				return ret ? (ret < 0 ? ret : 0) : -EPIPE;
			}
			return -EAGAIN;
		}
		ret = zchan_wait_ready(z, 0, -1);
		if (ret < 0)
			return ret;
	}
}

static int check_consumer(struct zchan *z, unsigned int flags)
{
	if (!z || z->role != ZCHAN_CONSUMER || (flags & ~ZCHAN_NONBLOCK))
		return -EINVAL;
	return zchan_use(z);
}

ZCHAN_EXPORT
ssize_t zchan_recv(struct zchan *c, void *buf, size_t cap, unsigned int flags)
{
	struct zchan_desc d;
	uint32_t idx;
	int ret;

	ret = check_consumer(c, flags);
	if (ret)
		return ret;
	if (!buf && cap)
		return -EINVAL;
	ret = cons_get(c, flags, &d);
	if (ret)
		return ret;
	if (d.len > cap)
		return -EMSGSIZE;	/* not taken: it stays for the next call */
	if (d.len)
		memcpy(buf, c->pool + d.off, d.len);
	idx = cons_take(c, &d);
	cons_release_slot(c, idx);
	return d.len;
}

ZCHAN_EXPORT
ssize_t zchan_recv_zc(struct zchan *c, const void **buf, unsigned int flags)
{
	struct zchan_desc d;
	int ret;

	ret = check_consumer(c, flags);
	if (ret)
		return ret;
	if (!buf)
		return -EINVAL;
	ret = cons_get(c, flags, &d);
	if (ret)
		return ret;
	cons_take(c, &d);
	*buf = c->pool + d.off;
	return d.len;
}

ZCHAN_EXPORT
int zchan_recv_batch(struct zchan *c, struct zchan_msg *msgs, unsigned int nr,
		     unsigned int flags)
{
	struct zchan_desc d;
	unsigned int n;
	int ret;

	ret = check_consumer(c, flags);
	if (ret)
		return ret;
	if (!msgs || !nr || nr > INT32_MAX)
		return -EINVAL;
	ret = cons_get(c, flags, &d);
	if (ret)
		return ret;
	for (n = 0;;) {
		cons_take(c, &d);
		msgs[n].buf = c->pool + d.off;
		msgs[n].len = d.len;
		if (++n == nr || cons_peek(c, &d) <= 0)
			break;	/* an error stays sticky for the next call */
	}
	return (int)n;
}

ZCHAN_EXPORT
int zchan_release(struct zchan *c, const void *buf)
{
	uint64_t off;
	uint32_t i;
	int ret;

	ret = check_consumer(c, 0);
	if (ret)
		return ret;
	if ((uintptr_t)buf < (uintptr_t)c->pool)
		return -EINVAL;
	off = (uintptr_t)buf - (uintptr_t)c->pool;
	for (i = c->c_head; i != c->c_read; i++) {
		struct zchan_slot *s = &c->slots[i & c->mask];

		if (s->state == SLOT_BORROWED && s->off == off) {
			cons_release_slot(c, i);
			return 0;
		}
	}
	return -EINVAL;
}

/* ------------------------------------------------------------------ */
/* Readiness                                                           */

/*
 * What this end could do now, as a poll mask: consumer POLLIN (a message),
 * producer POLLOUT (room for @need bytes), POLLHUP (plus POLLERR for the
 * producer) once the peer is gone.  @slow allows syscalls (memfd liveness).
 */
int zchan_ready_mask(struct zchan *z, uint32_t need, bool slow)
{
	struct zchan_desc d;
	int ret, mask = 0;

	if (z->err)
		return z->err;
	if (z->role == ZCHAN_CONSUMER) {
		ret = cons_peek(z, &d);
		if (ret < 0)
			return ret;
		if (ret)
			mask = POLLIN;
		if (zchan_peer_gone(z, slow && !ret)) {
			/* closed is stored after the last tail: look again */
			ret = cons_peek(z, &d);
			if (ret < 0)
				return ret;
			mask = POLLHUP | (ret ? POLLIN : 0);
		}
		return mask;
	}
	if (zchan_peer_gone(z, slow))
		return POLLERR | POLLHUP;
	ret = prod_room(z, need);
	if (ret < 0)
		return ret;
	return ret ? POLLOUT : 0;
}

ZCHAN_EXPORT
int zchan_poll(struct zchan *ch)
{
	int ret;

	if (!ch)
		return -EINVAL;
	ret = zchan_use(ch);
	if (ret)
		return ret;
	return zchan_ready_mask(ch, ch->max_msg, true);
}
