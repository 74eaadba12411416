// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * A failed call never reports success, and a hostile producer never
 * crashes the consumer (Documentation/reliability.rst, "A hostile peer"):
 *
 *  - every error comes back the same whatever errno held before the call
 *    (0, EINVAL, EACCES), and errno is left as it was;
 *  - forged ZCHAN_DESC_PAGES descriptors and over-long lengths get
 *    -EPROTO from every receive call, in a forked consumer whose death by
 *    a signal is a failure;
 *  - zchan_wait() and zchan_prep_wait() of a producer publish what
 *    ZCHAN_MORE queued;
 *  - a loan committed by a forked child is delivered after a handover;
 *  - a mixed stream with borrows held never puts both ends to sleep.
 *
 * Both backends as fixture variants; the kernel variant skips where
 * /dev/zchan is missing, so it runs in the guests.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>
#include <zchan.h>

#include "kselftest_harness.h"
#include "../common/zchan_test_forge.h"
#include "../common/zchan_test_lib.h"
#include "../common/zchan_test_payload.h"
#include "../common/zchan_test_proc.h"
#include "../common/zchan_test_utils.h"

/* TCG guests are slow: give every test room. */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

FIXTURE(hostile) {
	struct zchan *p, *c;
	pid_t child;
	size_t ps;
};

ZC_BACKEND_VARIANTS(hostile);

FIXTURE_SETUP(hostile)
{
	self->p = self->c = NULL;
	self->child = 0;
	self->ps = (size_t)sysconf(_SC_PAGESIZE);
}

FIXTURE_TEARDOWN(hostile)
{
	if (self->child > 0)
		zc_child_kill(self->child);
	zchan_close(self->p);
	zchan_close(self->c);
}

/* The fixture's child, reaped: how it ended, as zc_child_wait() says. */
static int reap_child(FIXTURE_DATA(hostile) *self)
{
	int st = zc_child_wait(self->child, -1);

	self->child = 0;
	return st;
}

#define NEED_KERNEL()							\
	do {								\
		if (variant->backend != ZCHAN_BACKEND_KERNEL)		\
			SKIP(return, "the kernel backend only");	\
		ZC_NEED_BACKEND();					\
	} while (0)

/* ------------------------------------------------------------------ */
/* A failed call reports its own error, whatever errno held before     */

