// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan methods, through <zchan.h> only:
 *
 *   zchan             kernel backend (/dev/zchan), loan/commit + recv_zc
 *   zchan-copy        kernel backend, zchan_send/zchan_recv (copies)
 *   zchan-memfd       memfd backend, loan/commit + recv_zc
 *   zchan-memfd-copy  memfd backend, zchan_send/zchan_recv
 *   zchan-pages       kernel backend, zchan_send_pages of the producer's
 *                     own page-aligned buffers + recv_zc (issue 14)
 *
 * The producer child creates the channel and passes the consumer end to
 * the consumer child over a unix socketpair (zchan_send_peer), which is
 * how two unrelated processes would do it too.  Pool: the library's
 * default, or a power of two with room for bench_inflight() messages (as
 * cma's ring and iceoryx's queue), so that the producer never waits in
 * lockstep with the consumer.  In stream mode the producer publishes in batches
 * of ZC_STREAM_BATCH messages (ZCHAN_MORE; the library also publishes at
 * a quarter of the ring or pool, and before it waits).  Spin mode (pingpong-busy) sets ZCHAN_BUSY_POLL, the
 * library's documented way to never sleep; retrying ZCHAN_NONBLOCK calls
 * instead would arm a wakeup on every miss (that path is for event loops)
 * and measure notification syscalls no spinning user would make.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <zchan.h>

#include "bench.h"

/* stream mode: messages per publication (one tail store, one fence) */
#define ZC_STREAM_BATCH	32
#define ZC_STR_(x)	#x
#define ZC_STR(x)	ZC_STR_(x)
#define ZC_BATCHES	"; stream: batches of " ZC_STR(ZC_STREAM_BATCH)
/*
 * zchan-pages: the producer's buffers, as many as fit ZP_BUFS_BYTES (at
 * least two, so one is filled while the other is read): pinned memory is
 * limited per user (the module's max_user_pinned_bytes, 1/8 of RAM).
 */
#define ZP_BUFS_MAX	8
#define ZP_BUFS_BYTES	((size_t)128 << 20)

struct zc_priv {
	struct zchan *z;
	/*
	 * many-ended channels (zchan-many): before the open, the
	 * socketpairs that carry an end to each process but the creator
	 */
	int (*socks)[2];
	unsigned int nsocks;
	unsigned int queued;	/* committed with ZCHAN_MORE, not published */
	void *copy_buf;		/* copy variants: the private message buffer */
	size_t copy_len;
	/* zchan-pages sender: nbufs buffers of msg_size bytes from bufs */
	unsigned char *bufs;
	unsigned int nbufs, next;
	unsigned char busy[ZP_BUFS_MAX];	/* sent, cookie not yet reaped */
};

struct zc_kind {
	unsigned int backend;
	bool copy;
};

static const struct zc_kind *kind_of(const struct chan *c);

static int zc_fail(struct chan *c, const char *what, long err)
{
	chan_error(c, "%s: %s", what, zchan_strerror((int)-err));
	return -1;
}

static void zc_attr(const struct chan *c, struct zchan_attr *attr,
		    unsigned int backend, bool roomy)
{
	size_t pool = ZCHAN_DEFAULT_POOL_SIZE;
	size_t span = (c->msg_size + 63) / 64 * 64;	/* pool allocations */

	zchan_attr_init(attr);
	attr->backend = backend;
	while (pool < 2 * span ||
	       (roomy && pool < bench_inflight(c->msg_size) * span))
		pool *= 2;
	attr->pool_size = pool;
	attr->max_msg = c->msg_size > pool / 4 ? c->msg_size : 0;
}

/* A channel of @backend in *z, or -1 with the reason in @why. */
static int zc_probe_create(unsigned int backend, struct zchan **z, char *why,
			   size_t len)
{
	struct zchan_attr attr;
	int ret;

	zchan_attr_init(&attr);
	attr.backend = backend;
	ret = zchan_create(NULL, &attr, z);
	if (ret < 0) {
		if (backend == ZCHAN_BACKEND_KERNEL && access("/dev/zchan", F_OK))
			snprintf(why, len, "no /dev/zchan (zchan.ko not loaded)");
		else
			snprintf(why, len, "zchan_create: %s", zchan_strerror(-ret));
		return -1;
	}
	return 0;
}

