// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * The ring protocol, userspace half: Documentation/module.rst ("The ring
 * protocol") and struct zchan_layout in <linux/zchan.h> describe it.
 *
 * Producer: loans take a ring slot and cache-line aligned pool space from a
 * private record, commits publish (store-release tail) up to the first
 * slot not yet committed - or, with ZCHAN_MORE, queue until a batch is
 * ready or the producer flushes or must wait - then a full fence orders
 * the tail store before the load of the consumer's need_wakeup (Dekker
 * pattern against the consumer's "arm, fence, re-check"): a kick is only
 * sent when the consumer sleeps.  Reclaim trusts nothing but the
 * consumer's head, bounded by what was published.  A producer that runs
 * out of room waits for a batch of it; the pool is used from the front
 * while the consumer keeps up (prod_rewind()).
 *
 * Consumer: load-acquire tail (only when what it showed is used up), bound
 * it, copy each descriptor once, validate it against the pool before
 * exposing pool + off; once a memfd producer is gone, it publishes up to
 * the producer's alloc word itself (cons_last_tail()), as the module does
 * for the kernel backend; releases in any order, head advances (store-release)
 * over contiguous released slots, then fence and need_wakeup as above; a
 * producer asleep for room is woken once a batch is free.
 *
 * Readiness (zchan_poll, zchan_wait, zchan_prep_wait) is the data path's
 * question "could this end go on?"; the notifications and the waits it
 * uses are in wait.c.
 *
 * No syscall and no allocation here unless a peer sleeps or we must.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "zchan_int.h"

static int fail_sticky(struct zchan *z, int err)
{
	if (!z->err)
		z->err = err;
	return z->err;
}

/* Spin, then sleep, until this end is ready (see __zchan_ready_mask()). */
static int wait_ready(struct zchan *z, uint32_t need, int64_t timeout_ns)
{
	return __zchan_wait_until(z, __zchan_ready_mask, need, timeout_ns);
}

/* ------------------------------------------------------------------ */
/* Batches                                                             */

/*
 * A quarter of the ring or of the pool is a batch: what ZCHAN_MORE queues
 * before it publishes anyway, and what must be free again before a
 * producer that ran out of room goes on (and what the consumer releases
 * before it wakes such a producer).
 *
 * Going on at the first free slot kept a producer that got ahead in
 * lockstep with the consumer: every release let it write one message,
 * into the descriptor line the consumer was reading, while it polled the
 * head line the consumer stored to, so each message paid cache-line
 * transfers on both sides.  Waiting for a batch keeps the two ends a
 * quarter of the ring apart.
 */
static bool is_batch(const struct zchan *z, uint32_t slots, uint64_t bytes)
{
	return slots >= z->entries / 4 || bytes >= z->pool_size / 4;
}

/* ------------------------------------------------------------------ */
/* Producer                                                            */