/* Argument and state errors of every call, on both backends. */
TEST_F(hostile, errors_ignore_errno)
{
	unsigned char buf[256] = { 0 };
	struct zchan_attr a, bad;
	struct zchan_msg m[2];
	struct zchan *z = NULL;
	const void *cp;
	uint64_t cookie;
	void *loan;
	int pfd[2];

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 8, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	ASSERT_EQ(0, pipe(pfd));

	/* setup */
	bad = a;
	bad.flags = 1U << 30;
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_create(NULL, &bad, &z));
	bad = a;
	bad.ring_entries = 3;
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_create(NULL, &bad, &z));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_create("", &a, &z));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_open(NULL, &z));
	if (variant->backend == ZCHAN_BACKEND_MEMFD)
		EXPECT_ERR_ANY_ERRNO(-EOPNOTSUPP, zchan_create("hostile", &a, &z));
	else
		EXPECT_ERR_ANY_ERRNO(-ENOENT, zchan_open("hostile-none", &z));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_send_peer(self->c, pfd[1]));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_send_peer(self->p, -1));
	ASSERT_EQ(0, zchan_create(NULL, &a, &z));
	EXPECT_ERR_ANY_ERRNO(-ENOTSOCK, zchan_send_peer(z, pfd[1]));
	zchan_close(z);
	z = NULL;
	EXPECT_ERR_ANY_ERRNO(-ENOTSOCK, zchan_recv_peer(pfd[0], &z));
	EXPECT_ERR_ANY_ERRNO(-EBADF, zchan_recv_peer(1000, &z));
	EXPECT_EQ(NULL, z);

	/* producer */
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_send(self->c, buf, 8, 0));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_send(self->p, buf, 8, 1U << 20));
	EXPECT_ERR_ANY_ERRNO(-EMSGSIZE, zchan_send(self->p, buf, 1025, 0));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_loan(self->p, 0, &loan, 0));
	EXPECT_ERR_ANY_ERRNO(-EMSGSIZE, zchan_loan(self->p, 1025, &loan, 0));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_commit(self->p, buf, 8));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_abort(self->p, buf));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_commit_flags(self->p, buf, 8, 4));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_flush(self->c));
	if (variant->backend == ZCHAN_BACKEND_MEMFD) {
		EXPECT_ERR_ANY_ERRNO(-EOPNOTSUPP,
				     zchan_send_pages(self->p, buf, 4096, 1, 0));
		EXPECT_ERR_ANY_ERRNO(-EOPNOTSUPP,
				     zchan_reap(self->p, &cookie, 1, 0));
	} else {
		EXPECT_ERR_ANY_ERRNO(-EINVAL,
				     zchan_send_pages(self->p, buf + 1, 4096, 1, 0));
		EXPECT_ERR_ANY_ERRNO(-EINVAL,
				     zchan_reap(self->p, NULL, 1, 0));
	}

	/* consumer */
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_recv(self->p, buf, 8, 0));
	EXPECT_ERR_ANY_ERRNO(-EAGAIN, zchan_recv(self->c, buf, sizeof(buf),
						 ZCHAN_NONBLOCK));
	EXPECT_ERR_ANY_ERRNO(-EAGAIN, zchan_recv_zc(self->c, &cp,
						    ZCHAN_NONBLOCK));
	EXPECT_ERR_ANY_ERRNO(-EAGAIN, zchan_recv_batch(self->c, m, 2,
						       ZCHAN_NONBLOCK));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_release(self->c, buf));
	m[0].buf = buf;
	m[0].len = 1;
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_release_batch(self->c, m, 1));
	EXPECT_ERR_ANY_ERRNO(-ETIME, zchan_wait(self->c, 0));
	EXPECT_ERR_ANY_ERRNO(-ETIME, zchan_wait(self->c, 1000000));
	ASSERT_EQ(200, zchan_send(self->p, buf, 200, 0));
	EXPECT_ERR_ANY_ERRNO(-EMSGSIZE, zchan_recv(self->c, buf, 100, 0));
	EXPECT_EQ(200, zchan_recv(self->c, buf, sizeof(buf), 0));

	/* a full ring, then our own loans holding all of it */
	while (zchan_send(self->p, buf, 8, ZCHAN_NONBLOCK) == 8)
		;
	EXPECT_ERR_ANY_ERRNO(-EAGAIN, zchan_send(self->p, buf, 8,
						 ZCHAN_NONBLOCK));
	while (zchan_recv(self->c, buf, sizeof(buf), ZCHAN_NONBLOCK) >= 0)
		;
	while (!zchan_loan(self->p, 8, &loan, ZCHAN_NONBLOCK))
		;
	EXPECT_ERR_ANY_ERRNO(-ENOBUFS, zchan_loan(self->p, 8, &loan, 0));

	/* the peer gone */
	zchan_close(self->c);
	self->c = NULL;
	EXPECT_ERR_ANY_ERRNO(-EPIPE, zchan_flush(self->p));
	close(pfd[0]);
	close(pfd[1]);
}

/* zchan_recv_peer() of a socket whose sender closed it: -EPIPE. */
TEST_F(hostile, recv_peer_eof_ignores_errno)
{
	struct zchan *z = NULL;
	int sv[2];

	ZC_NEED_BACKEND();

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	close(sv[0]);
	EXPECT_ERR_ANY_ERRNO(-EPIPE, zchan_recv_peer(sv[1], &z));
	EXPECT_EQ(NULL, z);
	close(sv[1]);
}

/*
 * The rest of the calls' errors, errno preset as above: introspection,
 * batches, a handle that is not one, and both directions of a peer gone.
 */
TEST_F(hostile, more_errors_ignore_errno)
{
	unsigned char buf[64] = { 0 };
	struct zchan_stats st;
	struct zchan_attr a;
	struct zchan_msg m[2];
	struct zchan *z = NULL;
	unsigned int i;
	int sv[2];

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 8, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_fd(NULL));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_backend(NULL));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_get_attr(NULL, &a));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_get_attr(self->p, NULL));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_stats(NULL, &st));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_set_flags(self->p, 1U << 20));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_poll(NULL));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_wait(NULL, 0));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_flush(NULL));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_recv_batch(self->c, m, 0, 0));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_recv_batch(self->c, NULL, 2, 0));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_release_batch(self->c, m, 0));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_recv_zc(self->c, NULL, 0));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_send(self->p, NULL, 8, 0));

	/* a message that is not a handle, one for each preset */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	for (i = 0; i < ZC_NR_PRESETS; i++)
		ASSERT_EQ(5, write(sv[0], "hello", 5));
	EXPECT_ERR_ANY_ERRNO(-EPROTO, zchan_recv_peer(sv[1], &z));
	EXPECT_EQ(NULL, z);
	close(sv[0]);
	close(sv[1]);

	/* the producer gone: every message, then -EPIPE */
	ASSERT_EQ(8, zchan_send(self->p, buf, 8, 0));
	zchan_close(self->p);
	self->p = NULL;
	EXPECT_EQ(8, zchan_recv(self->c, buf, sizeof(buf), 0));
	EXPECT_ERR_ANY_ERRNO(-EPIPE, zchan_recv(self->c, buf, sizeof(buf), 0));
	EXPECT_ERR_ANY_ERRNO(-EPIPE, zchan_recv_batch(self->c, m, 2,
						      ZCHAN_NONBLOCK));

	/* and the consumer gone, for a blocking send */
	zchan_close(self->c);
	self->c = NULL;
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	zchan_close(self->c);
	self->c = NULL;
	EXPECT_ERR_ANY_ERRNO(-EPIPE, zchan_send(self->p, buf, 8, 0));
	EXPECT_ERR_ANY_ERRNO(-EPIPE, zchan_loan(self->p, 8, (void **)&z, 0));
}

