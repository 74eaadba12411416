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
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <liburing.h>
#include <zchan.h>

#include "kselftest_harness.h"
#include "../common/zchan_test_lib.h"
#include "../common/zchan_test_utils.h"

/* TCG guests are slow: give every test room. */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

/* What errno may hold before a call: none of them may change its result. */
static const int preset_errno[] = { 0, EINVAL, EACCES };
#define NR_PRESETS (sizeof(preset_errno) / sizeof(preset_errno[0]))

/*
 * Evaluate @expr once per preset errno: it must return @err each time and
 * leave errno as it found it.
 */
#define EXPECT_ERR_ANY_ERRNO(err, expr)					\
	do {								\
		unsigned int __i;					\
									\
		for (__i = 0; __i < NR_PRESETS; __i++) {		\
			long __ret;					\
									\
			errno = preset_errno[__i];			\
			__ret = (long)(expr);				\
			EXPECT_EQ((long)(err), __ret)			\
				TH_LOG("%s with errno %d before", #expr,\
				       preset_errno[__i]);		\
			EXPECT_EQ(preset_errno[__i], errno)		\
				TH_LOG("%s changed errno", #expr);	\
		}							\
	} while (0)

FIXTURE(hostile) {
	struct zchan *p, *c;
	pid_t child;
	size_t ps;
};

FIXTURE_VARIANT(hostile) {
	unsigned int backend;
};

FIXTURE_VARIANT_ADD(hostile, memfd) {
	.backend = ZCHAN_BACKEND_MEMFD,
};

FIXTURE_VARIANT_ADD(hostile, kernel) {
	.backend = ZCHAN_BACKEND_KERNEL,
};

FIXTURE_SETUP(hostile)
{
	self->p = self->c = NULL;
	self->child = 0;
	self->ps = (size_t)sysconf(_SC_PAGESIZE);
}

FIXTURE_TEARDOWN(hostile)
{
	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, NULL, 0);
	}
	zchan_close(self->p);
	zchan_close(self->c);
}

/* A SKIP() in FIXTURE_SETUP does not stop the test on every harness. */
#define NEED_BACKEND()							\
	do {								\
		if (variant->backend == ZCHAN_BACKEND_KERNEL &&		\
		    access(ZC_DEV, F_OK))				\
			SKIP(return, "no /dev/zchan (zchan.ko not loaded)"); \
	} while (0)

#define NEED_KERNEL()							\
	do {								\
		if (variant->backend != ZCHAN_BACKEND_KERNEL)		\
			SKIP(return, "the kernel backend only");	\
		NEED_BACKEND();						\
	} while (0)

static void hostile_attr(struct zchan_attr *a, unsigned int backend,
			 unsigned int entries, size_t pool, size_t max_msg)
{
	zchan_attr_init(a);
	a->backend = backend;
	a->ring_entries = entries;
	a->pool_size = pool;
	a->max_msg = max_msg;
}

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

	NEED_BACKEND();

	hostile_attr(&a, variant->backend, 8, 65536, 1024);
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

	NEED_BACKEND();

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	close(sv[0]);
	EXPECT_ERR_ANY_ERRNO(-EPIPE, zchan_recv_peer(sv[1], &z));
	EXPECT_EQ(NULL, z);
	close(sv[1]);
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

	hostile_attr(&a, variant->backend, 4, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	b = zc_pattern_buf(8, 7);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, munmap(b + 4 * ps, 4 * ps));
	EXPECT_ERR_ANY_ERRNO(-EFAULT, zchan_send_pages(self->p, b, 8 * ps, 1, 0));
	/* nothing was published but skipped slots */
	EXPECT_EQ(-EAGAIN, zchan_recv_zc(self->c, &m, ZCHAN_NONBLOCK));

	/* fill the transfers: released but not reaped */
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, zchan_send_pages(self->p, b, 4 * ps, 10 + i, 0));
		ASSERT_EQ((ssize_t)(4 * ps), zchan_recv_zc(self->c, &m, 0));
		EXPECT_TRUE(zc_pattern_ok(m, 4 * ps, 0, 7));
		ASSERT_EQ(0, zchan_release(self->c, m));
	}
	EXPECT_ERR_ANY_ERRNO(-ENOBUFS, zchan_send_pages(self->p, b, ps, 2, 0));
	EXPECT_EQ(-EAGAIN, zchan_recv_zc(self->c, &m, ZCHAN_NONBLOCK));
	ASSERT_EQ(4, zchan_reap(self->p, cookies, 8, 0));
	for (i = 0; i < 4; i++)
		EXPECT_EQ(10 + i, cookies[i]);
	ASSERT_EQ(0, zchan_send_pages(self->p, b, ps, 3, 0));
	ASSERT_EQ((ssize_t)ps, zchan_recv_zc(self->c, &m, ZCHAN_NONBLOCK));
	EXPECT_TRUE(zc_pattern_ok(m, ps, 0, 7));
	EXPECT_EQ(0, zchan_release(self->c, m));
	munmap(b, 4 * ps);
}

TEST_HARNESS_MAIN
