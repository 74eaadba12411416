// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan methods, through <zchan.h> only:
 *
 *   zchan             kernel backend (/dev/zchan), loan/commit + recv_zc
 *   zchan-copy        kernel backend, zchan_send/zchan_recv (copies)
 *   zchan-memfd       memfd backend, loan/commit + recv_zc
 *   zchan-memfd-copy  memfd backend, zchan_send/zchan_recv
 *
 * The producer child creates the channel and passes the consumer end to
 * the consumer child over a unix socketpair (zchan_send_peer), which is
 * how two unrelated processes would do it too.  Pool: room for
 * ZC_POOL_MSGS messages (at least the library's default, at most
 * ZC_POOL_MAX, at least two messages), so that a stream keeps many
 * messages in flight.  In stream mode the producer publishes in batches
 * of ZC_STREAM_BATCH messages (ZCHAN_MORE; the library also publishes at
 * a quarter of the ring or pool, and before it waits).  Spin mode (pingpong-busy) sets ZCHAN_BUSY_POLL, the
 * library's documented way to never sleep; retrying ZCHAN_NONBLOCK calls
 * instead would arm a wakeup on every miss (that path is for event loops)
 * and measure notification syscalls no spinning user would make.
 */
#define _GNU_SOURCE
#include <errno.h>
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
/* pool: room for this many messages, within the bounds below */
#define ZC_POOL_MSGS	8
#define ZC_POOL_MAX	((size_t)8 << 20)	/* the warm-up cycles about this much */

struct zc_priv {
	struct zchan *z;
	unsigned int queued;	/* committed with ZCHAN_MORE, not published */
	void *copy_buf;		/* copy variants: the private message buffer */
	size_t copy_len;
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

	zchan_attr_init(attr);
	attr->backend = backend;
	while (pool < 2 * c->msg_size ||
	       (roomy && pool < ZC_POOL_MSGS * c->msg_size && pool < ZC_POOL_MAX))
		pool *= 2;
	attr->pool_size = pool;
	attr->max_msg = c->msg_size > pool / 4 ? c->msg_size : 0;
}

static int zc_probe_backend(unsigned int backend, char *why, size_t len)
{
	struct zchan_attr attr;
	struct zchan *z;
	int ret;

	zchan_attr_init(&attr);
	attr.backend = backend;
	ret = zchan_create(NULL, &attr, &z);
	if (ret < 0) {
		if (backend == ZCHAN_BACKEND_KERNEL && access("/dev/zchan", F_OK))
			snprintf(why, len, "no /dev/zchan (zchan.ko not loaded)");
		else
			snprintf(why, len, "zchan_create: %s", zchan_strerror(-ret));
		return -1;
	}
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

static const void *zc_recv(struct chan *c)
{
	struct zc_priv *p = c->priv;
	const void *buf;
	ssize_t ret;

	if (kind_of(c)->copy) {
		ret = zchan_recv(p->z, p->copy_buf, p->copy_len, 0);
		buf = p->copy_buf;
	} else {
		ret = zchan_recv_zc(p->z, &buf, 0);
	}
	if (ret < 0) {
		zc_fail(c, kind_of(c)->copy ? "zchan_recv" : "zchan_recv_zc", ret);
		return NULL;
	}
	if ((size_t)ret != c->msg_size) {
		chan_error(c, "received a %zd-byte message, expected %zu",
			   ret, c->msg_size);
		if (!kind_of(c)->copy)
			zchan_release(p->z, buf);
		return NULL;
	}
	return buf;
}

static void zc_release(struct chan *c, const void *buf)
{
	struct zc_priv *p = c->priv;

	if (!kind_of(c)->copy)
		zchan_release(p->z, buf);
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
	if (p->z)
		zchan_close(p->z);
	if (p->copy_buf)
		munmap(p->copy_buf, p->copy_len);
	free(p);
	c->priv = NULL;
}

/* Fallback accounting: every kick and every sleep is one syscall. */
static int64_t zc_lib_syscalls(struct chan *c)
{
	struct zc_priv *p = c->priv;
	struct zchan_stats st;

	if (!p || !p->z || zchan_stats(p->z, &st) < 0)
		return -1;
	return (int64_t)(st.kicks + st.waits);
}

#define ZC_METHOD(var, nm, dsc, zc, probefn)		\
const struct method var = {				\
	.name = nm,					\
	.desc = dsc,					\
	.zero_copy = zc,				\
	.probe = probefn,				\
	.create = zc_create,				\
	.open = zc_open,				\
	.loan = zc_loan,				\
	.send = zc_send,				\
	.recv = zc_recv,				\
	.release = zc_release,				\
	.destroy = zc_destroy,				\
	.lib_syscalls = zc_lib_syscalls,		\
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

static const struct zc_kind *kind_of(const struct chan *c)
{
	static const struct zc_kind kinds[] = {
		{ ZCHAN_BACKEND_KERNEL, false },
		{ ZCHAN_BACKEND_KERNEL, true },
		{ ZCHAN_BACKEND_MEMFD, false },
		{ ZCHAN_BACKEND_MEMFD, true },
	};

	if (c->m == &method_zchan)
		return &kinds[0];
	if (c->m == &method_zchan_copy)
		return &kinds[1];
	if (c->m == &method_zchan_memfd)
		return &kinds[2];
	return &kinds[3];
}