/*
 * zchan_send_pages() of a buffer whose end is unmapped: -EFAULT each
 * time, nothing sent; once ring_entries transfers wait to be reaped,
 * -ENOBUFS.  The consumer then gets exactly the good transfers.
 */
TEST_F(hostile, send_pages_errors_ignore_errno)
{
	size_t ps = self->ps;
	struct zchan_attr a;
	const void *m;
	uint64_t cookies[8];
	uint8_t *b;
	int i;

	NEED_KERNEL();

	zc_attr(&a, variant->backend, 4, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	b = zc_payload_pages(8, 7);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, munmap(b + 4 * ps, 4 * ps));
	EXPECT_ERR_ANY_ERRNO(-EFAULT, zchan_send_pages(self->p, b, 8 * ps, 1, 0));
	/* nothing was published but skipped slots */
	EXPECT_EQ(-EAGAIN, zchan_recv_zc(self->c, &m, ZCHAN_NONBLOCK));

	/* fill the transfers: released but not reaped */
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, zchan_send_pages(self->p, b, 4 * ps, 10 + i, 0));
		ASSERT_EQ((ssize_t)(4 * ps), zchan_recv_zc(self->c, &m, 0));
		EXPECT_TRUE(zc_payload_ok(m, 4 * ps, 0, 7));
		ASSERT_EQ(0, zchan_release(self->c, m));
	}
	EXPECT_ERR_ANY_ERRNO(-ENOBUFS, zchan_send_pages(self->p, b, ps, 2, 0));
	EXPECT_EQ(-EAGAIN, zchan_recv_zc(self->c, &m, ZCHAN_NONBLOCK));
	ASSERT_EQ(4, zchan_reap(self->p, cookies, 8, 0));
	for (i = 0; i < 4; i++)
		EXPECT_EQ(10 + i, cookies[i]);
	ASSERT_EQ(0, zchan_send_pages(self->p, b, ps, 3, 0));
	ASSERT_EQ((ssize_t)ps, zchan_recv_zc(self->c, &m, ZCHAN_NONBLOCK));
	EXPECT_TRUE(zc_payload_ok(m, ps, 0, 7));
	EXPECT_EQ(0, zchan_release(self->c, m));
	munmap(b, 4 * ps);
}

/* ------------------------------------------------------------------ */
/* Forged descriptors                                                  */

enum forgery {
	FORGE_PAGES_NO_XFER,	/* ZCHAN_DESC_PAGES naming no transfer */
	FORGE_PAGES_LONG,	/* a real transfer, twice its length */
	FORGE_PAGES_SHORT,	/* a real transfer, half its length */
	FORGE_PAGES_UNALIGNED,	/* ZCHAN_DESC_PAGES off inside a transfer */
	FORGE_PAGES_ZERO,	/* ZCHAN_DESC_PAGES of length 0 */
	FORGE_LEN_OVER_MAX,	/* longer than max_msg */
	FORGE_PAST_POOL,	/* off + len past the pool */
	FORGE_FLAGS,		/* unknown flags */
	FORGE_TAIL,		/* tail beyond head + ring_entries */
	FORGE_NR
};

static const char *const forgery_name[FORGE_NR] = {
	"pages-no-xfer", "pages-long", "pages-short", "pages-unaligned",
	"pages-zero", "len-over-max", "past-pool", "flags", "tail",
};

enum recv_call { RECV_COPY, RECV_ZC, RECV_BATCH, RECV_NR };

static const char *const recv_name[RECV_NR] = {
	"zchan_recv", "zchan_recv_zc", "zchan_recv_batch",
};

/*
 * Publish forgery @k (a ZCHAN_DESC_PAGES one needs the kernel backend and
 * some a real transfer of @b, 2 pages): false if @k does not apply.
 */