/* Take back the slots and pool space the consumer released. */
static int prod_reclaim(struct zchan *z)
{
	/* broadcast: the least of the consumers' heads, bounded (bcast.c) */
	uint32_t head = unlikely(z->bcast) ? z->ops->bcast_head(z) :
					     load_acquire(z->head);
	uint32_t seen = z->p_seen;

	if (head == seen)
		return 0;
	if ((uint32_t)(head - seen) > (uint32_t)(z->p_tail - seen))
		return fail_sticky(z, -EPROTO);
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

/*
 * Keep the pool's working set small.  The pool is a ring: walking on
 * through all of it while the consumer keeps up touches every page of it
 * (a page fault in each process on first touch, cold cache lines and TLB
 * entries after), where a few pages would do.  So every ZCHAN_POOL_HOT
 * bytes the producer looks at what the consumer gave back (one load of
 * head), and if at most that much is in flight it starts again at the
 * front: the rest of the pool becomes padding of the newest slot, freed
 * with it.  Only for messages of up to a 16th of that.  Larger ones take
 * the pool in turn: a line is written again only after all the rest of
 * the pool, when it has left the consumer's cache for the shared one, and
 * the write needs no snoop.  Going back to the front for them as well
 * (whenever the front held twice what was in flight) halved 64 KiB and
 * 256 KiB streams (8.0 against 15.9 and 15.4 GB/s, 4 MiB pool, EPYC with
 * 1 MiB L2s): the producer wrote the lines the consumer had just read.
 *
 * And only from the second half of the pool on: until the consumer passes
 * the newest slot the padding is not free, and the producer has only the
 * front, up to the oldest message in flight.  Rewinding earlier left it a
 * few KiB there: a consumer keeping a message borrowed while it waited for
 * a few more put both ends to sleep (issue 23).  From half the pool on the
 * producer can always write half the pool past the oldest message the
 * consumer holds, as Documentation/library.rst promises.
 */
static void prod_rewind(struct zchan *z, uint32_t len)
{
	uint64_t o = z->pool_next, pad = z->pool_size - o;
	struct zchan_slot *last;

	if (o < z->p_rewind_at || pool_span(len) > ZCHAN_POOL_HOT / 16)
		return;
	z->p_rewind_at = o + ZCHAN_POOL_HOT;
	if (prod_reclaim(z) < 0 || !z->pool_used)
		return;		/* empty: prod_reclaim() rewound */
	last = &z->slots[(z->p_alloc - 1) & z->mask];
	if (z->pool_used > ZCHAN_POOL_HOT || z->pool_used + pool_span(len) > o ||
	    o - z->pool_used < z->pool_size / 2 || last->span + pad > UINT32_MAX)
		return;
	last->span += (uint32_t)pad;
	z->pool_used += pad;
	z->pool_next = 0;
}

/*
 * memfd, or ZCHAN_CREATE_PUBLISH_ON_CLOSE: whoever publishes up to alloc
 * when we are gone (the module, or the memfd consumer: cons_last_tail())
 * must find a message we committed or a skipped placeholder in every slot
 * below it.  Slot @idx is the first not covered: write placeholders in it
 * and in free slots after it, a quarter of the ring at most, then store
 * alloc once for all of them.  Once per message, the alloc store (on the
 * line of the words the consumer polls) made a 64-byte handoff about a
 * third slower; placeholders left over when we go are skipped slots.
 */
static void prod_alloc_ahead(struct zchan *z, uint32_t idx)
{
	uint32_t end = idx + z->entries / 4, free_end = z->p_seen + z->entries;

	if (end == idx || (uint32_t)(end - idx) > (uint32_t)(free_end - idx))
		end = free_end;
	for (z->p_alloc_pub = idx; z->p_alloc_pub != end; z->p_alloc_pub++) {
		struct zchan_desc *d = &z->descs[z->p_alloc_pub & z->mask];

		store_once(&d->off, 0);
		store_once(&d->len, 0);
		store_once(&d->flags, ZCHAN_DESC_SKIP);
	}
	store_release(z->alloc, end);
}

static int prod_alloc(struct zchan *z, uint32_t len, uint32_t *idx)
{
	struct zchan_slot *s;
	uint64_t off, span;

	prod_rewind(z, len);
	if (!prod_fits(z, len, &off, &span))
		return -EAGAIN;
	if (!off)
		z->p_rewind_at = ZCHAN_POOL_HOT;
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
	if (z->alloc && *idx == z->p_alloc_pub)
		prod_alloc_ahead(z, *idx);
	return 0;
}

/*
 * Publish every message committed so far (up to the first slot still on
 * loan): one tail store and one fence for all of them, and a kick only if
 * the consumer sleeps.
 */
static void prod_publish(struct zchan *z)
{
	uint32_t t = z->p_tail;

	z->p_more = 0;
	z->p_more_bytes = 0;
	while (t != z->p_alloc && z->slots[t & z->mask].state == SLOT_READY)
		t++;
	if (t == z->p_tail)
		return;
	z->p_tail = t;
	store_release(z->tail, t);
	if (unlikely(z->bcast))
		z->ops->bcast_notify(z);
	else
		__zchan_notify_peer(z);
}

/*
 * A producer that ran out of room goes on when a batch of room is free
 * again (a quarter of the slots and of the pool bytes, padding included),
 * or the consumer gave back everything, or - @slow: it costs a load of a
 * line the consumer writes - the consumer has taken everything published
 * (it waits for us, or holds the rest, and a batch may never come).
 */
static bool prod_batch_free(struct zchan *z, bool slow)
{
	return z->p_seen == z->p_tail ||
	       (z->entries - (z->p_alloc - z->p_seen) >= z->entries / 4 &&
		z->pool_size - z->pool_used >= z->pool_size / 4) ||
	       (slow && (unlikely(z->bcast) ? z->ops->bcast_all_read(z) :
			 load_acquire(z->read) == z->p_tail));
}

/* __zchan_wait_until() test of a producer that ran out of room. */
static int prod_ready_batched(struct zchan *z, uint32_t need, bool slow)
{
	int ret;

	if (z->err)
		return z->err;
	if (__zchan_peer_gone(z, slow))
		return POLLERR | POLLHUP;
	ret = prod_reclaim(z);
	if (ret >= 0)
		ret = prod_room(z, need);
	if (ret <= 0)
		return ret;
	return prod_batch_free(z, slow) ? POLLOUT : 0;
}

static int prod_get(struct zchan *z, uint32_t len, unsigned int flags,
		    uint32_t *idx)
{
	int ret;

	for (;;) {
		if (unlikely(z->err))
			return z->err;
		if (unlikely(__zchan_peer_gone(z, false)))
			return -EPIPE;
		if (likely(!prod_alloc(z, len, idx)))
			return 0;
		/* out of room: what we queued must go out before we wait */
		prod_publish(z);
		ret = prod_room(z, len);
		if (ret < 0)
			return ret;
		if (ret > 0 && ((flags & ZCHAN_NONBLOCK) ||
				prod_batch_free(z, true)))
			continue;
		if (flags & ZCHAN_NONBLOCK) {
			__zchan_arm(z);
			ret = prod_room(z, len);
			if (ret < 0)
				return ret;
			if (ret > 0)
				continue;
			if (__zchan_peer_gone(z, true))
				return -EPIPE;
			return -EAGAIN;
		}
		ret = __zchan_wait_until(z, prod_ready_batched, len, -1);
		if (ret < 0)
			return ret;
	}
}

static void prod_commit_slot(struct zchan *z, uint32_t idx, uint32_t len,
			     bool skip, unsigned int flags)
{
	struct zchan_slot *s = &z->slots[idx & z->mask];
	struct zchan_desc *d = &z->descs[idx & z->mask];

	if (skip)
		len = 0;
	store_once(&d->off, s->off);
	store_once(&d->len, len);
	store_once(&d->flags, skip ? ZCHAN_DESC_SKIP : 0);
	s->len = len;
	s->state = SLOT_READY;
	if (!skip) {
		z->st.messages++;
		z->st.bytes += len;
	}
	z->p_more++;
	z->p_more_bytes += len;
	if (!(flags & ZCHAN_MORE) || is_batch(z, z->p_more, z->p_more_bytes) ||
	    z->p_more_bytes >= ZCHAN_PUBLISH_BYTES)
		prod_publish(z);
}

/*
 * The producer stops using its end: each loan still outstanding becomes a
 * skipped slot (as an aborted one), and every message committed (after
 * such a loan, or held back by ZCHAN_MORE) is published before the end is
 * marked closed.
 */
void __zchan_prod_end_loans(struct zchan *z)
{
	uint32_t i;

	if (z->role != ZCHAN_PRODUCER || !z->slots || z->err)
		return;
	for (i = z->p_tail; i != z->p_alloc; i++)
		if (z->slots[i & z->mask].state == SLOT_LOANED)
			prod_commit_slot(z, i, 0, true, ZCHAN_MORE);
	prod_publish(z);
}

/*
 * The slot on loan at @buf, newest first: a commit is almost always of the
 * last loan, and the slots before it are the committed ones a ZCHAN_MORE
 * batch holds back.  Searching from the oldest made each commit walk the
 * batch (a quarter of the commits' cost at 64 B in batches of 32).
 */
static int prod_find_loan(struct zchan *z, const void *buf, uint32_t *idx)
{
	uint64_t off = (uintptr_t)buf - (uintptr_t)z->pool;
	uint32_t i;

	if ((uintptr_t)buf < (uintptr_t)z->pool || off >= z->pool_size)
		return -EINVAL;
	for (i = z->p_alloc; i != z->p_tail; i--) {
		struct zchan_slot *s = &z->slots[(i - 1) & z->mask];

		if (s->state == SLOT_LOANED && s->off == off) {
			*idx = i - 1;
			return 0;
		}
	}
	return -EINVAL;
}

static int check_producer(struct zchan *z, unsigned int flags,
			  unsigned int allowed)
{
	if (!z || z->role != ZCHAN_PRODUCER || (flags & ~allowed))
		return -EINVAL;
	return __zchan_hold(z);
}

ZCHAN_EXPORT
ssize_t zchan_send(struct zchan *p, const void *buf, size_t len,
		   unsigned int flags)
{
	uint32_t idx;
	int ret;

	ret = check_producer(p, flags, ZCHAN_NONBLOCK | ZCHAN_MORE);
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
	prod_commit_slot(p, idx, (uint32_t)len, false, flags);
	return (ssize_t)len;
}

ZCHAN_EXPORT
int zchan_loan(struct zchan *p, size_t len, void **buf, unsigned int flags)
{
	uint32_t idx;
	int ret;

	ret = check_producer(p, flags, ZCHAN_NONBLOCK);
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

/*
 * Drop the newest loan: nothing was handed out after it, so its slot and
 * pool space go back at once (the pool position to where it was before
 * the loan, wrap padding included), and a loop of loans dropped with no
 * consumer reading never fills the ring.  Its descriptor was never
 * written; a placeholder prod_alloc_ahead() put there stays valid.
 *
 * Padding before the loan (it wrapped to offset 0) puts the position back
 * at the end of the pool; padding after it (prod_rewind() went back to the
 * front after it) goes with it, and the position is the loan's own start.
 * Taking that end for the start once counted the loan's bytes free while
 * the position skipped them: the producer later wrote over a message the
 * consumer held.
 */
static bool prod_unloan_newest(struct zchan *z, uint32_t idx)
{
	struct zchan_slot *s = &z->slots[idx & z->mask];
	uint64_t a = pool_span(s->len);

	if (idx + 1 != z->p_alloc)
		return false;
	z->p_alloc = idx;
	z->pool_used -= s->span;
	z->pool_next = !s->off && s->span > a ? z->pool_size - (s->span - a) :
		       s->off;
	if (!z->pool_used)
		z->pool_next = 0;
	s->state = SLOT_FREE;
	return true;
}

ZCHAN_EXPORT
int zchan_commit_flags(struct zchan *p, void *buf, size_t len,
		       unsigned int flags)
{
	uint32_t idx;
	int ret;

	ret = check_producer(p, flags, ZCHAN_MORE);
	if (ret)
		return ret;
	ret = prod_find_loan(p, buf, &idx);
	if (ret)
		return ret;
	if (len > p->slots[idx & p->mask].len)
		return -EINVAL;
	if (!len && prod_unloan_newest(p, idx)) {
		/* a commit without ZCHAN_MORE still sends what is queued */
		if (!(flags & ZCHAN_MORE))
			prod_publish(p);
		return 0;
	}
	prod_commit_slot(p, idx, (uint32_t)len, len == 0, flags);
	return 0;
}

ZCHAN_EXPORT
int zchan_commit(struct zchan *p, void *buf, size_t len)
{
	return zchan_commit_flags(p, buf, len, 0);
}

ZCHAN_EXPORT
int zchan_abort(struct zchan *p, void *buf)
{
	return zchan_commit_flags(p, buf, 0, 0);
}

/*
 * The producer's own pages (pages.c pins them): a slot first, since it may
 * wait and a pinned transfer should not, then the descriptor naming the
 * transfer, published as zchan_send() publishes.
 */
ZCHAN_EXPORT
int zchan_send_pages(struct zchan *p, const void *buf, size_t len,
		     uint64_t cookie, unsigned int flags)
{
	struct zchan_desc *d;
	struct zchan_slot *s;
	uint64_t off;
	uint32_t idx;
	int ret;

	ret = check_producer(p, flags, ZCHAN_NONBLOCK);
	if (!ret)
		ret = __zchan_pages_check(p, buf, len);
	if (!ret)
		ret = prod_get(p, 0, flags, &idx);
	if (ret)
		return ret;
	ret = __zchan_pages_pin(p, buf, len, cookie, &off);
	if (ret) {
		prod_commit_slot(p, idx, 0, true, 0);
		return ret;
	}
	s = &p->slots[idx & p->mask];
	d = &p->descs[idx & p->mask];
	store_once(&d->off, off);
	store_once(&d->len, (uint32_t)len);
	store_once(&d->flags, ZCHAN_DESC_PAGES);
	s->len = 0;		/* no pool bytes beyond the slot's span */
	s->state = SLOT_READY;
	p->st.messages++;
	p->st.bytes += len;
	prod_publish(p);
	return 0;
}

ZCHAN_EXPORT
int zchan_flush(struct zchan *p)
{
	int ret;

	ret = check_producer(p, 0, 0);
	if (ret)
		return ret;
	if (p->err)
		return p->err;
	prod_publish(p);
	return __zchan_peer_gone(p, false) ? -EPIPE : 0;
}

/* ------------------------------------------------------------------ */
/* Consumer                                                            */

/*
 * Wake a producer that sleeps for room once a batch was given back, or
 * once we took everything we know of (we are about to wait, or we hold the
 * rest: a batch may never come).  While the producer does not sleep the
 * count starts again, so that it counts from about when the producer ran
 * out, as the producer does (prod_batch_free()).
 */
static void cons_notify_producer(struct zchan *z)
{
	if (!__zchan_peer_sleeps(z)) {
		z->c_freed = 0;
		z->c_freed_bytes = 0;
		return;
	}
	if (z->c_ready && !is_batch(z, z->c_freed, z->c_freed_bytes))
		return;
	z->c_freed = 0;
	z->c_freed_bytes = 0;
	__zchan_wake_peer(z);
}

/* Move head over the released slots: one store for all of them. */
static void cons_advance_head(struct zchan *z)
{
	uint32_t h = z->c_head;

	while (h != z->c_read && z->slots[h & z->mask].state == SLOT_RELEASED) {
		struct zchan_slot *s = &z->slots[h & z->mask];

		s->state = SLOT_FREE;
		z->c_freed++;
		z->c_freed_bytes += s->len;
		h++;
	}
	if (h == z->c_head)
		return;		/* out of order: head waits for the gap */
	z->c_head = h;
	store_release(z->head, h);
	cons_notify_producer(z);
}

static void cons_release_slot(struct zchan *z, uint32_t idx)
{
	if (unlikely(z->slots[idx & z->mask].pages))
		__zchan_pages_unmap_slot(z, &z->slots[idx & z->mask]);
	z->slots[idx & z->mask].state = SLOT_RELEASED;
	if (idx == z->c_head)
		cons_advance_head(z);
}

/* Tell the kernel (poll) what we took: once per call, not per message. */
static void cons_store_read(struct zchan *z)
{
	store_release(z->read, z->c_read);
}

/*
 * The producer's tail once it is gone.  On the memfd backend nobody is left
 * to publish what it committed behind a loan it never committed, so the
 * consumer does what the module does at the producer's release: it takes
 * the producer's alloc word (every slot it handed out: messages, and
 * ZCHAN_DESC_SKIP placeholders for the loans), read once and only if
 * consistent (tail <= alloc <= head + entries), else the tail as it is.
 * The producer's ring is read-only here: the result is kept privately.
 * After a close alloc is tail (__zchan_prod_end_loans()); a producer that
 * never wrote alloc leaves it inconsistent, or equal to tail.  A consumer
 * maps the alloc word only where this is its job (memfd.c).
 */
static uint32_t cons_last_tail(struct zchan *z)
{
	uint32_t tail, alloc, used;

	if (!z->alloc)
		return load_acquire(z->tail);
	if (!z->c_last) {
		tail = load_acquire(z->tail);
		alloc = load_acquire(z->alloc);
		used = tail - z->c_head;
		z->c_last_tail = tail;
		if (used <= z->entries && alloc - tail <= z->entries - used)
			z->c_last_tail = alloc;
		z->c_last = true;
	}
	return z->c_last_tail;
}

/*
 * A lone message crosses three cache lines on the consumer's side: the
 * tail line, the descriptor it points to, the payload the descriptor
 * points to, each a transfer from the producer's CPU that the next one
 * waited for.  These hints start the later ones early; what we read after
 * the acquire-load of tail is coherent either way.
 *
 * Nothing published yet: ask for the next descriptor's line each time we
 * look, so that it comes over with the tail line.
 */
static inline void cons_prefetch_next(const struct zchan *z)
{
	__builtin_prefetch(&z->descs[z->c_read & z->mask], 0, 3);
}

/*
 * The tail moved: ask for the payload line right after the last message's,
 * where the producer's next allocation usually is, while we read the
 * descriptor.  Not while we wait: the producer is still writing that line,
 * and a line we keep taking back meanwhile costs it more than it saves us.
 */
static inline void cons_prefetch_payload(const struct zchan *z)
{
	if (z->c_next_off < z->pool_size)
		__builtin_prefetch(z->pool + z->c_next_off, 0, 3);
}

/*
 * Look at the next message without taking it: 1 and a validated copy of
 * its descriptor in @d, 0 if the ring is empty, -EPROTO on garbage.
 * Dropped loans (SKIP) are consumed and released on the way.
 *
 * tail is loaded only when what the last load showed is used up: while
 * messages are queued the producer's tail line stays in its cache, and its
 * next tail store needs no transfer.
 */
static int cons_peek(struct zchan *z, struct zchan_desc *d)
{
	for (;;) {
		struct zchan_desc *sd;
		struct zchan_slot *s;

		if (!z->c_ready) {
			uint32_t tail = unlikely(z->peer_dead) ?
					cons_last_tail(z) : load_acquire(z->tail);
			uint32_t avail = tail - z->c_head;

			if (avail > z->entries || avail < z->c_read - z->c_head)
				return fail_sticky(z, -EPROTO);
			z->c_ready = tail - z->c_read;
			if (!z->c_ready) {
				cons_prefetch_next(z);
				return 0;
			}
			cons_prefetch_payload(z);
		}
		sd = &z->descs[z->c_read & z->mask];
		d->off = load_once(&sd->off);
		d->len = load_once(&sd->len);
		d->flags = load_once(&sd->flags);
		if (unlikely(d->flags & ZCHAN_DESC_PAGES))
			return __zchan_pages_desc_ok(z, d) ? 1 :
						fail_sticky(z, -EPROTO);
		if (d->flags & ~ZCHAN_DESC_SKIP)
			return fail_sticky(z, -EPROTO);
		if (!(d->flags & ZCHAN_DESC_SKIP)) {
			if (d->len > z->max_msg || d->off > z->pool_size ||
			    d->len > z->pool_size - d->off)
				return fail_sticky(z, -EPROTO);
			return 1;
		}
		/* a dropped loan: take and release it silently */
		s = &z->slots[z->c_read & z->mask];
		s->state = SLOT_BORROWED;
		s->off = 0;
		s->len = 0;
		z->c_read++;
		z->c_ready--;
		cons_store_read(z);
		cons_release_slot(z, z->c_read - 1);
	}
}

/* Take the message cons_peek() showed; the caller stores read. */
static uint32_t cons_take(struct zchan *z, const struct zchan_desc *d)
{
	uint32_t idx = z->c_read;
	struct zchan_slot *s = &z->slots[idx & z->mask];

	s->off = d->off;
	s->len = d->len;
	s->pages = !!(d->flags & ZCHAN_DESC_PAGES);
	s->state = SLOT_BORROWED;
	z->c_read = idx + 1;
	z->c_ready--;
	z->c_next_off = d->off + pool_span(d->len);	/* see cons_prefetch_payload() */
	z->st.messages++;
	z->st.bytes += d->len;
	return idx;
}

/*
 * Nothing to take: a producer asleep for room must hear of what we gave
 * back since it last heard from us, or both ends would wait.
 */
static void cons_flush_release(struct zchan *z)
{
	if (z->c_freed)
		cons_notify_producer(z);
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
		cons_flush_release(z);
		if (__zchan_peer_gone(z, false)) {
			/* closed is set after the last tail: look again */
			ret = cons_peek(z, d);
			return ret ? (ret < 0 ? ret : 0) : -EPIPE;
		}
		if (flags & ZCHAN_NONBLOCK) {
			__zchan_arm(z);
			ret = cons_peek(z, d);
			if (ret)
				return ret < 0 ? ret : 0;
			if (__zchan_peer_gone(z, true)) {
				ret = cons_peek(z, d);
				return ret ? (ret < 0 ? ret : 0) : -EPIPE;
			}
			return -EAGAIN;
		}
		ret = wait_ready(z, 0, -1);
		if (ret < 0)
			return ret;
	}
}

/*
 * 0 for a consumer end this process holds, 1 for a fan-in consumer's
 * group handle (fanin.c: the 1:1 path pays no test for it), else -errno.
 */
static int check_consumer(struct zchan *z, unsigned int flags)
{
	if (!z || (flags & ~ZCHAN_NONBLOCK))
		return -EINVAL;
	if (unlikely(z->role != ZCHAN_CONSUMER))
		return z->role == ZCHAN_FANIN ? 1 : -EINVAL;
	return __zchan_hold(z);
}

ZCHAN_EXPORT
ssize_t zchan_recv(struct zchan *c, void *buf, size_t cap, unsigned int flags)
{
	struct zchan_desc d;
	uint32_t idx;
	int ret;

	ret = check_consumer(c, flags);
	if (unlikely(ret))
		return ret > 0 ? __zchan_fanin_recv(c, buf, cap, flags) : ret;
	if (!buf && cap)
		return -EINVAL;
	ret = cons_get(c, flags, &d);
	if (ret)
		return ret;
	if (d.len > cap)
		return -EMSGSIZE;	/* not taken: it stays for the next call */
	if (unlikely(d.flags & ZCHAN_DESC_PAGES)) {
		ret = __zchan_pages_copy(c, &d, buf);
		if (ret)
			return ret;
	} else if (d.len) {
		memcpy(buf, c->pool + d.off, d.len);
	}
	idx = cons_take(c, &d);
	cons_store_read(c);
	cons_release_slot(c, idx);
	return d.len;
}

ZCHAN_EXPORT
ssize_t zchan_recv_zc(struct zchan *c, const void **buf, unsigned int flags)
{
	struct zchan_desc d;
	int ret;

	ret = check_consumer(c, flags);
	if (unlikely(ret))
		return ret > 0 ? __zchan_fanin_recv_zc(c, buf, flags) : ret;
	if (!buf)
		return -EINVAL;
	ret = cons_get(c, flags, &d);
	if (!ret && unlikely(d.flags & ZCHAN_DESC_PAGES))
		ret = __zchan_pages_map(c, &d);
	if (ret)
		return ret;
	cons_take(c, &d);
	cons_store_read(c);
	*buf = __zchan_payload(c, d.off);
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
	if (unlikely(ret))
		return ret > 0 ? __zchan_fanin_recv_batch(c, msgs, nr, flags) :
				 ret;
	if (!msgs || !nr || nr > INT32_MAX)
		return -EINVAL;
	ret = cons_get(c, flags, &d);
	if (ret)
		return ret;
	for (n = 0;;) {
		if (unlikely(d.flags & ZCHAN_DESC_PAGES) &&
		    (ret = __zchan_pages_map(c, &d)))
			break;	/* not taken: it stays for the next call */
		cons_take(c, &d);
		msgs[n].buf = __zchan_payload(c, d.off);
		msgs[n].len = d.len;
		if (++n == nr || cons_peek(c, &d) <= 0)
			break;	/* an error stays sticky for the next call */
	}
	if (!n)
		return ret;
	cons_store_read(c);
	return (int)n;
}

/*
 * The borrowed slot holding @buf, searched from @from on and then from
 * c_head (no division: this runs for every zchan_release()): 0 or -EINVAL.
 */
static int cons_find_borrowed(const struct zchan *c, const void *buf,
			      uint32_t from, uint32_t *idx)
{
	uint64_t off;
	uint32_t i, j, n = c->c_read - c->c_head;

	/* modulo 2^64: a SEND_PAGES mapping may lie below the pool */
	off = (uintptr_t)buf - (uintptr_t)c->pool;
	if ((uint32_t)(from - c->c_head) >= n)
		from = c->c_head;
	for (i = 0, j = from; i < n; i++, j++) {
		const struct zchan_slot *s;

		if (j == c->c_read)
			j = c->c_head;
		s = &c->slots[j & c->mask];

		if (s->state == SLOT_BORROWED && s->off == off) {
			*idx = j;
			return 0;
		}
	}
	return -EINVAL;
}

ZCHAN_EXPORT
int zchan_release(struct zchan *c, const void *buf)
{
	uint32_t idx;
	int ret;

	ret = check_consumer(c, 0);
	if (unlikely(ret))
		return ret > 0 ? __zchan_fanin_release(c, buf) : ret;
	ret = cons_find_borrowed(c, buf, c->c_head, &idx);
	if (ret)
		return ret;
	cons_release_slot(c, idx);
	return 0;
}

/*
 * zchan_release_batch() in two halves, which a fan-in consumer uses across
 * its lanes: mark the borrowed message at @buf, looking from *@last + 1
 * on (0, or -EINVAL: not borrowed, or named twice), then release all that
 * were marked or (!@release) unmark them.
 */
int __zchan_release_mark(struct zchan *c, const void *buf, uint32_t *last)
{
	int ret = cons_find_borrowed(c, buf, *last + 1, last);

	if (!ret)
		c->slots[*last & c->mask].state = SLOT_RELEASING;
	return ret;
}

void __zchan_release_settle(struct zchan *c, bool release)
{
	uint32_t idx;

	for (idx = c->c_head; idx != c->c_read; idx++) {
		struct zchan_slot *s = &c->slots[idx & c->mask];

		if (s->state != SLOT_RELEASING)
			continue;
		if (release && unlikely(s->pages))
			__zchan_pages_unmap_slot(c, s);
		s->state = release ? SLOT_RELEASED : SLOT_BORROWED;
	}
	if (release)
		cons_advance_head(c);
}

ZCHAN_EXPORT
int zchan_release_batch(struct zchan *c, const struct zchan_msg *msgs,
			unsigned int nr)
{
	uint32_t idx;
	unsigned int n;
	int ret;

	ret = check_consumer(c, 0);
	if (ret < 0)
		return -EINVAL;
	if (!msgs || !nr || nr > INT32_MAX)
		return -EINVAL;
	if (unlikely(ret))
		return __zchan_fanin_release_batch(c, msgs, nr);
	/*
	 * All or nothing: mark each one (a buffer named twice is not found
	 * the second time), then release them all or undo the marks.
	 */
	idx = c->c_head - 1;
	for (n = 0; n < nr; n++) {
		ret = __zchan_release_mark(c, msgs[n].buf, &idx);
		if (ret)
			break;
	}
	__zchan_release_settle(c, !ret);
	return ret ? ret : (int)nr;
}

/* ------------------------------------------------------------------ */
/* Readiness                                                           */

/*
 * What this end could do now, as a poll mask: consumer POLLIN (a message),
 * producer POLLOUT (room for @need bytes), POLLHUP (plus POLLERR for the
 * producer) once the peer is gone.  @slow allows syscalls (memfd liveness).
 */
int __zchan_ready_mask(struct zchan *z, uint32_t need, bool slow)
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
		if (__zchan_peer_gone(z, slow && !ret)) {
			/* closed is stored after the last tail: look again */
			ret = cons_peek(z, &d);
			if (ret < 0)
				return ret;
			mask = POLLHUP | (ret ? POLLIN : 0);
		}
		return mask;
	}
	if (__zchan_peer_gone(z, slow))
		return POLLERR | POLLHUP;
	ret = prod_room(z, need);
	if (ret < 0)
		return ret;
	return ret ? POLLOUT : 0;
}