static int zc_probe_backend(unsigned int backend, char *why, size_t len)
{
	struct zchan *z;

	if (zc_probe_create(backend, &z, why, len))
		return -1;
	zchan_close(z);
	return 0;
}

static int zc_probe_kernel(char *why, size_t len)
{
	return zc_probe_backend(ZCHAN_BACKEND_KERNEL, why, len);
}

static int zc_probe_memfd(char *why, size_t len)
{
	return zc_probe_backend(ZCHAN_BACKEND_MEMFD, why, len);
}

/* Parent: only the socketpair the consumer end will travel over. */
static int zc_create(struct chan *c)
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->fd)) {
		chan_error(c, "socketpair: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int zc_open(struct chan *c, bool sender)
{
	const struct zc_kind *k = kind_of(c);
	struct zchan_attr attr;
	struct zc_priv *p;
	int ret;

	c->sender = sender;
	p = calloc(1, sizeof(*p));
	if (!p) {
		chan_error(c, "out of memory");
		return -1;
	}
	c->priv = p;
	if (sender) {
		zc_attr(c, &attr, k->backend, true);
		ret = zchan_create(NULL, &attr, &p->z);
		if (ret == -ENOMEM || ret == -EINVAL) {
			/* above the module's pool limit: two messages */
			zc_attr(c, &attr, k->backend, false);
			ret = zchan_create(NULL, &attr, &p->z);
		}
		if (ret < 0)
			return zc_fail(c, "zchan_create", ret);
		ret = zchan_send_peer(p->z, c->fd[0]);
		if (ret < 0)
			return zc_fail(c, "zchan_send_peer", ret);
	} else {
		ret = zchan_recv_peer(c->fd[1], &p->z);
		if (ret < 0)
			return zc_fail(c, "zchan_recv_peer", ret);
	}
	close(c->fd[0]);
	close(c->fd[1]);
	c->fd[0] = c->fd[1] = -1;
	if (c->spin) {
		ret = zchan_set_flags(p->z, ZCHAN_BUSY_POLL);
		if (ret < 0)
			return zc_fail(c, "zchan_set_flags(ZCHAN_BUSY_POLL)", ret);
	}
	if (k->copy) {
		p->copy_len = (c->msg_size + 4095) / 4096 * 4096;
		p->copy_buf = mmap(NULL, p->copy_len, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p->copy_buf == MAP_FAILED) {
			p->copy_buf = NULL;
			chan_error(c, "mmap: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void *zc_loan(struct chan *c)
{
	struct zc_priv *p = c->priv;
	void *buf;
	int ret;

	if (kind_of(c)->copy)
		return p->copy_buf;
	ret = zchan_loan(p->z, c->msg_size, &buf, 0);
	if (ret < 0) {
		zc_fail(c, "zchan_loan", ret);
		return NULL;
	}
	return buf;
}

/* ZCHAN_MORE while a stream's batch is not full and another message follows */
static unsigned int zc_more(struct chan *c)
{
	struct zc_priv *p = c->priv;

	if (c->more && ++p->queued < ZC_STREAM_BATCH)
		return ZCHAN_MORE;
	p->queued = 0;
	return 0;
}

static int zc_send(struct chan *c, void *buf)
{
	struct zc_priv *p = c->priv;
	unsigned int flags = zc_more(c);
	ssize_t ret;

	if (!kind_of(c)->copy) {
		ret = zchan_commit_flags(p->z, buf, c->msg_size, flags);
		return ret < 0 ? zc_fail(c, "zchan_commit", ret) : 0;
	}
	ret = zchan_send(p->z, buf, c->msg_size, flags);
	if (ret < 0)
		return zc_fail(c, "zchan_send", ret);
	if ((size_t)ret != c->msg_size) {
		chan_error(c, "zchan_send: sent %zd of %zu bytes", ret, c->msg_size);
		return -1;
	}
	return 0;
}

/* The next message in *msg: 1, 0 if ZCHAN_NONBLOCK found none, or -1. */
static int zc_take(struct chan *c, unsigned int flags, const void **msg)
{
	struct zc_priv *p = c->priv;
	const void *buf;
	ssize_t ret;

	if (kind_of(c)->copy) {
		ret = zchan_recv(p->z, p->copy_buf, p->copy_len, flags);
		buf = p->copy_buf;
	} else {
		ret = zchan_recv_zc(p->z, &buf, flags);
	}
	if (ret == -EAGAIN && (flags & ZCHAN_NONBLOCK))
		return 0;
	if (ret < 0)
		return zc_fail(c, kind_of(c)->copy ? "zchan_recv" : "zchan_recv_zc", ret);
	if ((size_t)ret != c->msg_size) {
		chan_error(c, "received a %zd-byte message, expected %zu",
			   ret, c->msg_size);
		if (!kind_of(c)->copy)
			zchan_release(p->z, buf);
		return -1;
	}
	*msg = buf;
	return 1;
}

static const void *zc_recv(struct chan *c)
{
	const void *buf;

	return zc_take(c, 0, &buf) == 1 ? buf : NULL;
}

/* fan-in over N 1:1 channels: as an event loop takes from each */
static int zc_recv_try(struct chan *c, const void **msg)
{
	return zc_take(c, ZCHAN_NONBLOCK, msg);
}

static int zc_wait_fd(struct chan *c)
{
	return zchan_fd(((struct zc_priv *)c->priv)->z);
}

static void zc_release(struct chan *c, const void *buf)
{
	struct zc_priv *p = c->priv;

	if (!kind_of(c)->copy)
		zchan_release(p->z, buf);
}

static void zc_close_socks(struct zc_priv *p)
{
	unsigned int i;

	for (i = 0; i < p->nsocks; i++) {
		close(p->socks[i][0]);
		close(p->socks[i][1]);
	}
	free(p->socks);
	p->socks = NULL;
	p->nsocks = 0;
}

static void zc_destroy(struct chan *c)
{
	struct zc_priv *p = c->priv;

	if (c->fd[0] >= 0)
		close(c->fd[0]);
	if (c->fd[1] >= 0)
		close(c->fd[1]);
	c->fd[0] = c->fd[1] = -1;
	if (!p)
		return;
	zc_close_socks(p);
	if (p->z)
		zchan_close(p->z);
	if (p->copy_buf)
		munmap(p->copy_buf, p->copy_len);
	free(p);
	c->priv = NULL;
}

/* The library's own count: kicks, sleeps, drains, liveness checks. */
static int64_t zc_lib_syscalls(struct chan *c)
{
	struct zc_priv *p = c->priv;
	struct zchan_stats st;

	if (!p || !p->z || zchan_stats(p->z, &st) < 0)
		return -1;
	return (int64_t)st.syscalls;
}

/* what every zchan method but zchan-pages does the same */
#define ZC_COMMON(nm, dsc, zc, probefn)			\
	.name = nm,					\
	.desc = dsc,					\
	.zero_copy = zc,				\
	.probe = probefn,				\
	.loan = zc_loan,				\
	.send = zc_send,				\
	.recv = zc_recv,				\
	.release = zc_release,				\
	.destroy = zc_destroy,				\
	.lib_syscalls = zc_lib_syscalls

#define ZC_METHOD(var, nm, dsc, zc, probefn)		\
const struct method var = {				\
	ZC_COMMON(nm, dsc, zc, probefn),		\
	.create = zc_create,				\
	.open = zc_open,				\
	.fan_in = FAN_LANES,				\
	.fan_out = FAN_LANES,				\
	.recv_try = zc_recv_try,			\
	.wait_fd = zc_wait_fd,				\
}

ZC_METHOD(method_zchan, "zchan",
	  "zchan kernel backend (/dev/zchan), zero-copy loan/commit + recv_zc"
	  ZC_BATCHES " (ZCHAN_MORE)",
	  true, zc_probe_kernel);
ZC_METHOD(method_zchan_copy, "zchan-copy",
	  "zchan kernel backend, copying zchan_send/zchan_recv"
	  ZC_BATCHES,
	  false, zc_probe_kernel);
ZC_METHOD(method_zchan_memfd, "zchan-memfd",
	  "zchan memfd backend (no module), zero-copy loan/commit + recv_zc"
	  ZC_BATCHES " (ZCHAN_MORE)",
	  true, zc_probe_memfd);
ZC_METHOD(method_zchan_memfd_copy, "zchan-memfd-copy",
	  "zchan memfd backend, copying zchan_send/zchan_recv"
	  ZC_BATCHES,
	  false, zc_probe_memfd);

/*
 * zchan-pages: the producer sends buffers of its own with
 * zchan_send_pages(), nothing copied; the consumer is zchan's as above.
 * A buffer is filled again only once zchan_reap() has returned its
 * cookie (its address); when no completion is ready the producer sleeps
 * in poll() for POLLPRI on zchan_fd().
 */
static int zp_probe(char *why, size_t len)
{
	struct zchan *z;
	int ret;

	if (zc_probe_create(ZCHAN_BACKEND_AUTO, &z, why, len))
		return -1;
	/* reaping nothing: 0 where zchan_send_pages() works */
	ret = zchan_reap(z, NULL, 0, 0);
	if (ret && zchan_backend(z) == ZCHAN_BACKEND_MEMFD)
		snprintf(why, len, "zchan_send_pages needs the kernel backend, "
			 "the memfd backend has no pages to hand over (%s)",
			 access("/dev/zchan", F_OK) ? "no /dev/zchan" :
			 "ZCHAN_BACKEND=memfd");
	else if (ret)
		snprintf(why, len, "zchan.ko without ZCHAN_FEAT_SEND_PAGES "
			 "(zchan_reap: %s)", zchan_strerror(-ret));
	zchan_close(z);
	return ret ? -1 : 0;
}

static const char *zp_declines(size_t size)
{
	long page = sysconf(_SC_PAGESIZE);

	if (size % (size_t)page)
		return "zchan_send_pages takes whole pages: size not a multiple "
		       "of the page size";
	return NULL;
}

static int zp_open(struct chan *c, bool sender)
{
	struct zc_priv *p;
	size_t n;

	if (zc_open(c, sender))
		return -1;
	if (!sender)
		return 0;
	p = c->priv;
	n = ZP_BUFS_BYTES / c->msg_size;
	p->nbufs = n < 2 ? 2 : n > ZP_BUFS_MAX ? ZP_BUFS_MAX : (unsigned int)n;
	p->bufs = mmap(NULL, p->nbufs * c->msg_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->bufs == MAP_FAILED) {
		p->bufs = NULL;
		chan_error(c, "mmap: %s", strerror(errno));
		return -1;
	}
	/* pin real pages, not the zero page, as a producer's data would be */
	memset(p->bufs, 0, p->nbufs * c->msg_size);
	return 0;
}

/*
 * Take back the buffers whose cookies are ready; with @wait, sleep until
 * at least one is.  0 or -1 with the reason in c->err.
 */
static int zp_reap(struct chan *c, bool wait)
{
	struct zc_priv *p = c->priv;
	uint64_t cookies[ZP_BUFS_MAX];
	struct pollfd pfd;
	int n, i;

	for (;;) {
		SYSCOUNT(c);
		n = zchan_reap(p->z, cookies, ZP_BUFS_MAX, 0);
		if (n < 0)
			return zc_fail(c, "zchan_reap", n);
		for (i = 0; i < n; i++) {
			uint64_t k = (cookies[i] - (uintptr_t)p->bufs) / c->msg_size;

			if (cookies[i] < (uintptr_t)p->bufs || k >= p->nbufs ||
			    !p->busy[k]) {
				chan_error(c, "zchan_reap: unexpected cookie %#llx",
					   (unsigned long long)cookies[i]);
				return -1;
			}
			p->busy[k] = 0;
		}
		if (n || !wait)
			return 0;
		pfd.fd = zchan_fd(p->z);
		pfd.events = POLLPRI;
		SYSCOUNT(c);
		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR) {
			chan_error(c, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

static void *zp_loan(struct chan *c)
{
	struct zc_priv *p = c->priv;

	while (p->busy[p->next])
		if (zp_reap(c, true))
			return NULL;
	return p->bufs + (size_t)p->next * c->msg_size;
}

static int zp_send(struct chan *c, void *buf)
{
	struct zc_priv *p = c->priv;
	unsigned int k = p->next;
	int ret;

	for (;;) {
		SYSCOUNT(c);
		ret = zchan_send_pages(p->z, buf, c->msg_size, (uintptr_t)buf, 0);
		if (ret != -ENOBUFS)
			break;
		/* the user's pinned limit: wait for a buffer to come back */
		if (zp_reap(c, true))
			return -1;
	}
	if (ret < 0)
		return zc_fail(c, "zchan_send_pages", ret);
	p->busy[k] = 1;
	p->next = (k + 1) % p->nbufs;
	return 0;
}

/* every buffer back: the consumer has released every message */
static int zp_flush(struct chan *c)
{
	struct zc_priv *p = c->priv;
	unsigned int k;

	for (k = 0; k < p->nbufs; k++)
		while (p->busy[k])
			if (zp_reap(c, true))
				return -1;
	return 0;
}

static void zp_destroy(struct chan *c)
{
	struct zc_priv *p = c->priv;

	if (p && p->bufs) {
		munmap(p->bufs, p->nbufs * c->msg_size);
		p->bufs = NULL;
	}
	zc_destroy(c);
}

const struct method method_zchan_pages = {
	.name = "zchan-pages",
	.desc = "zchan kernel backend, zchan_send_pages of the producer's own "
		"page-aligned buffers (reaped before reuse) + recv_zc",
	.zero_copy = true,
	.probe = zp_probe,
	.create = zc_create,
	.open = zp_open,
	.loan = zp_loan,
	.send = zp_send,
	.recv = zc_recv,
	.release = zc_release,
	.flush = zp_flush,
	.destroy = zp_destroy,
	.lib_syscalls = zc_lib_syscalls,
	.declines = zp_declines,
};

/*
 * zchan-many, zchan-memfd-many: one many-ended channel for a fan mode -
 * fan-in, max_producers = N; fan-out, max_consumers = N and
 * ZCHAN_BROADCAST.  The parent makes a socketpair for each end but the
 * creator (fan-in: producer 0; fan-out: the producer), which creates the
 * channel and hands each its end with zchan_send_end(): fan-in the
 * consumer's first (its lanes' announcements need it), then the other
 * producers'.
 */
static const char *zm_fan_declines(const struct method *m,
				   enum bench_mode mode, unsigned int ends)
{
	static char why[200];
	struct chan c = { .m = m };
	struct zchan_attr attr;
	struct zchan *z;
	int ret;


	zchan_attr_init(&attr);
	attr.backend = kind_of(&c)->backend;
	if (mode == MODE_FANOUT) {
		attr.max_consumers = ends;
		attr.flags |= ZCHAN_BROADCAST;
	} else {
		attr.max_producers = ends;
	}
	ret = zchan_create(NULL, &attr, &z);
	if (ret >= 0) {
		zchan_close(z);
		return NULL;
	}
	if (attr.backend == ZCHAN_BACKEND_KERNEL && access("/dev/zchan", F_OK))
		snprintf(why, sizeof(why), "no /dev/zchan (zchan.ko not loaded)");
	else
		snprintf(why, sizeof(why), "zchan_create(%s = %u): %s",
			 mode == MODE_FANOUT ? "ZCHAN_BROADCAST, max_consumers" :
			 "max_producers", ends, ret == -EOPNOTSUPP ?
			 "-EOPNOTSUPP, not built for this backend yet" :
			 zchan_strerror(-ret));
	return why;
}

static int zm_create(struct chan *c)
{
	struct zc_priv *p = calloc(1, sizeof(*p));
	unsigned int i;

	if (!p || !c->fan_ends) {
		free(p);
		chan_error(c, p ? "a many-ended channel: fan modes only" :
			   "out of memory");
		return -1;
	}
	c->priv = p;
	p->socks = calloc(c->fan_ends, sizeof(*p->socks));
	if (!p->socks) {
		chan_error(c, "out of memory");
		return -1;
	}
	for (i = 0; i < c->fan_ends; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
			       p->socks[i])) {
			chan_error(c, "socketpair: %s", strerror(errno));
			return -1;
		}
		p->nsocks = i + 1;
	}
	return 0;
}

static int zm_open(struct chan *c, bool sender)
{
	struct zc_priv *p = c->priv;
	struct zchan_attr attr;
	unsigned int i;
	int ret;

	c->sender = sender;
	if (sender && c->fan_end == 0) {
		zc_attr(c, &attr, kind_of(c)->backend, true);
		if (c->fan_out) {
			attr.max_consumers = c->fan_ends;
			attr.flags |= ZCHAN_BROADCAST;
		} else {
			attr.max_producers = c->fan_ends;
		}
		ret = zchan_create(NULL, &attr, &p->z);
		if (ret < 0)
			return zc_fail(c, "zchan_create", ret);
		/* fan-in: socket 0 is the consumer's, the others producers' */
		for (i = 0; i < p->nsocks; i++) {
			unsigned int role = !c->fan_out && i ?
				ZCHAN_ROLE_PRODUCER : ZCHAN_ROLE_CONSUMER;

			ret = zchan_send_end(p->z, role, p->socks[i][0]);
			if (ret < 0)
				return zc_fail(c, "zchan_send_end", ret);
		}
	} else {
		ret = zchan_recv_peer(p->socks[c->fan_end][1], &p->z);
		if (ret < 0)
			return zc_fail(c, "zchan_recv_peer", ret);
	}
	zc_close_socks(p);
	return 0;
}

#define ZM_METHOD(var, nm, dsc, probefn)		\
const struct method var = {				\
	ZC_COMMON(nm, dsc, true, probefn),		\
	.create = zm_create,				\
	.open = zm_open,				\
	.fan_in = FAN_SHARED,				\
	.fan_out = FAN_SHARED,				\
	.fan_declines = zm_fan_declines,		\
	.fan_only = true,				\
}

ZM_METHOD(method_zchan_many, "zchan-many",
	  "zchan kernel backend, one many-ended channel of max_producers or "
	  "max_consumers = N, zero-copy (fan modes only)", zc_probe_kernel);
ZM_METHOD(method_zchan_memfd_many, "zchan-memfd-many",
	  "zchan memfd backend, one many-ended channel of max_producers or "
	  "max_consumers = N, zero-copy (fan modes only)", zc_probe_memfd);

static const struct zc_kind *kind_of(const struct chan *c)
{
	static const struct zc_kind kinds[] = {
		{ ZCHAN_BACKEND_KERNEL, false },
		{ ZCHAN_BACKEND_KERNEL, true },
		{ ZCHAN_BACKEND_MEMFD, false },
		{ ZCHAN_BACKEND_MEMFD, true },
		/* pages: $ZCHAN_BACKEND or the module, so memfd can decline it */
		{ ZCHAN_BACKEND_AUTO, false },
	};

	if (c->m == &method_zchan_many)
		return &kinds[0];
	if (c->m == &method_zchan_memfd_many)
		return &kinds[2];
	if (c->m == &method_zchan)
		return &kinds[0];
	if (c->m == &method_zchan_copy)
		return &kinds[1];
	if (c->m == &method_zchan_memfd)
		return &kinds[2];
	if (c->m == &method_zchan_pages)
		return &kinds[4];
	return &kinds[3];
}