static bool forge(struct zc_forger *f, struct zchan *p, enum forgery k,
		  unsigned int backend, const uint8_t *b, size_t ps)
{
	bool pages = backend == ZCHAN_BACKEND_KERNEL;

	switch (k) {
	case FORGE_PAGES_NO_XFER:
		zc_forge_publish(f, ZCHAN_OFF_PAGES + 3 * ZCHAN_PAGES_MAX, ps,
			      ZCHAN_DESC_PAGES);
		return true;
	case FORGE_PAGES_LONG:
	case FORGE_PAGES_SHORT:
		if (!pages || zchan_send_pages(p, b, 2 * ps, 1, 0))
			return false;
		zc_forge_last(f)->len = k == FORGE_PAGES_LONG ? 4 * ps : ps;
		return true;
	case FORGE_PAGES_UNALIGNED:
		if (!pages || zchan_send_pages(p, b, 2 * ps, 1, 0))
			return false;
		zc_forge_last(f)->off += ps;
		zc_forge_last(f)->len = ps;
		return true;
	case FORGE_PAGES_ZERO:
		zc_forge_publish(f, ZCHAN_OFF_PAGES, 0, ZCHAN_DESC_PAGES);
		return true;
	case FORGE_LEN_OVER_MAX:
		zc_forge_publish(f, 0, f->l.max_msg + 1, 0);
		return true;
	case FORGE_PAST_POOL:
		zc_forge_publish(f, f->l.pool_size - 64, 128, 0);
		return true;
	case FORGE_FLAGS:
		zc_forge_publish(f, 0, 64, 1U << 7);
		return true;
	case FORGE_TAIL:
		zc_forge_tail(f);
		return true;
	default:
		return false;
	}
}

/* One receive call: its result, the payload read through if it is one. */
static long recv_one(struct zchan *c, enum recv_call r)
{
	static unsigned char buf[1 << 20];
	volatile const unsigned char *v;
	struct zchan_msg m[4];
	const void *zc;
	long ret;
	int i;

	switch (r) {
	case RECV_COPY:
		return zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK);
	case RECV_ZC:
		ret = zchan_recv_zc(c, &zc, ZCHAN_NONBLOCK);
		for (i = 0, v = zc; i < ret; i++)
			(void)v[i];	/* a wild pointer faults here */
		return ret;
	default:
		ret = zchan_recv_batch(c, m, 4, ZCHAN_NONBLOCK);
		if (ret > 0)
			for (i = 0, v = m[0].buf; i < (long)m[0].len; i++)
				(void)v[i];
		return ret;
	}
}

/*
 * In a child (a signal kills only it), with errno preset: @held, taken
 * before the forgery, stays readable and releasable, the receive call gets
 * -EPROTO and so does every receive after it, errno stays, and close
 * works.  Exit codes say which step failed.
 */
struct forgery_child {
	struct zchan *c;
	const void *held;
	enum recv_call r;
	int preset;
};

static int consume_forgery(void *arg)
{
	const struct forgery_child *fc = arg;
	struct zchan *c = fc->c;
	long ret;

	errno = fc->preset;
	ret = recv_one(c, fc->r);
	if (ret != -EPROTO)
		return 11;
	if (errno != fc->preset)
		return 12;
	if (recv_one(c, RECV_COPY) != -EPROTO ||
	    recv_one(c, RECV_ZC) != -EPROTO ||
	    recv_one(c, RECV_BATCH) != -EPROTO ||
	    zchan_wait(c, 0) != -EPROTO)
		return 13;
	if (memcmp(fc->held, "honest!", 8) || zchan_release(c, fc->held))
		return 14;
	zchan_close(c);
	return 0;
}

/*
 * Every forgery against every receive call, errno preset to 0, EINVAL and
 * EACCES, each on a fresh channel consumed in a forked child: the child
 * must exit 0, never die of a signal.
 */
TEST_F(hostile, forged_descriptors)
{
	size_t ps = self->ps;
	struct zchan_attr a;
	struct zc_forger f;
	unsigned int k, r, e;
	const void *held;
	uint8_t *b;

	ZC_NEED_BACKEND();

	b = zc_payload_pages(2, 3);
	ASSERT_NE(NULL, b);
	zc_attr(&a, variant->backend, 16, 65536, 4096);
	for (k = 0; k < FORGE_NR; k++) {
		for (r = 0; r < RECV_NR; r++) {
			for (e = 0; e < ZC_NR_PRESETS; e++) {
				struct forgery_child fc;
				char why[96];
				pid_t pid;
				int st;

				ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
				ASSERT_EQ(0, zc_forger_map(&f, self->p, variant->backend));
				ASSERT_EQ(8, zchan_send(self->p, "honest!", 8, 0));
				ASSERT_EQ(8, zchan_recv_zc(self->c, &held, 0));
				if (!forge(&f, self->p, k, variant->backend, b, ps)) {
					zc_forger_unmap(&f);
					zchan_close(self->c);
					zchan_close(self->p);
					self->p = self->c = NULL;
					break;
				}
				fc.c = self->c;
				fc.held = held;
				fc.r = r;
				fc.preset = zc_preset_errno[e];
				pid = zc_spawn(consume_forgery, &fc);
				ASSERT_LT(0, pid);
				st = zc_child_wait(pid, -1);
				EXPECT_EQ(0, st)
					TH_LOG("%s by %s, errno %d before: %s",
					       forgery_name[k], recv_name[r],
					       zc_preset_errno[e],
					       zc_child_str(st, why, sizeof(why)));
				zc_forger_unmap(&f);
				zchan_close(self->c);
				zchan_close(self->p);
				self->p = self->c = NULL;
			}
		}
	}
	munmap(b, 2 * ps);
}