/*
 * A producer about to wait for room publishes what ZCHAN_MORE queued
 * first, as prod_get() does: the consumer could otherwise wait for those
 * messages while we wait for it.
 */
static void prod_publish_before_wait(struct zchan *z)
{
	if (z->role == ZCHAN_PRODUCER && z->p_more && !z->err)
		prod_publish(z);
}

ZCHAN_EXPORT
int zchan_poll(struct zchan *ch)
{
	int ret;

	if (!ch)
		return -EINVAL;
	if (unlikely(ch->role == ZCHAN_FANIN))
		return __zchan_fanin_poll(ch);
	ret = __zchan_hold(ch);
	if (ret)
		return ret;
	ret = __zchan_ready_mask(ch, ch->max_msg, true);
	if (!ret)
		prod_publish_before_wait(ch);	/* the caller will wait */
	return ret;
}

ZCHAN_EXPORT
int zchan_wait(struct zchan *ch, int64_t timeout_ns)
{
	int ret;

	if (!ch)
		return -EINVAL;
	if (unlikely(ch->role == ZCHAN_FANIN))
		return __zchan_fanin_wait(ch, timeout_ns < 0 ? -1 : timeout_ns);
	ret = __zchan_hold(ch);
	if (ret)
		return ret;
	prod_publish_before_wait(ch);
	return wait_ready(ch, ch->max_msg, timeout_ns < 0 ? -1 : timeout_ns);
}

ZCHAN_EXPORT
void zchan_prep_wait(struct io_uring_sqe *sqe, struct zchan *ch)
{
	unsigned int events;
	int fd = -1;

	if (!sqe)
		return;
	if (!ch) {
		/* completes with -EBADF: errors come back in the cqe */
		io_uring_prep_poll_add(sqe, -1, POLLIN);
		return;
	}
	fd = ch->fd;
	if (unlikely(ch->role == ZCHAN_FANIN)) {
		events = POLLIN;
		fd = __zchan_fanin_prep_wait(ch, &events);
		io_uring_prep_poll_add(sqe, fd, events);
		return;
	}
	if (__zchan_hold(ch))
		fd = -1;	/* the cqe says -EBADF: the end is not ours */
	else
		prod_publish_before_wait(ch);
	events = __zchan_poll_events(ch, __zchan_ready_mask, ch->max_msg);
	io_uring_prep_poll_add(sqe, fd, events);
}