/* ------------------------------------------------------------------ */
/* A producer's waits publish its ZCHAN_MORE queue                     */

/* 58 messages published and 6 queued with ZCHAN_MORE fill a 64-slot ring. */
static void fill_with_queue(struct __test_metadata *_metadata,
			    struct zchan *p)
{
	int i;

	for (i = 0; i < 58; i++)
		ASSERT_EQ(8, zchan_send(p, "message", 8, 0));
	for (i = 0; i < 6; i++)
		ASSERT_EQ(8, zchan_send(p, "queued!", 8, ZCHAN_MORE));
}

/* zchan_wait() on a producer: the consumer sees the queue. */
TEST_F(hostile, wait_publishes_more_queue)
{
	struct zchan_attr a;
	struct zchan_msg m[64];

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 64, 1 << 20, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	fill_with_queue(_metadata, self->p);
	EXPECT_EQ(-ETIME, zchan_wait(self->p, 2000000));
	ASSERT_EQ(64, zchan_recv_batch(self->c, m, 64, ZCHAN_NONBLOCK));
	EXPECT_EQ(0, memcmp(m[63].buf, "queued!", 8));
	EXPECT_EQ(64, zchan_release_batch(self->c, m, 64));
	EXPECT_EQ(POLLOUT, zchan_wait(self->p, -1) & POLLOUT);
}

/* zchan_poll() of a producer without room: it will wait, so it publishes. */
TEST_F(hostile, poll_without_room_publishes_more_queue)
{
	struct zchan_attr a;
	struct zchan_msg m[64];

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 64, 1 << 20, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	fill_with_queue(_metadata, self->p);
	EXPECT_EQ(0, zchan_poll(self->p) & POLLOUT);
	ASSERT_EQ(64, zchan_recv_batch(self->c, m, 64, ZCHAN_NONBLOCK));
	EXPECT_EQ(64, zchan_release_batch(self->c, m, 64));
}

/*
 * zchan_prep_wait() on a producer publishes the queue, and its poll
 * completes once the consumer gives the ring back.
 */
TEST_F(hostile, prep_wait_publishes_more_queue)
{
	struct __kernel_timespec ts = { .tv_sec = 60 };
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	struct zchan_attr a;
	struct zchan_msg m[64];
	struct io_uring ring;

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 64, 1 << 20, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	ASSERT_EQ(0, io_uring_queue_init(4, &ring, 0));
	fill_with_queue(_metadata, self->p);
	sqe = io_uring_get_sqe(&ring);
	ASSERT_NE(NULL, sqe);
	zchan_prep_wait(sqe, self->p);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(64, zchan_recv_batch(self->c, m, 64, ZCHAN_NONBLOCK));
	EXPECT_EQ(0, memcmp(m[63].buf, "queued!", 8));
	EXPECT_EQ(64, zchan_release_batch(self->c, m, 64));
	ASSERT_EQ(0, io_uring_wait_cqe_timeout(&ring, &cqe, &ts));
	EXPECT_LT(0, cqe->res);
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
}

/* ------------------------------------------------------------------ */
/* A mixed stream with borrows held never puts both ends to sleep      */

#define STREAM_MAX_MSG	(16U << 10)
#define STREAM_HOLD	3	/* borrows the consumer keeps at most */
#define STREAM_HOLD_FOR	16	/* messages it keeps one for at most */

/*
 * Message @seq of the stream of @seed: payload (@seed, @seq) of a length
 * its number gives, so the consumer checks all of it, length included.
 */
static uint32_t stream_len(uint64_t seed, uint32_t seq)
{
	return (uint32_t)zc_payload_len(seed, seq, 4, STREAM_MAX_MSG);
}

/* A loan dropped, not sent: any length. */
static uint32_t stream_any_len(uint64_t *rnd)
{
	return 4 + (uint32_t)zc_below(rnd, STREAM_MAX_MSG - 3);
}

static bool stream_ok(const void *buf, size_t len, uint64_t seed,
		      uint32_t seq)
{
	char why[96];

	if (!zc_payload_check(buf, len, stream_len(seed, seq), seed, seq, why,
			      sizeof(why)))
		return true;
	fprintf(stderr, "# %s\n", why);
	return false;
}

/*
 * The producer: zchan_send(), loan + commit, a loan larger than the
 * message committed shorter, and batches of 2 to 4 loans held at once
 * plus one dropped (abort, or a commit of length 0), committed newest
 * first.  Returns 0, or the failing call's error.
 */
static int stream_produce(struct zchan *p, uint32_t msgs, uint64_t seed)
{
	uint64_t rnd = seed;
	uint32_t seq = 0;
	int ret;

	while (seq < msgs) {
		unsigned int op = (unsigned int)zc_below(&rnd, 4);
		uint32_t len = stream_len(seed, seq);
		void *loan[5];
		uint32_t lens[5], at[5];
		int n, drop, i;

		if (op == 0) {
			uint8_t buf[STREAM_MAX_MSG];

			zc_payload_fill(buf, len, seed, seq);
			ret = (int)zchan_send(p, buf, len, 0);
			if (ret != (int)len)
				return ret < 0 ? ret : -EIO;
			seq++;
		} else if (op == 1 || op == 2) {
			uint32_t cap = op == 1 ? len : len +
				(uint32_t)zc_below(&rnd, STREAM_MAX_MSG - len + 1);

			ret = zchan_loan(p, cap, &loan[0], 0);
			if (ret)
				return ret;
			zc_payload_fill(loan[0], len, seed, seq++);
			ret = zchan_commit(p, loan[0], len);
			if (ret)
				return ret;
		} else {
			n = 2 + (int)zc_below(&rnd, 3);
			if (seq + (uint32_t)n > msgs)
				n = (int)(msgs - seq);
			drop = (int)zc_below(&rnd, (uint64_t)n + 1);
			/* loan i: seq + i, or past the dropped one, i - 1 */
			for (i = 0; i <= n; i++) {
				at[i] = seq + (uint32_t)(i - (i > drop));
				lens[i] = i == drop ? stream_any_len(&rnd) :
						      stream_len(seed, at[i]);
				ret = zchan_loan(p, lens[i], &loan[i], 0);
				if (ret)
					return ret;
			}
			for (i = 0; i <= n; i++)
				if (i != drop)
					zc_payload_fill(loan[i], lens[i], seed,
							at[i]);
			for (i = n; i >= 0; i--) {
				if (i != drop)
					ret = zchan_commit(p, loan[i], lens[i]);
				else if (zc_below(&rnd, 2))
					ret = zchan_abort(p, loan[i]);
				else
					ret = zchan_commit(p, loan[i], 0);
				if (ret)
					return ret;
			}
			seq += (uint32_t)n;
		}
	}
	return 0;
}

struct held {
	const void *buf;
	uint32_t left;		/* messages until it is released */
};

/* Count one more message taken; release what was held long enough. */
static int stream_tick(struct zchan *c, struct held *h, unsigned int *nh)
{
	unsigned int i;

	for (i = 0; i < *nh;) {
		if (--h[i].left) {
			i++;
			continue;
		}
		if (zchan_release(c, h[i].buf))
			return 30;
		h[i] = h[--*nh];
	}
	return 0;
}

/* Keep @buf borrowed for a while, or release it now: 0 or an exit code. */
static int stream_keep(struct zchan *c, struct held *h, unsigned int *nh,
		       const void *buf, uint64_t *rnd)
{
	if (*nh < STREAM_HOLD && zc_below(rnd, 3) == 0) {
		h[*nh].buf = buf;
		h[*nh].left = 1 + (uint32_t)zc_below(rnd, STREAM_HOLD_FOR);
		++*nh;
		return 0;
	}
	return zchan_release(c, buf) ? 31 : 0;
}

/*
 * The consumer of the stream of @seed (its own choices from @seed * 7):
 * zchan_recv(), zchan_recv_zc() + release, and
 * zchan_recv_batch() released in reverse; up to STREAM_HOLD messages
 * kept borrowed, none for more than STREAM_HOLD_FOR messages.  Checks
 * order, length and every byte; returns 0 or an exit code.
 */
static int stream_consume(struct zchan *c, uint32_t msgs, uint64_t seed)
{
	static uint8_t buf[STREAM_MAX_MSG];
	struct held h[STREAM_HOLD];
	unsigned int nh = 0, i;
	uint64_t rnd = seed * 7;
	uint32_t seq = 0;
	int ret;

	while (seq < msgs) {
		unsigned int op = (unsigned int)zc_below(&rnd, 3);

		if (op == 0) {
			ssize_t n = zchan_recv(c, buf, sizeof(buf), 0);

			if (n < 0)
				return 20;
			if (!stream_ok(buf, (size_t)n, seed, seq++))
				return 21;
			ret = stream_tick(c, h, &nh);
		} else if (op == 1) {
			const void *m;
			ssize_t n = zchan_recv_zc(c, &m, 0);

			if (n < 0)
				return 22;
			if (!stream_ok(m, (size_t)n, seed, seq++))
				return 23;
			ret = stream_tick(c, h, &nh);
			if (!ret)
				ret = stream_keep(c, h, &nh, m, &rnd);
		} else {
			struct zchan_msg m[4];
			int n = zchan_recv_batch(c, m, 4, 0), j;

			if (n <= 0) {
				fprintf(stderr, "# recv_batch %d at %u\n", n, seq);
				return 24;
			}
			for (j = 0; j < n; j++)
				if (!stream_ok(m[j].buf, m[j].len, seed,
					       seq++))
					return 25;
			ret = 0;
			for (j = 0; j < n && !ret; j++)
				ret = stream_tick(c, h, &nh);
			/* in reverse, the oldest perhaps kept */
			for (j = n - 1; j >= 1 && !ret; j--)
				ret = zchan_release(c, m[j].buf) ? 26 : 0;
			if (!ret)
				ret = stream_keep(c, h, &nh, m[0].buf, &rnd);
		}
		if (ret)
			return ret;
	}
	for (i = 0; i < nh; i++)
		if (zchan_release(c, h[i].buf))
			return 32;
	return 0;
}

/*
 * Pool 1 MiB, max_msg 16 KiB, 256 slots, a forked consumer: the stream
 * above, many times ($ZCHAN_TEST_STREAM_RUNS runs of
 * $ZCHAN_TEST_STREAM_MSGS messages).  Both ends once slept for ever after
 * about 1300 messages, in 9 runs of 10: the harness's timeout fails such
 * a run.
 */
TEST_F_TIMEOUT(hostile, mixed_stream_borrows_held, 600)
{
	bool guest = !access(ZC_DEV, F_OK);	/* TCG: 50 times slower */
	uint32_t msgs = guest ? 5000 : 20000;
	unsigned int runs = guest ? 2 : 10, run;
	const char *env;
	struct zchan_attr a;

	ZC_NEED_BACKEND();

	env = getenv("ZCHAN_TEST_STREAM_RUNS");
	if (env && *env)
		runs = (unsigned int)strtoul(env, NULL, 10);
	env = getenv("ZCHAN_TEST_STREAM_MSGS");
	if (env && *env)
		msgs = (uint32_t)strtoul(env, NULL, 10);
	zc_attr(&a, variant->backend, 256, 1 << 20, STREAM_MAX_MSG);
	for (run = 0; run < runs; run++) {
		uint64_t seed = 0x2300 + run;
		int st, ready[2];
		char why[96];

		ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
		ASSERT_EQ(0, pipe(ready));
		self->child = fork();
		ASSERT_LE(0, self->child);
		if (!self->child) {
			zchan_close(self->p);
			zchan_poll(self->c);	/* the child uses the end */
			zc_signal(ready[1]);
			_exit(stream_consume(self->c, msgs, seed));
		}
		/* our copy of the consumer goes once the child uses it */
		ASSERT_EQ(0, zc_await(ready[0]));
		close(ready[0]);
		close(ready[1]);
		zchan_close(self->c);
		self->c = NULL;
		EXPECT_EQ(0, stream_produce(self->p, msgs, seed));
		st = reap_child(self);
		EXPECT_EQ(0, st)
			TH_LOG("run %u: consumer %s", run,
			       zc_child_str(st, why, sizeof(why)));
		zchan_close(self->p);
		self->p = NULL;
	}
}

/* ------------------------------------------------------------------ */
/* Pool accounting: a dropped loan gives back exactly its own room     */

/*
 * The newest loan can be padded with the rest of the pool (the producer
 * went back to the front while allocating after it) and then dropped:
 * its room must come back from where it starts, or the producer counts
 * its bytes free twice and later writes over a message the consumer
 * holds.  The numbers walk the producer into exactly that (ring.c,
 * prod_rewind() and prod_unloan_newest()): pool 256 KiB, 8 slots.
 */
TEST_F(hostile, dropped_padded_loan_keeps_held_message)
{
	static uint8_t big[128 << 10];
	struct zchan_attr a;
	const void *held = NULL, *m;
	void *loan[8];
	uint8_t copy[5000];
	int i;

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 8, 256 << 10, 128 << 10);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	memset(big, 0xee, sizeof(big));
	/* 18 messages of 8000 bytes, the consumer keeping the newest */
	for (i = 0; i < 18; i++) {
		ASSERT_EQ(8000, zchan_send(self->p, big, 8000, 0));
		ASSERT_EQ(8000, zchan_recv_zc(self->c, &m, ZCHAN_NONBLOCK));
		if (held)
			ASSERT_EQ(0, zchan_release(self->c, held));
		held = m;
	}
	/* 7 loans fill the ring; a small 8th goes back to the front */
	for (i = 0; i < 7; i++) {
		ASSERT_EQ(0, zchan_loan(self->p, 5000, &loan[i], 0));
		memset(loan[i], 0x10 + i, 5000);
	}
	EXPECT_EQ(-EAGAIN, zchan_loan(self->p, 64, &loan[7], ZCHAN_NONBLOCK));
	ASSERT_EQ(0, zchan_abort(self->p, loan[6]));
	for (i = 0; i < 6; i++)
		ASSERT_EQ(0, zchan_commit(self->p, loan[i], 5000));
	/* the consumer gives back all but the last loan's message */
	ASSERT_EQ(0, zchan_release(self->c, held));
	for (i = 0; i < 6; i++) {
		ASSERT_EQ(5000, zchan_recv_zc(self->c, &m, ZCHAN_NONBLOCK));
		if (i < 5)
			ASSERT_EQ(0, zchan_release(self->c, m));
	}
	held = m;
	memcpy(copy, held, sizeof(copy));
	/* the producer fills what is free: never the held message */
	while (zchan_send(self->p, big, sizeof(big), ZCHAN_NONBLOCK) > 0 ||
	       zchan_send(self->p, big, 38000, ZCHAN_NONBLOCK) > 0 ||
	       zchan_send(self->p, big, 5000, ZCHAN_NONBLOCK) > 0)
		;
	EXPECT_EQ(0, memcmp(copy, held, sizeof(copy)));
	EXPECT_EQ(0x15, copy[0]);
	EXPECT_EQ(0, zchan_release(self->c, held));
}

/* ------------------------------------------------------------------ */
/* A loan committed after a handover is delivered                     */

/*
 * The parent loans L1 and writes it, then forks; the child's first call
 * commits L1, then the parent closes its copy, and the child sends C2
 * and closes: the consumer gets M0, L1 and C2, in order.
 */
TEST_F(hostile, handover_commits_outstanding_loan)
{
	int go[2], done[2];
	struct zchan_attr a;
	char buf[64];
	void *l1;

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 16, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	ASSERT_EQ(3, zchan_send(self->p, "M0", 3, 0));
	ASSERT_EQ(0, zchan_loan(self->p, 3, &l1, 0));
	memcpy(l1, "L1", 3);
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		if (zchan_commit(self->p, l1, 3))
			_exit(10);
		zc_signal(go[1]);
		if (zc_await(done[0]))
			_exit(11);
		if (zchan_send(self->p, "C2", 3, 0) != 3)
			_exit(12);
		zchan_close(self->p);
		_exit(0);
	}
	ASSERT_EQ(0, zc_await(go[0]));
	zchan_close(self->p);
	self->p = NULL;
	zc_signal(done[1]);
	EXPECT_EQ(0, reap_child(self));
	ASSERT_EQ(3, zchan_recv(self->c, buf, sizeof(buf), 0));
	EXPECT_STREQ("M0", buf);
	ASSERT_EQ(3, zchan_recv(self->c, buf, sizeof(buf), 0));
	EXPECT_STREQ("L1", buf);
	ASSERT_EQ(3, zchan_recv(self->c, buf, sizeof(buf), 0));
	EXPECT_STREQ("C2", buf);
	EXPECT_EQ(-EPIPE, zchan_recv(self->c, buf, sizeof(buf), 0));
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
}

/* The same, the parent closing first: the loan is the child's to commit. */
TEST_F(hostile, handover_parent_closes_before_commit)
{
	int go[2], done[2];
	struct zchan_attr a;
	char buf[64];
	void *l1;

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 16, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	ASSERT_EQ(0, zchan_loan(self->p, 3, &l1, 0));
	memcpy(l1, "L1", 3);
	self->child = fork();
	ASSERT_LE(0, self->child);
	if (!self->child) {
		if (zchan_poll(self->p) < 0)	/* use it first */
			_exit(10);
		zc_signal(go[1]);
		if (zc_await(done[0]))
			_exit(11);
		if (zchan_commit(self->p, l1, 3))
			_exit(12);
		zchan_close(self->p);
		_exit(0);
	}
	ASSERT_EQ(0, zc_await(go[0]));
	zchan_close(self->p);
	self->p = NULL;
	zc_signal(done[1]);
	EXPECT_EQ(0, reap_child(self));
	ASSERT_EQ(3, zchan_recv(self->c, buf, sizeof(buf), 0));
	EXPECT_STREQ("L1", buf);
	EXPECT_EQ(-EPIPE, zchan_recv(self->c, buf, sizeof(buf), 0));
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
}

TEST_HARNESS_MAIN
