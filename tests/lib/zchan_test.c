// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * libzchan tests, the same source for both backends.
 *
 * The backend comes from $ZCHAN_BACKEND; when it is unset the binary's
 * default applies (ZCHAN_TEST_DEFAULT_BACKEND: "memfd" for the native
 * build, "kernel" for the guest build).  Every test asserts the backend it
 * got, so a guest without /dev/zchan fails instead of falling back.
 * $ZCHAN_TEST_MSGS overrides the size of the long stream test (1,000,000
 * natively, ZCHAN_TEST_GUEST_MSGS in the guest build: TCG is ~50x slower).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <liburing.h>
#include <linux/perf_event.h>
#include <linux/zchan.h>
#include <zchan.h>

#include "kselftest_harness.h"
#include "../common/zchan_test_lib.h"
#include "../common/zchan_test_utils.h"
#include "../common/zchan_test_payload.h"
#include "../common/zchan_test_proc.h"

/* TCG guests are slow: give every test room (the suite has a budget). */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 240

#ifndef ZCHAN_TEST_DEFAULT_BACKEND
#define ZCHAN_TEST_DEFAULT_BACKEND "memfd"
#endif
#ifndef ZCHAN_TEST_DEFAULT_MSGS
#define ZCHAN_TEST_DEFAULT_MSGS 1000000
#endif

static int expected_backend(void)
{
	const char *b = getenv("ZCHAN_BACKEND");

	if (!b || !*b)
		b = ZCHAN_TEST_DEFAULT_BACKEND;
	return strcmp(b, "kernel") ? ZCHAN_BACKEND_MEMFD : ZCHAN_BACKEND_KERNEL;
}

static long test_msgs(void)
{
	const char *s = getenv("ZCHAN_TEST_MSGS");
	long n = s ? atol(s) : 0;

	return n > 0 ? n : ZCHAN_TEST_DEFAULT_MSGS;
}

__attribute__((constructor)) static void pick_backend(void)
{
	setenv("ZCHAN_BACKEND", ZCHAN_TEST_DEFAULT_BACKEND, 0);
}

static void small_attr(struct zchan_attr *a, unsigned int entries,
		       size_t pool, size_t max_msg)
{
	zchan_attr_init(a);
	a->ring_entries = entries;
	a->pool_size = pool;
	a->max_msg = max_msg;
}

/* ------------------------------------------------------------------ */
/* Deterministic payloads: length and bytes derived from the sequence.  */

static uint32_t msg_len(uint64_t seq, uint32_t max)
{
	uint64_t r = zc_mix64(seq * 2 + 1);

	if (!(r & 63))
		return (uint32_t)((r >> 8) % (max + 1));	/* sometimes big */
	if (!(r & 0x1c0))
		return (uint32_t)((r >> 8) % 8);		/* tiny and 0 */
	return (uint32_t)((r >> 8) % (max < 2048 ? max + 1 : 2049));
}

/* Is @buf message @seq: msg_len() bytes of payload (0, @seq)? */
static bool check_msg(const void *buf, size_t len, uint64_t seq, uint32_t max)
{
	return len == msg_len(seq, max) && zc_payload_ok(buf, len, 0, seq);
}

/* ------------------------------------------------------------------ */

TEST(backend_is_the_expected_one)
{
	struct zchan *p, *c;

	ASSERT_EQ(0, zc_local_pair(NULL, &p, &c));
	EXPECT_EQ(expected_backend(), zchan_backend(p));
	EXPECT_EQ(expected_backend(), zchan_backend(c));
	EXPECT_LE(0, zchan_fd(p));
	EXPECT_LE(0, zchan_fd(c));
	zchan_close(c);
	zchan_close(p);
}

TEST(invalid_arguments)
{
	struct zchan_attr a;
	struct zchan *p, *c;
	char buf[64], name[ZCHAN_NAME_MAX + 8];
	const void *cbuf;
	void *lbuf;

	ASSERT_EQ(-EINVAL, zchan_create(NULL, NULL, NULL));
	zchan_attr_init(&a);
	a.reserved[3] = 1;
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, &p));
	zchan_attr_init(&a);
	a.ring_entries = 3;
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, &p));
	zchan_attr_init(&a);
	a.pool_size = 65536;
	a.max_msg = 65536;
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, &p));
	zchan_attr_init(&a);
	a.flags = 0x80;
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, &p));
	zchan_attr_init(&a);
	a.mode = 01000;
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, &p));
	zchan_attr_init(&a);
	a.backend = 7;
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, &p));
	EXPECT_EQ(-EINVAL, zchan_create("", NULL, &p));
	setenv("ZCHAN_BACKEND", "bogus", 1);
	EXPECT_EQ(-EINVAL, zchan_create(NULL, NULL, &p));
	setenv("ZCHAN_BACKEND", expected_backend() == ZCHAN_BACKEND_KERNEL ?
	       "kernel" : "memfd", 1);
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	EXPECT_EQ(-ENAMETOOLONG, zchan_create(name, NULL, &p));
	EXPECT_EQ(-EINVAL, zchan_open(NULL, &c));
	EXPECT_EQ(-EINVAL, zchan_recv_peer(-1, &c));
	EXPECT_EQ(-EINVAL, zchan_send_peer(NULL, 0));
	EXPECT_EQ(-EINVAL, zchan_fd(NULL));
	EXPECT_EQ(-EINVAL, zchan_backend(NULL));
	EXPECT_EQ(-EINVAL, zchan_send(NULL, buf, 1, 0));
	EXPECT_EQ(-EINVAL, zchan_recv(NULL, buf, 1, 0));
	EXPECT_EQ(-EINVAL, zchan_poll(NULL));
	EXPECT_EQ(-EINVAL, zchan_wait(NULL, 0));
	EXPECT_EQ(-EINVAL, zchan_stats(NULL, NULL));
	zchan_close(NULL);

	small_attr(&a, 8, 65536, 4096);
	ASSERT_EQ(0, zc_local_pair(&a, &p, &c));
	/* wrong end */
	EXPECT_EQ(-EINVAL, zchan_send(c, buf, 1, 0));
	EXPECT_EQ(-EINVAL, zchan_recv(p, buf, sizeof(buf), 0));
	EXPECT_EQ(-EINVAL, zchan_loan(c, 8, &lbuf, 0));
	EXPECT_EQ(-EINVAL, zchan_recv_zc(p, &cbuf, 0));
	EXPECT_EQ(-EINVAL, zchan_send_peer(c, 0));
	/* bad flags and pointers */
	EXPECT_EQ(-EINVAL, zchan_send(p, buf, 1, 0x100));
	EXPECT_EQ(-EINVAL, zchan_recv(c, buf, 1, 0x100));
	EXPECT_EQ(-EINVAL, zchan_send(p, NULL, 1, 0));
	EXPECT_EQ(-EINVAL, zchan_recv(c, NULL, 1, 0));
	EXPECT_EQ(-EINVAL, zchan_recv_zc(c, NULL, 0));
	EXPECT_EQ(-EINVAL, zchan_loan(p, 0, &lbuf, 0));
	EXPECT_EQ(-EINVAL, zchan_loan(p, 8, NULL, 0));
	EXPECT_EQ(-EINVAL, zchan_commit(p, buf, 1));
	EXPECT_EQ(-EINVAL, zchan_abort(p, NULL));
	EXPECT_EQ(-EINVAL, zchan_release(c, buf));
	EXPECT_EQ(-EINVAL, zchan_recv_batch(c, NULL, 4, 0));
	EXPECT_EQ(-EINVAL, zchan_set_flags(p, 0x40));
	/* commit longer than the loan, then a good one */
	ASSERT_EQ(0, zchan_loan(p, 16, &lbuf, 0));
	EXPECT_EQ(-EINVAL, zchan_commit(p, lbuf, 17));
	EXPECT_EQ(-EINVAL, zchan_commit(p, (char *)lbuf + 1, 1));
	EXPECT_EQ(0, zchan_commit(p, lbuf, 16));
	EXPECT_EQ(-EINVAL, zchan_commit(p, lbuf, 16));	/* already done */
	EXPECT_EQ(16, zchan_recv_zc(c, &cbuf, 0));
	EXPECT_EQ(0, zchan_release(c, cbuf));
	EXPECT_EQ(-EINVAL, zchan_release(c, cbuf));	/* twice */
	zchan_close(c);
	zchan_close(p);
}

/* Errors come back as return values; errno keeps the caller's value. */
TEST(errno_is_left_alone)
{
	struct zchan_attr a;
	struct zchan *p, *c;
	char buf[16];
	int sv[2];

	zchan_attr_init(&a);
	a.backend = ZCHAN_BACKEND_MEMFD;
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	close(sv[0]);
	errno = 4242;
	/* -EOPNOTSUPP (memfd) or -ENOENT (kernel): failed syscalls inside */
	EXPECT_GT(0, zchan_open("zchan-test-no-such-name", &c));
	EXPECT_EQ(-EOPNOTSUPP, zchan_create("x", &a, &p));
	EXPECT_EQ(-EPIPE, zchan_recv_peer(sv[1], &c));
	EXPECT_EQ(4242, errno);
	close(sv[1]);
	small_attr(&a, 8, 16384, 64);
	ASSERT_EQ(0, zc_local_pair(&a, &p, &c));
	EXPECT_EQ(-EAGAIN, zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK));
	EXPECT_EQ(-ETIME, zchan_wait(c, 1000000));
	EXPECT_EQ(1, zchan_send(p, "x", 1, 0));		/* kicks */
	EXPECT_EQ(1, zchan_recv(c, buf, sizeof(buf), 0));
	zchan_close(p);
	EXPECT_EQ(-EPIPE, zchan_recv(c, buf, sizeof(buf), 0));
	zchan_close(c);
	EXPECT_EQ(4242, errno);
}

TEST(names)
{
	char name[64];
	struct zchan_attr a;
	struct zchan *p, *p2, *c;
	char buf[32];

	snprintf(name, sizeof(name), "zchan-test-%d", (int)getpid());
	zchan_attr_init(&a);
	a.backend = ZCHAN_BACKEND_MEMFD;
	/* the memfd backend never has names */
	EXPECT_EQ(-EOPNOTSUPP, zchan_create(name, &a, &p));
	EXPECT_NE(NULL, strstr(zchan_strerror(-EOPNOTSUPP), "module"));
	EXPECT_STREQ(zchan_strerror(-EPIPE), zchan_strerror(EPIPE));
	EXPECT_NE(NULL, strstr(zchan_strerror(-EUSERS), "processes"));

	if (expected_backend() == ZCHAN_BACKEND_MEMFD) {
		EXPECT_EQ(-EOPNOTSUPP, zchan_create(name, NULL, &p));
		EXPECT_EQ(-EOPNOTSUPP, zchan_open(name, &c));
		return;
	}
	EXPECT_EQ(-ENOENT, zchan_open(name, &c));
	small_attr(&a, 16, 65536, 1024);
	ASSERT_EQ(0, zchan_create(name, &a, &p));
	EXPECT_EQ(-EEXIST, zchan_create(name, &a, &p2));
	ASSERT_EQ(0, zchan_open(name, &c));
	EXPECT_EQ(-EBUSY, zchan_open(name, &p2));	/* one consumer */
	EXPECT_EQ(ZCHAN_BACKEND_KERNEL, zchan_backend(c));
	EXPECT_EQ(5, zchan_send(p, "hello", 5, 0));
	EXPECT_EQ(5, zchan_recv(c, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, "hello", 5));
	zchan_close(c);
	zchan_close(p);
}

TEST(send_recv_and_geometry)
{
	struct zchan_attr a, got;
	struct zchan_stats st;
	struct zchan *p, *c;
	char buf[128];
	int i;

	small_attr(&a, 16, 5000, 1000);		/* pool rounds up to pages */
	ASSERT_EQ(0, zc_local_pair(&a, &p, &c));
	ASSERT_EQ(0, zchan_get_attr(c, &got));
	EXPECT_EQ(16, got.ring_entries);
	EXPECT_EQ(1000, got.max_msg);
	EXPECT_LE(5000, got.pool_size);
	for (i = 0; i < 100; i++) {
		snprintf(buf, sizeof(buf), "message %d", i);
		ASSERT_EQ((ssize_t)strlen(buf) + 1,
			  zchan_send(p, buf, strlen(buf) + 1, 0));
		memset(buf, 0, sizeof(buf));
		ASSERT_LT(0, zchan_recv(c, buf, sizeof(buf), 0));
		ASSERT_EQ(i, atoi(buf + 8));
	}
	ASSERT_EQ(0, zchan_stats(p, &st));
	EXPECT_EQ(100, st.messages);
	ASSERT_EQ(0, zchan_stats(c, &st));
	EXPECT_EQ(100, st.messages);
	zchan_close(c);
	zchan_close(p);
}

TEST(emsgsize_keeps_the_message)
{
	struct zchan_attr a;
	struct zchan *p, *c;
	char big[2048], small[16];
	const void *zc;
	void *lb;

	small_attr(&a, 8, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &p, &c));
	memset(big, 0xab, sizeof(big));
	EXPECT_EQ(-EMSGSIZE, zchan_send(p, big, 1025, 0));
	EXPECT_EQ(-EMSGSIZE, zchan_loan(p, 1025, &lb, 0));
	ASSERT_EQ(1024, zchan_send(p, big, 1024, 0));
	EXPECT_EQ(-EMSGSIZE, zchan_recv(c, small, sizeof(small), 0));
	EXPECT_EQ(-EMSGSIZE, zchan_recv(c, small, sizeof(small), ZCHAN_NONBLOCK));
	ASSERT_EQ(1024, zchan_recv_zc(c, &zc, 0));
	EXPECT_EQ(0, memcmp(zc, big, 1024));
	EXPECT_EQ(0, zchan_release(c, zc));
	ASSERT_EQ(3, zchan_send(p, "abc", 3, 0));
	EXPECT_EQ(-EMSGSIZE, zchan_recv(c, small, 2, 0));
	EXPECT_EQ(3, zchan_recv(c, small, 3, 0));
	EXPECT_EQ(0, memcmp(small, "abc", 3));
	zchan_close(c);
	zchan_close(p);
}

TEST(zero_length_messages)
{
	struct zchan_attr a;
	struct zchan *p, *c;
	const void *zc;
	char buf[8];
	void *lb;
	int i;

	small_attr(&a, 8, 16384, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &p, &c));
	for (i = 0; i < 1000; i++) {
		ASSERT_EQ(0, zchan_send(p, buf, 0, 0));
		ASSERT_EQ(0, zchan_send(p, NULL, 0, 0));
		ASSERT_EQ(0, zchan_loan(p, 100, &lb, 0));
		ASSERT_EQ(0, zchan_abort(p, lb));		/* dropped */
		ASSERT_EQ(1, zchan_send(p, "x", 1, 0));
		ASSERT_EQ(0, zchan_recv(c, buf, sizeof(buf), 0));
		ASSERT_EQ(0, zchan_recv_zc(c, &zc, 0));
		ASSERT_NE(NULL, zc);
		ASSERT_EQ(0, zchan_release(c, zc));
		ASSERT_EQ(1, zchan_recv(c, buf, 0 + 1, 0));	/* skip drop */
		ASSERT_EQ('x', buf[0]);
		ASSERT_EQ(-EAGAIN, zchan_recv(c, buf, 1, ZCHAN_NONBLOCK));
	}
	zchan_close(c);
	zchan_close(p);
}

TEST(nonblock_full_and_empty)
{
	struct zchan_attr a;
	struct zchan *p, *c;
	char buf[512] = { 0 };
	int i, n = 0;
	void *lb;

	small_attr(&a, 8, 16384, 512);
	ASSERT_EQ(0, zc_local_pair(&a, &p, &c));
	EXPECT_EQ(-EAGAIN, zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK));
	EXPECT_EQ(-ETIME, zchan_wait(c, 0));
	EXPECT_EQ(-ETIME, zchan_wait(c, 1000000));	/* 1 ms */
	EXPECT_EQ(POLLOUT, zchan_wait(p, 0));
	for (i = 0; i < 100; i++) {
		ssize_t r = zchan_send(p, buf, sizeof(buf), ZCHAN_NONBLOCK);

		if (r == -EAGAIN)
			break;
		ASSERT_EQ(512, r);
		n++;
	}
	EXPECT_EQ(8, n);	/* ring of 8 entries */
	EXPECT_EQ(-EAGAIN, zchan_loan(p, 8, &lb, ZCHAN_NONBLOCK));
	EXPECT_EQ(-ETIME, zchan_wait(p, 0));
	EXPECT_EQ(POLLIN, zchan_wait(c, -1));
	EXPECT_EQ(POLLIN, zchan_poll(c));
	ASSERT_EQ(512, zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK));
	EXPECT_EQ(POLLOUT, zchan_wait(p, 1000000));
	ASSERT_EQ(512, zchan_send(p, buf, sizeof(buf), ZCHAN_NONBLOCK));
	for (i = 0; i < 8; i++)
		ASSERT_EQ(512, zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK));
	EXPECT_EQ(-EAGAIN, zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK));
	zchan_close(c);
	zchan_close(p);
}

/* Loans held by this end can't be waited for: -ENOBUFS, not a hang. */
TEST(own_loans_fill_the_pool)
{
	struct zchan_attr a;
	struct zchan *p, *c;
	char buf[8];
	void *lb[8];
	int i;

	small_attr(&a, 8, 16384, 4096);
	ASSERT_EQ(0, zc_local_pair(&a, &p, &c));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, zchan_loan(p, 4096, &lb[i], 0));
	EXPECT_EQ(-ENOBUFS, zchan_loan(p, 4096, &lb[4], 0));
	EXPECT_EQ(-ENOBUFS, zchan_send(p, "x", 1, 0));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, zchan_abort(p, lb[i]));
	/* the drops are consumed silently, the space comes back */
	EXPECT_EQ(-EAGAIN, zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK));
	EXPECT_EQ(1, zchan_send(p, "x", 1, 0));
	EXPECT_EQ(1, zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK));
	zchan_close(c);
	zchan_close(p);
}

/*
 * Commits in any order (and drops) publish in loan order, never past an
 * uncommitted loan; releases in any order give the space back: 2000
 * rounds through a small pool would wedge on any leak.
 */
TEST(out_of_order_commit_and_release)
{
	struct zchan_attr a;
	struct zchan *p, *c;
	uint64_t seq = 0, rseq = 0;
	int round;

	small_attr(&a, 8, 16384, 2048);
	ASSERT_EQ(0, zc_local_pair(&a, &p, &c));
	for (round = 0; round < 2000; round++) {
		uint64_t r = zc_mix64(round);
		unsigned int n = 1 + r % 4, i, k, got = 0, dropped;
		void *lb[4];
		uint32_t len[4];
		uint64_t sq[4];
		const void *zc[4];
		size_t zl[4];

		dropped = (r >> 8) % 6;	/* < 4: that loan is dropped */
		for (i = 0; i < n; i++) {
			sq[i] = seq++;
			len[i] = msg_len(sq[i], 1000);
			ASSERT_EQ(0, zchan_loan(p, len[i] ? len[i] : 1, &lb[i],
						ZCHAN_NONBLOCK));
			zc_payload_fill(lb[i], len[i], 0, sq[i]);
		}
		/* commit from the last to the first */
		for (k = n; k-- > 0;) {
			if (k == dropped || (!len[k] && k != 0)) {
				ASSERT_EQ(0, zchan_abort(p, lb[k]));
			} else {
				ASSERT_EQ(0, zchan_commit(p, lb[k],
							  len[k] ? len[k] : 1));
			}
			if (k) {
				/* loan 0 is still open: nothing visible */
				ASSERT_EQ(-EAGAIN, zchan_recv_zc(c, &zc[0],
								 ZCHAN_NONBLOCK));
			}
		}
		for (i = 0; i < n; i++) {
			bool sent = !(i == dropped || (!len[i] && i != 0));

			if (!sent)
				continue;
			ASSERT_EQ(len[i] ? len[i] : 1,
				  zchan_recv_zc(c, &zc[got], ZCHAN_NONBLOCK));
			zl[got] = len[i] ? len[i] : 1;
			if (len[i])
				ASSERT_TRUE(check_msg(zc[got], zl[got], sq[i], 1000));
			got++;
		}
		ASSERT_EQ(-EAGAIN, zchan_recv_zc(c, &zc[3], ZCHAN_NONBLOCK));
		/* release in a rotating order */
		for (k = 0; k < got; k++)
			ASSERT_EQ(0, zchan_release(c, zc[(k + round) % got]));
		rseq += got;
	}
	ASSERT_LT(2000, rseq);
	zchan_close(c);
	zchan_close(p);
}

TEST(recv_batch)
{
	struct zchan_attr a;
	struct zchan *p, *c;
	struct zchan_msg m[8];
	int i, n;

	small_attr(&a, 16, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &p, &c));
	for (i = 0; i < 10; i++)
		ASSERT_EQ(1, zchan_send(p, &i, 1, 0));
	n = zchan_recv_batch(c, m, 8, 0);
	ASSERT_EQ(8, n);
	for (i = 0; i < 8; i++) {
		ASSERT_EQ(1, m[i].len);
		ASSERT_EQ(i, *(const unsigned char *)m[i].buf);
	}
	for (i = 7; i >= 0; i--)
		ASSERT_EQ(0, zchan_release(c, m[i].buf));
	ASSERT_EQ(2, zchan_recv_batch(c, m, 8, ZCHAN_NONBLOCK));
	ASSERT_EQ(0, zchan_release(c, m[1].buf));
	ASSERT_EQ(0, zchan_release(c, m[0].buf));
	ASSERT_EQ(-EAGAIN, zchan_recv_batch(c, m, 8, ZCHAN_NONBLOCK));
	zchan_close(c);
	zchan_close(p);
}

/* ------------------------------------------------------------------ */
/* The long stream: random sizes, copy and zero-copy on both ends.      */

#define STREAM_MAX 16384

static int stream_producer(struct zchan *p, void *arg)
{
	long n = *(long *)arg, seq;
	static unsigned char buf[STREAM_MAX];

	for (seq = 0; seq < n; seq++) {
		uint32_t len = msg_len((uint64_t)seq, STREAM_MAX);
		void *lb;

		if (seq % 3 == 0) {
			zc_payload_fill(buf, len, 0, (uint64_t)seq);
			if (zchan_send(p, buf, len, 0) != (ssize_t)len)
				return 1;
		} else if (!len) {
			if (zchan_send(p, buf, 0, 0))
				return 2;
		} else {
			/* loan more than needed, commit what was written */
			if (zchan_loan(p, len + (len < STREAM_MAX ? 1 : 0), &lb, 0))
				return 3;
			zc_payload_fill(lb, len, 0, (uint64_t)seq);
			if (zchan_commit(p, lb, len))
				return 4;
		}
	}
	return 0;
}

static void stream_run(struct __test_metadata *_metadata,
		       unsigned int entries, size_t pool, long n)
{
	static unsigned char buf[STREAM_MAX];
	struct zchan_stats st;
	struct zchan_attr a;
	struct zchan *c;
	long seq = 0;
	pid_t pid;

	small_attr(&a, entries, pool, STREAM_MAX);
	pid = zc_spawn_producer(&a, stream_producer, &n, &c);
	ASSERT_LT(0, pid);
	while (seq < n) {
		const void *held[4];
		struct zchan_msg m[4];
		ssize_t r;
		int k, j;

		switch (seq % 4) {
		case 0:
		case 1:
			r = zchan_recv(c, buf, sizeof(buf), 0);
			ASSERT_LE(0, r);
			ASSERT_TRUE(check_msg(buf, r, seq, STREAM_MAX));
			seq++;
			break;
		case 2:
			/* borrow up to 4, release them newest first */
			for (k = 0; k < 4 && seq < n; k++) {
				r = zchan_recv_zc(c, &held[k], k ? ZCHAN_NONBLOCK : 0);
				if (r == -EAGAIN)
					break;
				ASSERT_LE(0, r);
				ASSERT_TRUE(check_msg(held[k], r, seq, STREAM_MAX));
				seq++;
			}
			while (k-- > 0)
				ASSERT_EQ(0, zchan_release(c, held[k]));
			break;
		default:
			k = zchan_recv_batch(c, m, seq + 4 <= n ? 4 : 1, 0);
			ASSERT_LT(0, k);
			for (j = 0; j < k; j++, seq++)
				ASSERT_TRUE(check_msg(m[j].buf, m[j].len, seq, STREAM_MAX));
			for (j = 0; j < k; j++)
				ASSERT_EQ(0, zchan_release(c, m[(j + 1) % k].buf));
			break;
		}
	}
	/* the producer closed after its last message */
	EXPECT_EQ(-EPIPE, zchan_recv(c, buf, sizeof(buf), 0));
	zc_child_exits(pid, 0);
	ASSERT_EQ(0, zchan_stats(c, &st));
	EXPECT_EQ((uint64_t)n, st.messages);
	TH_LOG("%ld messages, %llu bytes, %llu waits, %llu kicks", n,
	       (unsigned long long)st.bytes, (unsigned long long)st.waits,
	       (unsigned long long)st.kicks);
	zchan_close(c);
}

TEST(stream_random_sizes_checksums)
{
	stream_run(_metadata, 256, 1 << 20, test_msgs());
}

/* A ring of 4 and a pool of 4 big messages: both ends sleep all the time. */
TEST(stream_tiny_ring)
{
	stream_run(_metadata, 4, 4 * STREAM_MAX, test_msgs() / 10);
}

/* Both ends in one process, one thread each (a handle per thread). */
struct thread_arg {
	struct zchan *p;
	long n;
};

static void *thread_producer(void *arg)
{
	struct thread_arg *t = arg;

	return (void *)(intptr_t)stream_producer(t->p, &t->n);
}

TEST(threads_in_one_process)
{
	static unsigned char buf[STREAM_MAX];
	struct thread_arg t;
	struct zchan_attr a;
	struct zchan *c;
	pthread_t th;
	void *ret;
	long seq;

	/*
	 * valgrind holds its big lock across io_uring_enter(), so a thread
	 * sleeping there starves the other one (liburing issue #657, KDE
	 * bug 463859): under valgrind (lib-valgrind) sleep in poll instead.
	 */
	if (getenv("ZCHAN_TEST_VALGRIND"))
		setenv("ZCHAN_WAIT", "syscall", 1);
	t.n = test_msgs() / 10;
	small_attr(&a, 64, 1 << 18, STREAM_MAX);
	ASSERT_EQ(0, zc_local_pair(&a, &t.p, &c));
	ASSERT_EQ(0, pthread_create(&th, NULL, thread_producer, &t));
	for (seq = 0; seq < t.n; seq++) {
		ssize_t r = zchan_recv(c, buf, sizeof(buf), 0);

		ASSERT_LE(0, r);
		ASSERT_TRUE(check_msg(buf, r, seq, STREAM_MAX));
	}
	ASSERT_EQ(0, pthread_join(th, &ret));
	EXPECT_EQ(NULL, ret);
	zchan_close(t.p);
	EXPECT_EQ(-EPIPE, zchan_recv(c, buf, sizeof(buf), 0));
	zchan_close(c);
}

/* ------------------------------------------------------------------ */
/* Peer death                                                           */

static volatile uint64_t *shared_counter(void)
{
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return m == MAP_FAILED ? NULL : m;
}

struct endless {
	volatile uint64_t *committed;
};

static int endless_producer(struct zchan *p, void *arg)
{
	struct endless *e = arg;
	static unsigned char buf[2048];
	uint64_t seq;

	for (seq = 0;; seq++) {
		uint32_t len = msg_len(seq, 2048);

		zc_payload_fill(buf, len, 0, seq);
		if (zchan_send(p, buf, len, 0) != (ssize_t)len)
			return 1;
		__atomic_store_n(e->committed, seq + 1, __ATOMIC_RELEASE);
	}
}

TEST(producer_sigkill_mid_stream)
{
	static unsigned char buf[2048];
	struct zchan_attr a;
	struct endless e;
	struct zchan *c;
	uint64_t seq = 0, committed;
	struct pollfd pfd;
	ssize_t r;
	pid_t pid;

	e.committed = shared_counter();
	ASSERT_NE(NULL, e.committed);
	small_attr(&a, 64, 65536, 2048);
	pid = zc_spawn_producer(&a, endless_producer, &e, &c);
	ASSERT_LT(0, pid);
	for (; seq < 2000; seq++) {
		r = zchan_recv(c, buf, sizeof(buf), 0);
		ASSERT_LE(0, r);
		ASSERT_TRUE(check_msg(buf, r, seq, 2048));
	}
	ASSERT_EQ(0, kill(pid, SIGKILL));
	zc_child_killed(pid, SIGKILL);
	committed = __atomic_load_n(e.committed, __ATOMIC_ACQUIRE);
	for (;; seq++) {
		r = zchan_recv(c, buf, sizeof(buf), 0);
		if (r == -EPIPE)
			break;
		ASSERT_LE(0, r);
		ASSERT_TRUE(check_msg(buf, r, seq, 2048));
	}
	/* everything committed arrived (one more may have been published) */
	EXPECT_LE(committed, seq);
	EXPECT_GE(committed + 1, seq);
	EXPECT_EQ(-EPIPE, zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK));
	EXPECT_EQ(POLLHUP, zchan_poll(c));
	pfd.fd = zchan_fd(c);
	pfd.events = POLLIN;
	ASSERT_EQ(1, poll(&pfd, 1, 10000));
	if (zchan_backend(c) == ZCHAN_BACKEND_KERNEL) {
		EXPECT_TRUE(pfd.revents & POLLHUP);
	} else {
		EXPECT_TRUE(pfd.revents & POLLIN);	/* epoll fd: readable */
	}
	zchan_close(c);
}

TEST(consumer_sigkill)
{
	struct zchan_attr a;
	struct zchan *p, *c;
	char buf[256] = { 0 };
	int sv[2], i, ret = 0;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* a consumer that reads a little and then hangs around */
		close(sv[0]);
		if (zchan_recv_peer(sv[1], &c))
			_exit(1);
		for (i = 0; i < 10; i++)
			if (zchan_recv(c, buf, sizeof(buf), 0) < 0)
				_exit(2);
		if (write(sv[1], "r", 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	close(sv[1]);
	small_attr(&a, 16, 65536, 256);
	ASSERT_EQ(0, zchan_create(NULL, &a, &p));
	ASSERT_EQ(0, zchan_send_peer(p, sv[0]));
	for (i = 0; i < 10; i++)
		ASSERT_EQ(256, zchan_send(p, buf, sizeof(buf), 0));
	/* wait until it has taken them */
	ASSERT_EQ(1, read(sv[0], buf, 1));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	zc_child_killed(pid, SIGKILL);
	for (i = 0; i < 1000; i++) {
		ret = (int)zchan_send(p, buf, sizeof(buf), 0);
		if (ret < 0)
			break;
	}
	EXPECT_EQ(-EPIPE, ret);
	EXPECT_EQ(-EPIPE, zchan_send(p, buf, 1, ZCHAN_NONBLOCK));
	EXPECT_EQ(POLLERR | POLLHUP, zchan_poll(p));
	zchan_close(p);
	close(sv[0]);
}

static int close_after_three(struct zchan *p, void *arg)
{
	int i;

	for (i = 0; i < 3; i++)
		if (zchan_send(p, &i, sizeof(i), 0) != sizeof(i))
			return 1;
	return 0;	/* spawn_producer closes the handle */
}

TEST(clean_close_drains_then_epipe)
{
	struct zchan *c;
	int i, v;
	pid_t pid;

	pid = zc_spawn_producer(NULL, close_after_three, NULL, &c);
	ASSERT_LT(0, pid);
	zc_child_exits(pid, 0);
	EXPECT_EQ(POLLIN | POLLHUP, zchan_wait(c, -1));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(sizeof(v), zchan_recv(c, &v, sizeof(v), 0));
		ASSERT_EQ(i, v);
	}
	EXPECT_EQ(-EPIPE, zchan_recv(c, &v, sizeof(v), 0));
	EXPECT_EQ(POLLHUP, zchan_wait(c, -1));
	zchan_close(c);
}

/* ------------------------------------------------------------------ */
/* fd passing                                                           */

TEST(fd_passing_to_another_process)
{
	struct zchan *p, *c;
	int sv[2], i;
	char buf[64];
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* the consumer echoes a sum over the socket */
		unsigned int sum = 0;

		close(sv[0]);
		if (zchan_recv_peer(sv[1], &c))
			_exit(1);
		for (;;) {
			ssize_t r = zchan_recv(c, buf, sizeof(buf), 0);

			if (r == -EPIPE)
				break;
			if (r != 4)
				_exit(2);
			sum += *(unsigned int *)buf;
		}
		if (write(sv[1], &sum, sizeof(sum)) != sizeof(sum))
			_exit(3);
		zchan_close(c);
		_exit(0);
	}
	close(sv[1]);
	ASSERT_EQ(0, zchan_create(NULL, NULL, &p));
	ASSERT_EQ(0, zchan_send_peer(p, sv[0]));
	/* one consumer end per channel */
	EXPECT_EQ(-EBUSY, zchan_send_peer(p, sv[0]));
	for (i = 1; i <= 1000; i++)
		ASSERT_EQ(4, zchan_send(p, &i, 4, 0));
	zchan_close(p);
	ASSERT_EQ(4, read(sv[0], &i, 4));
	EXPECT_EQ(500500, i);
	zc_child_exits(pid, 0);
	close(sv[0]);
}

/* A handoff that fails to send is kept for the next try, not lost. */
TEST(send_peer_retries_after_failure)
{
	struct zchan *p, *c;
	int sv[2], full[2];
	char buf[8];

	ASSERT_EQ(0, zchan_create(NULL, NULL, &p));
	/* a closed peer: EPIPE; then a working socket */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, full));
	close(full[1]);
	EXPECT_EQ(-EPIPE, zchan_send_peer(p, full[0]));
	close(full[0]);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, zchan_send_peer(p, sv[0]));
	ASSERT_EQ(0, zchan_recv_peer(sv[1], &c));
	ASSERT_EQ(2, zchan_send(p, "ok", 2, 0));
	ASSERT_EQ(2, zchan_recv(c, buf, sizeof(buf), 0));
	close(sv[0]);
	close(sv[1]);
	zchan_close(c);
	zchan_close(p);
}

TEST(recv_peer_rejects_garbage)
{
	struct zchan *c;
	char junk[200];
	int sv[2];

	/* datagrams: the junk is one message, truncated by recv_peer */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	memset(junk, 0x5a, sizeof(junk));
	ASSERT_EQ(sizeof(junk), write(sv[0], junk, sizeof(junk)));
	EXPECT_EQ(-EPROTO, zchan_recv_peer(sv[1], &c));
	close(sv[0]);
	EXPECT_EQ(-EPIPE, zchan_recv_peer(sv[1], &c));
	close(sv[1]);
}

/* Capture what zchan_send_peer() sends: its bytes and its fds. */
struct handoff {
	char bytes[512];
	ssize_t len;
	int fds[8];
	int nfds;
};

static int capture_handoff(struct zchan *p, struct handoff *h)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { h->bytes, sizeof(h->bytes) };
	struct msghdr msg = { 0 };
	struct cmsghdr *cm;
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
		return -errno;
	ret = zchan_send_peer(p, sv[0]);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	h->len = ret ? -1 : recvmsg(sv[1], &msg, 0);
	h->nfds = 0;
	cm = CMSG_FIRSTHDR(&msg);
	if (h->len > 0 && cm && cm->cmsg_type == SCM_RIGHTS) {
		h->nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		memcpy(h->fds, CMSG_DATA(cm), h->nfds * sizeof(int));
	}
	close(sv[0]);
	close(sv[1]);
	return ret ? ret : (h->len > 0 ? 0 : -EIO);
}

/* Replay a handoff, with fd @i replaced by @fd (if i >= 0). */
static int replay_handoff(const struct handoff *h, int i, int fd,
			  struct zchan **c)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)h->bytes, h->len };
	struct msghdr msg = { 0 };
	struct cmsghdr *cm;
	int sv[2], fds[8], ret;

	memcpy(fds, h->fds, sizeof(fds));
	if (i >= 0)
		fds[i] = fd;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
		return -errno;
	memset(&u, 0, sizeof(u));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * h->nfds);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * h->nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * h->nfds);
	ret = sendmsg(sv[0], &msg, 0) == h->len ? 0 : -EIO;
	if (!ret)
		ret = zchan_recv_peer(sv[1], c);
	close(sv[0]);
	close(sv[1]);
	return ret;
}

/* A peer that forges the handle it hands over is refused, not trusted. */
TEST(recv_peer_rejects_forged_handles)
{
	struct zchan_attr a;
	struct handoff h, bad;
	struct zchan *p, *c;
	int pfd[2], i, mfd;
	uint32_t three = 3;
	char buf[8];

	small_attr(&a, 16, 65536, 1024);
	ASSERT_EQ(0, zchan_create(NULL, &a, &p));
	ASSERT_EQ(0, capture_handoff(p, &h));
	ASSERT_LT(0, h.nfds);
	if (zchan_backend(p) == ZCHAN_BACKEND_KERNEL) {
		/* the producer's own file instead of a consumer end */
		EXPECT_EQ(-EPROTO, replay_handoff(&h, 0, zchan_fd(p), &c));
	} else {
		ASSERT_EQ(5, h.nfds);
		ASSERT_EQ(0, pipe(pfd));
		/* a pipe where an eventfd belongs (our drain would block) */
		EXPECT_EQ(-EPROTO, replay_handoff(&h, 2, pfd[0], &c));
		EXPECT_EQ(-EPROTO, replay_handoff(&h, 4, pfd[0], &c));
		/* an unsealed, empty memfd as the pool */
		mfd = memfd_create("forged", 0);
		ASSERT_LE(0, mfd);
		EXPECT_EQ(-EPROTO, replay_handoff(&h, 0, mfd, &c));
		EXPECT_EQ(-EPROTO, replay_handoff(&h, 1, mfd, &c));
		close(mfd);
		close(pfd[0]);
		close(pfd[1]);
		/* an impossible layout: 3 ring entries (after the 16-byte
		 * header, pool_size, then ring_entries) */
		bad = h;
		memcpy(bad.bytes + 16 + 8, &three, sizeof(three));
		EXPECT_EQ(-EPROTO, replay_handoff(&bad, -1, -1, &c));
		/* one fd short */
		bad = h;
		bad.nfds = 4;
		EXPECT_EQ(-EPROTO, replay_handoff(&bad, -1, -1, &c));
	}
	/* the genuine handle still works */
	ASSERT_EQ(0, replay_handoff(&h, -1, -1, &c));
	ASSERT_EQ(2, zchan_send(p, "ok", 2, 0));
	ASSERT_EQ(2, zchan_recv(c, buf, sizeof(buf), 0));
	for (i = 0; i < h.nfds; i++)
		close(h.fds[i]);
	zchan_close(c);
	zchan_close(p);
}

/* ------------------------------------------------------------------ */
/* One io_uring waiting on 100 channels and a socket                    */

#define NCHAN 100

struct fanout {
	int sock;	/* where the producer writes "done" */
	int go;		/* read end: the parent says start / exit */
	int rounds;
};

static int fanout_producers(int peer_sock, struct fanout *f)
{
	struct zchan *p[NCHAN];
	struct zchan_attr a;
	int i, r, order[NCHAN];
	char x;

	small_attr(&a, 16, 16384, 64);
	for (i = 0; i < NCHAN; i++) {
		if (zchan_create(NULL, &a, &p[i]) || zchan_send_peer(p[i], peer_sock))
			return 1;
		order[i] = i;
	}
	if (read(f->go, &x, 1) != 1)
		return 2;
	for (r = 0; r < f->rounds; r++) {
		for (i = NCHAN - 1; i > 0; i--) {	/* shuffle */
			int j = (int)(zc_mix64((uint64_t)r * NCHAN + i) % (i + 1));
			int t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		for (i = 0; i < NCHAN; i++) {
			int msg[2] = { order[i], r };

			if (zchan_send(p[order[i]], msg, sizeof(msg), 0) != sizeof(msg))
				return 3;
		}
	}
	if (write(f->sock, "done", 4) != 4)
		return 4;
	(void)!read(f->go, &x, 1);	/* EOF: the parent is finished */
	for (i = 0; i < NCHAN; i++)
		zchan_close(p[i]);
	return 0;
}

TEST(io_uring_waits_on_100_channels_and_a_socket)
{
	struct zchan *c[NCHAN];
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	struct rlimit rl;
	struct fanout f;
	int sv[2], ds[2], go[2], next[NCHAN], i, total = 0;
	bool sock_done = false;
	char dbuf[8];
	pid_t pid;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	f.rounds = expected_backend() == ZCHAN_BACKEND_KERNEL ? 5 : 50;
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, ds));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(sv[1]);
		close(ds[0]);
		close(go[1]);
		f.sock = ds[1];
		f.go = go[0];
		_exit(fanout_producers(sv[0], &f));
	}
	close(sv[0]);
	close(ds[1]);
	close(go[0]);
	for (i = 0; i < NCHAN; i++) {
		ASSERT_EQ(0, zchan_recv_peer(sv[1], &c[i]));
		next[i] = 0;
	}
	ASSERT_EQ(0, io_uring_queue_init(2 * NCHAN, &ring, 0));
	for (i = 0; i < NCHAN; i++) {
		sqe = io_uring_get_sqe(&ring);
		ASSERT_NE(NULL, sqe);
		zchan_prep_wait(sqe, c[i]);
		io_uring_sqe_set_data64(sqe, i);
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_poll_add(sqe, ds[0], POLLIN);
	io_uring_sqe_set_data64(sqe, 1000);
	ASSERT_EQ(NCHAN + 1, io_uring_submit(&ring));
	ASSERT_EQ(1, write(go[1], "g", 1));

	while (total < NCHAN * f.rounds || !sock_done) {
		uint64_t ud;

		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		ud = io_uring_cqe_get_data64(cqe);
		ASSERT_LT(0, cqe->res);		/* a poll mask */
		io_uring_cqe_seen(&ring, cqe);
		if (ud == 1000) {
			ASSERT_EQ(4, read(ds[0], dbuf, sizeof(dbuf)));
			sock_done = true;
			continue;
		}
		ASSERT_LT(ud, NCHAN);
		for (;;) {
			int msg[2];
			ssize_t r = zchan_recv(c[ud], msg, sizeof(msg),
					       ZCHAN_NONBLOCK);

			if (r == -EAGAIN)
				break;
			ASSERT_EQ(sizeof(msg), r);
			ASSERT_EQ((int)ud, msg[0]);
			ASSERT_EQ(next[ud], msg[1]);
			next[ud]++;
			total++;
		}
		if (next[ud] < f.rounds) {
			sqe = io_uring_get_sqe(&ring);
			zchan_prep_wait(sqe, c[ud]);
			io_uring_sqe_set_data64(sqe, ud);
			ASSERT_EQ(1, io_uring_submit(&ring));
		}
	}
	for (i = 0; i < NCHAN; i++)
		EXPECT_EQ(f.rounds, next[i]);
	close(go[1]);
	zc_child_exits(pid, 0);
	io_uring_queue_exit(&ring);
	for (i = 0; i < NCHAN; i++)
		zchan_close(c[i]);
	close(sv[1]);
	close(ds[0]);
}

/* ------------------------------------------------------------------ */
/* A hostile peer scribbling on its own (writable) ring pages           */

/*
 * This process's writable shared mapping of a file whose name has @name,
 * at the lowest offset or with @highest the highest: the ring, the end
 * page.
 */
static void *own_mapping(const char *name, bool highest)
{
	unsigned long start, end, off, best_off = highest ? 0 : ULONG_MAX;
	void *best = NULL;
	char line[512], perms[8], path[256];
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		path[0] = 0;
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %255[^\n]", &start,
			   &end, perms, &off, path) < 4)
			continue;
		if (!strstr(path, name) || perms[1] != 'w' || perms[3] != 's')
			continue;
		if (highest ? off >= best_off : off < best_off) {
			best_off = off;
			best = (void *)start;
		}
	}
	fclose(f);
	return best;
}

/* The lowest-offset writable shared mapping of the channel: its ring. */
static void *own_ring_mapping(void)
{
	return own_mapping("zchan", false);
}

/*
 * Where the ring's words are: the layout's offsets, the one description
 * of the ring, as zchan_layout_set_words() places them for both backends.
 */
static struct zchan_layout ring_layout(uint32_t ring_entries)
{
	struct zchan_layout l = { .ring_entries = ring_entries };

	zchan_layout_set_words(&l);
	return l;
}

enum scribble {
	TAIL_FAR_AHEAD,
	TAIL_BACKWARDS,
	DESC_OUT_OF_POOL,
	DESC_TOO_LONG,
	DESC_BAD_FLAGS,
};

struct hostile {
	int cmd;	/* read end: "scribble now", then EOF: exit */
	int cmd_w;	/* its write end, the parent's */
	int ack;	/* write end: "scribbled" */
	enum scribble how;
};

static int hostile_producer(struct zchan *p, void *arg)
{
	struct hostile *h = arg;
	struct zchan_layout l;
	struct zchan_attr a;
	struct zchan_desc *d;
	void *r;
	char x;
	int i;

	close(h->cmd_w);
	for (i = 0; i < 3; i++)
		if (zchan_send(p, "ok", 2, 0) != 2)
			return 1;
	if (read(h->cmd, &x, 1) != 1)
		return 2;
	r = own_ring_mapping();
	if (!r || zchan_get_attr(p, &a))
		return 3;
	l = ring_layout(a.ring_entries);
	d = zc_desc(r, &l, 3);
	/* the consumer has read 3: tail is 3 */
	switch (h->how) {
	case TAIL_FAR_AHEAD:
		ZC_PROD_WORD(r, &l, tail) = 3 + a.ring_entries + 7;
		break;
	case TAIL_BACKWARDS:
		ZC_PROD_WORD(r, &l, tail) = 1;
		break;
	case DESC_OUT_OF_POOL:
		d->off = a.pool_size - 8;
		d->len = 64;
		d->flags = 0;
		__atomic_store_n(&ZC_PROD_WORD(r, &l, tail), 4,
				 __ATOMIC_RELEASE);
		break;
	case DESC_TOO_LONG:
		d->off = 0;
		d->len = (uint32_t)a.max_msg + 1;
		d->flags = 0;
		__atomic_store_n(&ZC_PROD_WORD(r, &l, tail), 4,
				 __ATOMIC_RELEASE);
		break;
	case DESC_BAD_FLAGS:
		d->off = ~0ULL;
		d->len = ~0U;
		d->flags = ~0U;
		__atomic_store_n(&ZC_PROD_WORD(r, &l, tail), 4,
				 __ATOMIC_RELEASE);
		break;
	}
	if (write(h->ack, "d", 1) != 1)
		return 4;
	/* stay alive (and silent) until the parent is done */
	(void)!read(h->cmd, &x, 1);
	return 0;
}

static int run_hostile_producer(enum scribble how)
{
	struct zchan_attr a;
	struct hostile h;
	struct zchan *c;
	int cmd[2], ack[2], i, ret;
	char buf[64];
	pid_t pid;

	if (pipe(cmd) || pipe(ack))
		return -100;
	h.cmd = cmd[0];
	h.cmd_w = cmd[1];
	h.ack = ack[1];
	h.how = how;
	small_attr(&a, 8, 16384, 1024);
	pid = zc_spawn_producer(&a, hostile_producer, &h, &c);
	if (pid < 0)
		return -101;
	close(cmd[0]);
	for (i = 0; i < 3; i++)
		if (zchan_recv(c, buf, sizeof(buf), 0) != 2)
			return -102;
	/* the garbage is in place before we look (no kick comes) */
	if (write(cmd[1], "s", 1) != 1 || read(ack[0], buf, 1) != 1)
		return -103;
	ret = (int)zchan_recv(c, buf, sizeof(buf), 0);
	/* sticky, and every path reports it */
	if (zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK) != ret ||
	    zchan_poll(c) != ret)
		ret = -104;
	close(cmd[1]);
	close(ack[0]);
	close(ack[1]);
	if (zc_child_wait(pid, -1))
		ret = -105;
	zchan_close(c);
	return ret;
}

TEST(hostile_producer_tail_far_ahead)
{
	EXPECT_EQ(-EPROTO, run_hostile_producer(TAIL_FAR_AHEAD));
}

TEST(hostile_producer_tail_backwards)
{
	EXPECT_EQ(-EPROTO, run_hostile_producer(TAIL_BACKWARDS));
}

TEST(hostile_producer_desc_out_of_pool)
{
	EXPECT_EQ(-EPROTO, run_hostile_producer(DESC_OUT_OF_POOL));
}

TEST(hostile_producer_desc_too_long)
{
	EXPECT_EQ(-EPROTO, run_hostile_producer(DESC_TOO_LONG));
}

TEST(hostile_producer_desc_bad_flags)
{
	EXPECT_EQ(-EPROTO, run_hostile_producer(DESC_BAD_FLAGS));
}

/*
 * A producer that dies with a loan outstanding and a message committed
 * behind it, after scribbling on its alloc word or on the placeholder:
 * an inconsistent alloc (below tail, or beyond head + entries) is ignored
 * - the consumer gets what tail published, then -EPIPE; a placeholder
 * turned into a descriptor outside the pool is -EPROTO.  Never a crash.
 */
static bool module_has_feature(unsigned int feature);

enum alloc_scribble {
	ALLOC_BELOW_TAIL,
	ALLOC_FAR_AHEAD,
	ALLOC_PLACEHOLDER_OUT_OF_POOL,
};

static int alloc_scribbler(struct zchan *p, void *arg)
{
	enum alloc_scribble how = *(enum alloc_scribble *)arg;
	struct zchan_layout l;
	struct zchan_attr a;
	void *loan, *r;
	int i;

	for (i = 0; i < 2; i++)
		if (zchan_send(p, "ok", 2, 0) != 2)
			return 1;
	/* slot 2 on loan, slot 3 committed behind it: tail 2, alloc 4 */
	if (zchan_loan(p, 8, &loan, 0) || zchan_send(p, "lost", 4, 0) != 4)
		return 2;
	r = own_ring_mapping();
	if (!r || zchan_get_attr(p, &a))
		return 3;
	l = ring_layout(a.ring_entries);
	switch (how) {
	case ALLOC_BELOW_TAIL:
		__atomic_store_n(&ZC_PROD_WORD(r, &l, alloc), 1,
				 __ATOMIC_RELEASE);
		break;
	case ALLOC_FAR_AHEAD:
		__atomic_store_n(&ZC_PROD_WORD(r, &l, alloc),
				 2 + a.ring_entries + 1, __ATOMIC_RELEASE);
		break;
	case ALLOC_PLACEHOLDER_OUT_OF_POOL:
		zc_desc(r, &l, 2)->off = a.pool_size - 8;
		zc_desc(r, &l, 2)->len = 64;
		__atomic_store_n(&zc_desc(r, &l, 2)->flags, 0, __ATOMIC_RELEASE);
		break;
	}
	_exit(42);	/* no zchan_close(): a death */
}

static int run_alloc_scribble(enum alloc_scribble how)
{
	struct zchan_attr a;
	struct zchan *c;
	char buf[64];
	int i, ret;
	pid_t pid;

	small_attr(&a, 8, 16384, 1024);
	pid = zc_spawn_producer(&a, alloc_scribbler, &how, &c);
	if (pid < 0)
		return -101;
	ret = zc_child_wait(pid, -1) == 42 ? 0 : -102;
	for (i = 0; i < 2 && !ret; i++)
		if (zchan_recv(c, buf, sizeof(buf), 0) != 2)
			ret = -103;
	if (!ret)
		ret = (int)zchan_recv(c, buf, sizeof(buf), 0);
	/* and it stays so */
	if (zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK) != ret)
		ret = -104;
	zchan_close(c);
	return ret;
}

TEST(hostile_producer_dies_with_alloc_below_tail)
{
	EXPECT_EQ(-EPIPE, run_alloc_scribble(ALLOC_BELOW_TAIL));
}

TEST(hostile_producer_dies_with_alloc_far_ahead)
{
	EXPECT_EQ(-EPIPE, run_alloc_scribble(ALLOC_FAR_AHEAD));
}

TEST(hostile_producer_dies_with_placeholder_out_of_pool)
{
	/* published only by a consumer or module that publishes on close */
	bool published = expected_backend() == ZCHAN_BACKEND_MEMFD ||
			 module_has_feature(ZCHAN_FEAT_PUBLISH_ON_CLOSE);

	EXPECT_EQ(published ? -EPROTO : -EPIPE,
		  run_alloc_scribble(ALLOC_PLACEHOLDER_OUT_OF_POOL));
}

TEST(hostile_consumer_head_garbage)
{
	struct zchan_attr a;
	struct zchan *p, *c;
	int sv[2], cmd[2], i, ret = 0;
	char buf[64] = { 0 }, x;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, pipe(cmd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* the consumer's words: no descriptor, so no ring size */
		struct zchan_layout l = ring_layout(0);
		void *r;

		close(sv[0]);
		close(cmd[0]);
		if (zchan_recv_peer(sv[1], &c))
			_exit(1);
		for (i = 0; i < 2; i++)
			if (zchan_recv(c, buf, sizeof(buf), 0) != 8)
				_exit(2);
		r = own_ring_mapping();
		if (!r)
			_exit(3);
		/* released what was never sent */
		ZC_CONS_WORD(r, &l, head) = 0x80000000U;
		ZC_CONS_WORD(r, &l, read) = 12345;
		if (write(cmd[1], "s", 1) != 1)
			_exit(4);
		pause();
		_exit(0);
	}
	close(sv[1]);
	close(cmd[1]);
	small_attr(&a, 8, 16384, 1024);
	ASSERT_EQ(0, zchan_create(NULL, &a, &p));
	ASSERT_EQ(0, zchan_send_peer(p, sv[0]));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(8, zchan_send(p, buf, 8, 0));
	ASSERT_EQ(1, read(cmd[0], &x, 1));
	for (i = 0; i < 100; i++) {
		ret = (int)zchan_send(p, buf, 8, ZCHAN_NONBLOCK);
		if (ret < 0)
			break;
	}
	EXPECT_EQ(-EPROTO, ret);
	EXPECT_EQ(-EPROTO, zchan_send(p, buf, 8, 0));
	kill(pid, SIGKILL);
	zc_child_wait(pid, -1);
	zchan_close(p);
	close(sv[0]);
	close(cmd[0]);
}

/* ------------------------------------------------------------------ */
/* Sleeping: the consumer must go to sleep in the kernel and be woken.  */

/*
 * Wait until @pid is asleep in the kernel ('S'), i.e. past its spinning:
 * what comes next must wake it.  No timing involved.
 */
static int wait_until_sleeping(pid_t pid)
{
	char path[64], buf[256], *p;
	int i, fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (i = 0; i < 600000; i++) {
		ssize_t n;

		fd = open(path, O_RDONLY);
		if (fd < 0)
			return -1;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			return -1;
		buf[n] = 0;
		p = strrchr(buf, ')');
		if (p && p[1] == ' ' && p[2] == 'S')
			return 0;
		usleep(100);
	}
	return -1;
}

/* The consumer acknowledges each message; the producer reads ack. */
struct ack_pipe {
	int ack;	/* read end, the producer's */
	int ack_w;	/* write end, the consumer's: closed in the producer */
};

static int late_producer(struct zchan *p, void *arg)
{
	struct ack_pipe *l = arg;
	char x;
	int i;

	close(l->ack_w);
	for (i = 0; i < 5; i++) {
		if (i && read(l->ack, &x, 1) != 1)
			return 1;
		if (wait_until_sleeping(getppid()))
			return 2;
		if (zchan_send(p, &i, sizeof(i), 0) != sizeof(i))
			return 3;
	}
	return 0;
}

static void sleep_and_wake(struct __test_metadata *_metadata, bool timed)
{
	struct zchan_stats st;
	struct ack_pipe l;
	struct zchan *c;
	int ack[2], i, v;
	pid_t pid;

	ASSERT_EQ(0, pipe(ack));
	l.ack = ack[0];
	l.ack_w = ack[1];
	pid = zc_spawn_producer(NULL, late_producer, &l, &c);
	ASSERT_LT(0, pid);
	close(ack[0]);
	for (i = 0; i < 5; i++) {
		if (timed) {
			int m = zchan_wait(c, 60LL * 1000000000);

			ASSERT_LT(0, m);	/* POLLIN, maybe with POLLHUP */
			ASSERT_TRUE(m & POLLIN);
		}
		ASSERT_EQ(sizeof(v), zchan_recv(c, &v, sizeof(v), 0));
		ASSERT_EQ(i, v);
		if (i < 4)
			ASSERT_EQ(1, write(ack[1], "a", 1));
	}
	close(ack[1]);
	EXPECT_EQ(POLLHUP, zchan_wait(c, timed ? 60LL * 1000000000 : -1));
	EXPECT_EQ(-EPIPE, zchan_recv(c, &v, sizeof(v), 0));
	ASSERT_EQ(0, zchan_stats(c, &st));
	EXPECT_LE(5, st.waits);	/* it slept for every message */
	zc_child_exits(pid, 0);
	zchan_close(c);
}

TEST(blocking_recv_sleeps_and_is_woken)
{
	sleep_and_wake(_metadata, false);
}

TEST(timed_wait_sleeps_and_is_woken)
{
	sleep_and_wake(_metadata, true);
}

/* The fallback without io_uring: ZCHAN_IOC_WAIT, or poll(2) on memfd. */
TEST(blocking_recv_without_io_uring)
{
	setenv("ZCHAN_WAIT", "syscall", 1);
	sleep_and_wake(_metadata, false);
}

#define SIGNAL_MSGS	50

static void on_sigusr1(int sig)
{
	(void)sig;
}

struct signalled {
	struct zchan *c;
	int got;	/* messages received in order, -1 on a wrong one */
};

/* Receives SIGNAL_MSGS messages in blocking calls, then closes its end. */
static void *signalled_consumer(void *arg)
{
	struct signalled *s = arg;
	int i, v;

	for (i = 0; i < SIGNAL_MSGS; i++) {
		if (zchan_recv(s->c, &v, sizeof(v), 0) != sizeof(v) || v != i) {
			s->got = -1;
			break;
		}
		s->got = i + 1;
	}
	zchan_close(s->c);
	return NULL;
}

/*
 * Signals (no SA_RESTART) cut the sleeps of a blocking zchan_recv() short,
 * with the memfd backend's poll and the eventfd read linked to it still in
 * flight (a few times per run here), or the kernel backend's uring_cmd
 * wait: it must go on waiting for those, not submit more, and get every
 * message.  Then its thread closes the end, which reaps whatever is still
 * in flight (rarely anything: the read would write into the freed handle)
 * - SANITIZE=1 checks that nothing does - or, for the kernel backend,
 * leaves the module to cancel its wait (the guest's kernel log is
 * checked).  Under valgrind (lib-valgrind) the sleep is poll(2), as in
 * threads_in_one_process: valgrind's lock across io_uring_enter() would
 * starve the sending thread.
 */
TEST(blocking_recv_survives_signals_then_closes)
{
	struct signalled s = { 0 };
	struct sigaction sa, old;
	struct zchan *p;
	pthread_t th;
	int i, k;

	if (getenv("ZCHAN_TEST_VALGRIND"))
		setenv("ZCHAN_WAIT", "syscall", 1);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, &old));
	ASSERT_EQ(0, zc_local_pair(NULL, &p, &s.c));
	ASSERT_EQ(0, pthread_create(&th, NULL, signalled_consumer, &s));
	for (i = 0; i < SIGNAL_MSGS; i++) {
		for (k = 0; k < 3; k++) {
			usleep(200);	/* let it sleep; no timing asserted */
			pthread_kill(th, SIGUSR1);
		}
		ASSERT_EQ(sizeof(i), zchan_send(p, &i, sizeof(i), 0));
		pthread_kill(th, SIGUSR1);
	}
	pthread_join(th, NULL);
	EXPECT_EQ(SIGNAL_MSGS, s.got);
	zchan_close(p);
	sigaction(SIGUSR1, &old, NULL);
}

/* A producer waiting for room is woken by the consumer's release. */
TEST(blocking_send_sleeps_until_release)
{
	struct zchan_stats st;
	struct zchan_attr a;
	struct zchan *p, *c;
	int sv[2], i, v;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(sv[0]);
		if (zchan_recv_peer(sv[1], &c))
			_exit(1);
		for (i = 0; i < 64; i++) {
			/* the producer has filled the ring and sleeps */
			if (!(i % 8) && wait_until_sleeping(getppid()))
				_exit(3);
			if (zchan_recv(c, &v, sizeof(v), 0) != sizeof(v) || v != i)
				_exit(2);
		}
		zchan_close(c);
		_exit(0);
	}
	close(sv[1]);
	small_attr(&a, 8, 16384, 64);
	ASSERT_EQ(0, zchan_create(NULL, &a, &p));
	ASSERT_EQ(0, zchan_send_peer(p, sv[0]));
	for (i = 0; i < 64; i++)
		ASSERT_EQ(sizeof(i), zchan_send(p, &i, sizeof(i), 0));
	zc_child_exits(pid, 0);
	ASSERT_EQ(0, zchan_stats(p, &st));
	EXPECT_LE(1, st.waits);
	zchan_close(p);
	close(sv[0]);
}

/* userspace/zchan_int.h: ZCHAN_MEMFD_HOLDERS, the end page's table */
#define ZCHAN_TEST_MEMFD_HOLDERS	64

/*
 * Spinning only while it can succeed (memfd: each end says whether it runs
 * and on which CPU).  The spin counter must not move while the peer
 * sleeps, or when the peer last ran on the waiter's CPU; a long
 * $ZCHAN_SPIN_NS makes a wait that ignored this spin for sure.
 */
static int fill_and_block(struct zchan *p, void *arg)
{
	int i;

	for (i = 0; i < 9; i++)		/* 8 slots: the 9th sleeps */
		if (zchan_send(p, &i, sizeof(i), 0) != sizeof(i))
			return 1;
	return 0;
}

TEST(no_spin_while_the_peer_sleeps)
{
	struct zchan_stats before, after;
	const void *buf[8];
	struct zchan_attr a;
	struct zchan *c;
	int i;
	pid_t pid;

	if (expected_backend() != ZCHAN_BACKEND_MEMFD)
		SKIP(return, "the kernel backend cannot tell whether its peer runs");
	setenv("ZCHAN_SPIN_NS", "2000000", 1);
	small_attr(&a, 8, 16384, 64);
	pid = zc_spawn_producer(&a, fill_and_block, NULL, &c);
	ASSERT_LT(0, pid);
	/* borrow all 8 (room comes back only with a release) */
	for (i = 0; i < 8; i++)
		ASSERT_EQ(sizeof(int), zchan_recv_zc(c, &buf[i], 0));
	ASSERT_EQ(0, wait_until_sleeping(pid));	/* past its spin */
	ASSERT_EQ(0, zchan_stats(c, &before));
	EXPECT_EQ(-ETIME, zchan_wait(c, 50000000));	/* 50 ms */
	ASSERT_EQ(0, zchan_stats(c, &after));
	EXPECT_EQ(before.spins, after.spins);
	EXPECT_LE(before.waits + 1, after.waits);	/* it slept instead */
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, zchan_release(c, buf[i]));
	ASSERT_EQ(sizeof(int), zchan_recv(c, &i, sizeof(i), 0));
	EXPECT_EQ(8, i);
	EXPECT_EQ(0, zc_child_wait(pid, -1));
	zchan_close(c);
}

static int idle_until_told(struct zchan *p, void *arg)
{
	int *go = arg;
	char x;

	return read(go[0], &x, 1) == 1 ? 0 : 1;
}

TEST(no_spin_for_a_peer_on_this_cpu)
{
	struct zchan_stats before, after;
	struct zchan *c;
	cpu_set_t one;
	int go[2];
	pid_t pid;

	if (expected_backend() != ZCHAN_BACKEND_MEMFD)
		SKIP(return, "the kernel backend cannot tell where its peer runs");
	setenv("ZCHAN_SPIN_NS", "2000000", 1);
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(one), &one));
	ASSERT_EQ(0, pipe(go));
	/* the producer runs (not in a zchan wait) on our CPU */
	pid = zc_spawn_producer(NULL, idle_until_told, go, &c);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, zchan_stats(c, &before));
	EXPECT_EQ(-ETIME, zchan_wait(c, 20000000));	/* 20 ms */
	ASSERT_EQ(0, zchan_stats(c, &after));
	EXPECT_EQ(before.spins, after.spins);
	ASSERT_EQ(1, write(go[1], "x", 1));
	EXPECT_EQ(POLLHUP, zchan_wait(c, -1));
	EXPECT_EQ(0, zc_child_wait(pid, -1));
	zchan_close(c);
	close(go[0]);
	close(go[1]);
}

/*
 * A producer that forges the words where its end says whether it runs and
 * where (memfd: after the holders table of its end page, the mapping at
 * the highest offset): the consumer may only spin in vain or sleep in
 * vain, and still gets every message.
 */
static void *own_end_page(void)
{
	return own_mapping("zchan-prod", true);
}

static int forging_producer(struct zchan *p, void *arg)
{
	size_t tail = 24 + sizeof(struct zchan_layout) +
		      ZCHAN_TEST_MEMFD_HOLDERS * sizeof(uint64_t);
	int *go = arg, i, fill;
	unsigned char *page;
	char x;

	page = own_end_page();
	if (!page)
		return 1;
	for (fill = 0; fill < 2; fill++) {
		/* 0xa5: nobody runs anywhere; 0: running, CPU unknown */
		memset(page + tail, fill ? 0 : 0xa5, 4096 - tail);
		if (read(go[0], &x, 1) != 1)
			return 2;
		for (i = 0; i < 5; i++)
			if (zchan_send(p, &i, sizeof(i), 0) != sizeof(i))
				return 3;
	}
	return 0;
}

TEST(forged_run_words_cost_only_a_sleep)
{
	struct zchan *c;
	int go[2], i, j, v;
	pid_t pid;

	if (expected_backend() != ZCHAN_BACKEND_MEMFD)
		SKIP(return, "memfd end pages");
	ASSERT_EQ(0, pipe(go));
	pid = zc_spawn_producer(NULL, forging_producer, go, &c);
	ASSERT_LT(0, pid);
	for (j = 0; j < 2; j++) {
		ASSERT_EQ(0, zchan_poll(c));
		ASSERT_EQ(1, write(go[1], "x", 1));
		for (i = 0; i < 5; i++) {
			ASSERT_EQ(sizeof(v), zchan_recv(c, &v, sizeof(v), 0));
			ASSERT_EQ(i, v);
		}
	}
	EXPECT_EQ(-EPIPE, zchan_recv(c, &v, sizeof(v), 0));
	EXPECT_EQ(0, zc_child_wait(pid, -1));
	zchan_close(c);
	close(go[0]);
	close(go[1]);
}

/* poll(2) on zchan_fd(): readable when there is work, quiet when not. */

static int step_producer(struct zchan *p, void *arg)
{
	struct ack_pipe *s = arg;
	char x;
	int i;

	close(s->ack_w);
	for (i = 0; i < 50; i++) {
		if (zchan_send(p, &i, sizeof(i), 0) != sizeof(i))
			return 1;
		if (read(s->ack, &x, 1) != 1)
			return 2;
	}
	return 0;
}

TEST(poll_on_zchan_fd)
{
	struct ack_pipe st;
	struct pollfd pfd;
	struct zchan *c;
	int ack[2], i, v;
	pid_t pid;

	ASSERT_EQ(0, pipe(ack));
	st.ack = ack[0];
	st.ack_w = ack[1];
	pid = zc_spawn_producer(NULL, step_producer, &st, &c);
	ASSERT_LT(0, pid);
	close(ack[0]);
	pfd.fd = zchan_fd(c);
	pfd.events = POLLIN;
	for (i = 0; i < 50; i++) {
		ssize_t r;

		/* the portable pattern: try, and wait only after -EAGAIN */
		while ((r = zchan_recv(c, &v, sizeof(v), ZCHAN_NONBLOCK)) == -EAGAIN) {
			ASSERT_EQ(1, poll(&pfd, 1, 60000));
			ASSERT_TRUE(pfd.revents & POLLIN);
		}
		ASSERT_EQ(sizeof(v), r);
		ASSERT_EQ(i, v);
		ASSERT_EQ(-EAGAIN, zchan_recv(c, &v, sizeof(v), ZCHAN_NONBLOCK));
		/* nothing pending: the fd must not stay readable */
		ASSERT_EQ(0, poll(&pfd, 1, 0));
		ASSERT_EQ(1, write(ack[1], "a", 1));
	}
	close(ack[1]);
	zc_child_exits(pid, 0);
	EXPECT_EQ(-EPIPE, zchan_recv(c, &v, sizeof(v), 0));
	zchan_close(c);
}

/* ------------------------------------------------------------------ */

static int busy_producer(struct zchan *p, void *arg)
{
	int i;

	if (zchan_set_flags(p, ZCHAN_BUSY_POLL))
		return 1;
	for (i = 0; i < 20000; i++)
		if (zchan_send(p, &i, sizeof(i), 0) != sizeof(i))
			return 2;
	return 0;
}

TEST(busy_poll_mode)
{
	struct zchan_stats st;
	struct zchan_attr a;
	struct zchan *c;
	int i, v;
	pid_t pid;

	small_attr(&a, 8, 16384, 64);
	a.flags = ZCHAN_BUSY_POLL;
	pid = zc_spawn_producer(&a, busy_producer, NULL, &c);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, zchan_set_flags(c, ZCHAN_BUSY_POLL));
	for (i = 0; i < 20000; i++) {
		ASSERT_EQ(sizeof(v), zchan_recv(c, &v, sizeof(v), 0));
		ASSERT_EQ(i, v);
	}
	EXPECT_EQ(-EPIPE, zchan_recv(c, &v, sizeof(v), 0));
	ASSERT_EQ(0, zchan_stats(c, &st));
	EXPECT_EQ(0, st.waits);		/* never slept */
	zc_child_exits(pid, 0);
	zchan_close(c);
}

/* ------------------------------------------------------------------ */
/* Who keeps an end open (issue 13): the same rule on both backends.   */
/*
 * An end stays open while a process that uses it holds it; zchan_close()
 * ends this process's use; a copy inherited through fork(2) and never used
 * neither keeps the channel open nor ends it, closed or at exit.
 *
 * Each scenario is a FIXTURE_VARIANT per backend: the memfd variant runs
 * in lib/zchan_test_memfd (natively), the kernel variant in
 * lib/zchan_test_kernel (in the guest); each binary skips the other's.
 */

#define ENDS_MSGS	1000
#define ENDS_MAX_MSG	256
#define LIVENESS_NS	(60LL * 1000000000LL)	/* a hang, not a speed */

FIXTURE(ends) {
	struct zchan_attr attr;
};

ZC_BACKEND_VARIANTS(ends);

FIXTURE_SETUP(ends)
{
	small_attr(&self->attr, 1024, 1 << 20, ENDS_MAX_MSG);
	self->attr.backend = variant->backend;
}

FIXTURE_TEARDOWN(ends)
{
}

/* SKIP in FIXTURE_SETUP does not stop the test body with every harness. */
#define ENDS_ON_THIS_BACKEND()						\
	do {								\
		if (variant->backend != (unsigned int)expected_backend())	\
			SKIP(return, "runs in lib/zchan_test_%s",	\
			     variant->backend == ZCHAN_BACKEND_KERNEL ?	\
			     "kernel (guest)" : "memfd (native)");	\
	} while (0)

/*
 * The kernel backend keeps an end per process (S1, S3, exec) only with a
 * module that reports ZCHAN_FEAT_USE; older modules keep it per file.
 */
static bool module_has_feature(unsigned int feature)
{
	struct zchan_info info;
	int fd = open("/dev/zchan", O_RDWR | O_CLOEXEC);
	bool ret;

	if (fd < 0)
		return false;
	memset(&info, 0, sizeof(info));
	ret = !ioctl(fd, ZCHAN_IOC_INFO, &info) &&
	      (info.layout.features & feature) == feature;
	close(fd);
	return ret;
}

/*
 * Without pidfds (Linux before 5.3, or valgrind, which does not know the
 * system call) the memfd backend falls back to its liveness socket, which
 * an inherited copy keeps open: S3 cannot hold there (library.rst).
 */
static bool have_pidfds(void)
{
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

	if (fd < 0)
		return errno != ENOSYS;
	close(fd);
	return true;
}

#define ENDS_NEED_PIDFDS()						\
	do {								\
		if (variant->backend == ZCHAN_BACKEND_MEMFD &&		\
		    !have_pidfds())					\
			SKIP(return, "no pidfd_open() here: the memfd "	\
			     "backend falls back to its socket");	\
	} while (0)

#define ENDS_NEED_USE()							\
	do {								\
		if (variant->backend == ZCHAN_BACKEND_KERNEL &&	\
		    !module_has_feature(ZCHAN_FEAT_USE))		\
			SKIP(return, "the module lacks ZCHAN_FEAT_USE: "	\
			     "its ends are held per file");		\
	} while (0)

/* Messages [from, to) of the deterministic sequence. */
static int send_seq(struct zchan *p, uint64_t from, uint64_t to)
{
	unsigned char buf[ENDS_MAX_MSG];
	uint64_t s;

	for (s = from; s < to; s++) {
		uint32_t len = msg_len(s, ENDS_MAX_MSG);

		zc_payload_fill(buf, len, 0, s);
		if (zchan_send(p, buf, len, 0) != (ssize_t)len)
			return -1;
	}
	return 0;
}

/* Receive messages [from, to), blocking, and check each: 0 or -1. */
static int recv_seq(struct zchan *c, uint64_t from, uint64_t to)
{
	unsigned char buf[ENDS_MAX_MSG];
	uint64_t s;
	ssize_t r;

	for (s = from; s < to; s++) {
		r = zchan_recv(c, buf, sizeof(buf), 0);
		if (r < 0 || !check_msg(buf, r, s, ENDS_MAX_MSG))
			return -1;
	}
	return 0;
}

/*
 * Receive messages [from, to) and check each, then expect the end of the
 * stream: 0, or what went wrong (an exit code for a child).
 */
enum {
	DRAIN_OK, DRAIN_ERR, DRAIN_BAD_MSG, DRAIN_HANG, DRAIN_EXTRA,
	DRAIN_EARLY_EPIPE,
};

static int drain_seq(struct zchan *c, uint64_t from, uint64_t to)
{
	unsigned char buf[ENDS_MAX_MSG];
	uint64_t s = from;
	ssize_t r;

	for (;;) {
		r = zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK);
		if (r == -EAGAIN) {
			int w = zchan_wait(c, LIVENESS_NS);

			if (w == -ETIME)
				return DRAIN_HANG;
			if (w < 0)
				return DRAIN_ERR;
			continue;
		}
		if (r == -EPIPE)
			return s == to ? DRAIN_OK : DRAIN_EARLY_EPIPE;
		if (r < 0)
			return DRAIN_ERR;
		if (s == to)
			return DRAIN_EXTRA;
		if (!check_msg(buf, r, s, ENDS_MAX_MSG))
			return DRAIN_BAD_MSG;
		s++;
	}
}

static void expect_drained(struct __test_metadata *_metadata, int how)
{
	if (how == DRAIN_HANG)
		TH_LOG("no -EPIPE: the end was kept open");
	else if (how == DRAIN_EARLY_EPIPE)
		TH_LOG("-EPIPE before every message arrived");
	else if (how == DRAIN_EXTRA)
		TH_LOG("a message nobody sent");
	EXPECT_EQ(DRAIN_OK, how);
}

/* A consumer child: it gets the consumer end over @sock and drains. */
struct consumer_child {
	int sock, other;
	uint64_t n;
	bool close_inherited;
	struct zchan *inherited;
};

static int consumer_child(void *arg)
{
	const struct consumer_child *cc = arg;
	struct zchan *c;

	close(cc->other);
	if (cc->close_inherited)
		zchan_close(cc->inherited);	/* as library.rst advised */
	if (zchan_recv_peer(cc->sock, &c))
		return 90;
	/* empty, and not ended by anything done so far */
	if (zchan_recv(c, &c, sizeof(c), ZCHAN_NONBLOCK) != -EAGAIN)
		return 92;
	/* ready: the producer starts sending only now */
	if (write(cc->sock, "r", 1) != 1)
		return 91;
	return drain_seq(c, 0, cc->n);
}

/* Hand the consumer end to consumer_child(), wait until it is ready. */
static int give_consumer(struct zchan *p, int sock)
{
	char b;
	int ret;

	ret = zchan_send_peer(p, sock);
	if (!ret && read(sock, &b, 1) != 1)
		ret = -EIO;
	close(sock);
	return ret;
}

/*
 * The parent produces, a forked child consumes: S1 (the child never
 * touches the producer handle it inherited) and S2 (it closes it first,
 * as library.rst once advised).  Either way the child gets every message,
 * then -EPIPE, once the parent closes.
 */
static void parent_to_child(struct __test_metadata *_metadata,
			    const struct zchan_attr *attr, bool close_inherited)
{
	struct consumer_child cc = {
		.n = ENDS_MSGS, .close_inherited = close_inherited,
	};
	struct zchan *p;
	int sv[2];
	pid_t pid;

	ASSERT_EQ(0, zchan_create(NULL, attr, &p));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	cc.sock = sv[1];
	cc.other = sv[0];
	cc.inherited = p;
	pid = zc_spawn(consumer_child, &cc);
	ASSERT_LE(0, pid);
	close(sv[1]);
	ASSERT_EQ(0, give_consumer(p, sv[0]));
	ASSERT_EQ(0, send_seq(p, 0, ENDS_MSGS));
	zchan_close(p);
	expect_drained(_metadata, zc_child_wait(pid, _metadata->timeout));
}

/* S1: the child never touches the producer handle it inherited. */
TEST_F(ends, s1_inherited_and_unused_does_not_keep_open)
{
	ENDS_ON_THIS_BACKEND();
	ENDS_NEED_USE();
	parent_to_child(_metadata, &self->attr, false);
}

/* S2: the child closes its inherited copy: the parent's stream goes on. */
TEST_F(ends, s2_inherited_copy_closed_does_not_end)
{
	ENDS_ON_THIS_BACKEND();
	parent_to_child(_metadata, &self->attr, true);
}

/* S2, the other way out: a child exits holding the inherited handle. */
TEST_F(ends, s2_inherited_copy_exiting_does_not_end)
{
	struct zchan *p, *c;
	pid_t pid;

	ENDS_ON_THIS_BACKEND();
	ASSERT_EQ(0, zc_local_pair(&self->attr, &p, &c));
	ASSERT_EQ(0, send_seq(p, 0, ENDS_MSGS / 2));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(0);
	zc_child_exits(pid, 0);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		zchan_close(p);		/* closes, then exits */
		zchan_close(c);
		_exit(0);
	}
	zc_child_exits(pid, 0);
	/* both ends still work, in both directions */
	ASSERT_EQ(0, send_seq(p, ENDS_MSGS / 2, ENDS_MSGS));
	zchan_close(p);
	expect_drained(_metadata, drain_seq(c, 0, ENDS_MSGS));
	zchan_close(c);
}

/*
 * S3: the producer is SIGKILLed while its forked child still holds the
 * inherited descriptors: the consumer drains, then -EPIPE.
 */
/* Kill the producer child @pid after a moment (killed_producer()). */
static void *kill_later(void *arg)
{
	usleep(50000);
	kill(*(pid_t *)arg, SIGKILL);
	return NULL;
}

/*
 * S3: the producer dies while a child it forked holds copies of its end
 * (and of the liveness socket) without using them.  @blocked: the
 * consumer has taken everything and sleeps in a blocking zchan_recv()
 * when the producer dies (most likely: a thread kills it 50 ms later);
 * the memfd backend's sleep must watch the producer's process itself.
 */
static void killed_producer(struct __test_metadata *_metadata,
			    const struct zchan_attr *attr, bool blocked)
{
	unsigned char buf[ENDS_MAX_MSG];
	int sv[2], go[2];
	pid_t pid, holder;
	struct zchan *c;
	pthread_t th;
	uint64_t n = 0;
	ssize_t r;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zchan *p;
		pid_t holder;

		close(sv[1]);
		close(go[0]);
		if (zchan_create(NULL, attr, &p) ||
		    zchan_send_peer(p, sv[0]))
			_exit(90);
		holder = fork();	/* holds the copies, outlives us */
		if (!holder) {
			for (;;)
				pause();
		}
		if (holder < 0 || send_seq(p, 0, ENDS_MSGS))
			_exit(91);
		if (write(go[1], &holder, sizeof(holder)) != sizeof(holder))
			_exit(92);
		for (;;)
			pause();
	}
	close(sv[0]);
	close(go[1]);
	ASSERT_EQ(0, zchan_recv_peer(sv[1], &c));
	close(sv[1]);
	ASSERT_EQ(sizeof(holder), read(go[0], &holder, sizeof(holder)));
	close(go[0]);
	if (!blocked) {
		ASSERT_EQ(0, kill(pid, SIGKILL));
		zc_child_killed(pid, SIGKILL);
		expect_drained(_metadata, drain_seq(c, 0, ENDS_MSGS));
	} else {
		ASSERT_EQ(0, pthread_create(&th, NULL, kill_later, &pid));
		while ((r = zchan_recv(c, buf, sizeof(buf), 0)) >= 0)
			n++;
		EXPECT_EQ(-EPIPE, r);
		EXPECT_EQ(ENDS_MSGS, n);
		pthread_join(th, NULL);
		zc_child_killed(pid, SIGKILL);
	}
	EXPECT_EQ(POLLHUP, zchan_poll(c));
	EXPECT_EQ(0, kill(holder, 0));	/* it was alive all along */
	kill(holder, SIGKILL);
	zchan_close(c);
}

TEST_F(ends, s3_killed_producer_with_forked_child)
{
	ENDS_ON_THIS_BACKEND();
	ENDS_NEED_USE();
	ENDS_NEED_PIDFDS();
	killed_producer(_metadata, &self->attr, false);
}

TEST_F(ends, s3_killed_producer_wakes_a_blocked_consumer)
{
	ENDS_ON_THIS_BACKEND();
	ENDS_NEED_USE();
	ENDS_NEED_PIDFDS();
	killed_producer(_metadata, &self->attr, true);
}

/*
 * zc_spawn_producer() body for the test below, @arg the pipes go[2], die[2]:
 * fork a worker that sends messages 0 and 1 and, once told on die, exits
 * without closing the end; say so on go and live on, holding the end.
 */
static int outlive_a_dying_worker(struct zchan *p, void *arg)
{
	const int *go = arg, *die = go + 2;
	pid_t user;
	char x;

	close(go[0]);
	close(die[1]);
	user = fork();
	if (!user)
		_exit(send_seq(p, 0, 2) ? 91 : read(die[0], &x, 1) == 1 ? 0 : 92);
	if (user < 0 || zc_child_wait(user, -1))
		return 93;
	if (write(go[1], "r", 1) != 1)
		return 94;
	for (;;)
		pause();
}

/*
 * The producer's creator forks a worker that sends and then dies without
 * closing the end; the creator lives on, holding it (it may hand the
 * end to another worker): the end stays open, and the consumer's idle
 * wait must sleep, not wake at once again and again (the memfd backend
 * watches each using process; a dead one's pidfd stays readable).
 */
TEST_F(ends, dead_user_of_a_live_end_lets_the_consumer_sleep)
{
	struct zchan_stats before, after;
	int pipes[4];	/* go[2], die[2] */
	struct zchan *c;
	char ready;
	pid_t pid;

	ENDS_ON_THIS_BACKEND();
	ENDS_NEED_USE();
	ENDS_NEED_PIDFDS();
	ASSERT_EQ(0, pipe2(pipes, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(pipes + 2, O_CLOEXEC));
	pid = zc_spawn_producer(&self->attr, outlive_a_dying_worker, pipes, &c);
	ASSERT_LT(0, pid);
	close(pipes[1]);
	close(pipes[2]);
	ASSERT_EQ(0, recv_seq(c, 0, 2));
	/* a sleep while the worker lives: its process is watched */
	EXPECT_EQ(-ETIME, zchan_wait(c, 20 * 1000000LL));
	ASSERT_EQ(1, write(pipes[3], "x", 1));
	close(pipes[3]);
	ASSERT_EQ(1, read(pipes[0], &ready, 1));
	close(pipes[0]);
	ASSERT_EQ(0, zchan_stats(c, &before));
	EXPECT_EQ(-ETIME, zchan_wait(c, 200 * 1000000LL));
	ASSERT_EQ(0, zchan_stats(c, &after));
	/* a sleep or two, not one per wake-up by a dead process's pidfd */
	TH_LOG("%llu sleeps in 200 ms", (unsigned long long)(after.waits - before.waits));
	EXPECT_GE(3, after.waits - before.waits);
	EXPECT_EQ(0, zchan_poll(c));
	kill(pid, SIGKILL);
	zc_child_killed(pid, SIGKILL);
	EXPECT_EQ(POLLHUP, zchan_poll(c));
	zchan_close(c);
}

/*
 * S4: the multiprocessing habit.  The parent forks a child that uses the
 * producer end it inherited, then closes its own copy: the child carries
 * on, and the stream ends when the child is done (closes, or exits).
 */
static void handover(struct __test_metadata *_metadata,
		     const struct zchan_attr *attr, bool child_closes)
{
	struct zchan *p, *c;
	int started[2];
	pid_t pid;
	char b;

	ASSERT_EQ(0, zc_local_pair(attr, &p, &c));
	ASSERT_EQ(0, pipe2(started, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(started[0]);
		if (send_seq(p, 0, 1))
			_exit(90);
		if (write(started[1], "x", 1) != 1)
			_exit(91);
		if (send_seq(p, 1, ENDS_MSGS))
			_exit(92);
		if (child_closes)
			zchan_close(p);
		_exit(0);
	}
	close(started[1]);
	ASSERT_EQ(1, read(started[0], &b, 1));
	close(started[0]);
	zchan_close(p);		/* the child still uses it */
	expect_drained(_metadata, drain_seq(c, 0, ENDS_MSGS));
	zc_child_exits(pid, 0);
	zchan_close(c);
}

TEST_F(ends, s4_child_carries_on_then_closes)
{
	ENDS_ON_THIS_BACKEND();
	handover(_metadata, &self->attr, true);
}

TEST_F(ends, s4_child_carries_on_then_exits)
{
	ENDS_ON_THIS_BACKEND();
	handover(_metadata, &self->attr, false);
}

/*
 * After exec: a child that made the channel fd inheritable and exec'd a
 * program that knows nothing of it does not keep the channel open.
 */
TEST_F(ends, exec_inherited_fd_does_not_keep_open)
{
	struct zchan *p, *c;
	pid_t pid;

	ENDS_ON_THIS_BACKEND();
	ENDS_NEED_USE();
	ASSERT_EQ(0, zc_local_pair(&self->attr, &p, &c));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		fcntl(zchan_fd(p), F_SETFD, 0);
		execl("/bin/sleep", "sleep", "600", (char *)NULL);
		_exit(90);
	}
	ASSERT_EQ(0, send_seq(p, 0, ENDS_MSGS));
	zchan_close(p);
	expect_drained(_metadata, drain_seq(c, 0, ENDS_MSGS));
	kill(pid, SIGKILL);
	zc_child_killed(pid, SIGKILL);
	zchan_close(c);
}

/* A child that starts using an end its last user closed gets -EPIPE. */
TEST_F(ends, use_after_last_user_closed)
{
	struct zchan *p, *c;
	int gate[2];
	pid_t pid;
	char b;

	ENDS_ON_THIS_BACKEND();
	ENDS_NEED_USE();
	ASSERT_EQ(0, zc_local_pair(&self->attr, &p, &c));
	ASSERT_EQ(0, pipe2(gate, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(gate[1]);
		if (read(gate[0], &b, 1) != 0)
			_exit(90);
		_exit(zchan_send(p, "x", 1, 0) == -EPIPE ? 0 : 91);
	}
	close(gate[0]);
	zchan_close(p);
	close(gate[1]);
	zc_child_exits(pid, 0);
	expect_drained(_metadata, drain_seq(c, 0, 0));
	zchan_close(c);
}

/* ------------------------------------------------------------------ */
/* Nothing committed is ever lost (issue 13, item 2).                  */
/*
 * A script of producer calls, one letter each, in ring order: S sends the
 * next message, L loans a slot for it and leaves the loan outstanding, C
 * commits the oldest outstanding loan, c the newest, A aborts the oldest.
 * Then the producer closes, is killed, or exits without closing: every
 * message whose send or commit returned success arrives, in order, then
 * -EPIPE; an outstanding loan becomes a skipped slot.  On the kernel
 * backend a death loses nothing only with a module that publishes on close
 * (ZCHAN_FEAT_PUBLISH_ON_CLOSE); with an older one what was committed
 * behind the first outstanding loan is lost (death_gets).  On the memfd
 * backend the consumer publishes up to the dead producer's alloc word.
 */
struct loan_script {
	const char *ops;
	const char *close_gets;		/* messages after a close or death */
	const char *death_gets;		/* ... after a death, older modules */
};

static const struct loan_script loan_scripts[] = {
	{ "S",		"0",	"0" },
	{ "L",		"",	"" },
	{ "SLS",	"02",	"0" },	/* the case of the issue */
	{ "LS",		"1",	"" },
	{ "SL",		"0",	"0" },
	{ "LLS",	"2",	"" },
	{ "LSLS",	"13",	"" },
	{ "SLSC",	"012",	"012" },
	{ "SLSA",	"02",	"02" },
	{ "LLC",	"0",	"0" },	/* C commits the oldest: 0 */
	{ "LLCS",	"02",	"0" },
	{ "SLLCS",	"013",	"01" },
	{ "LSSLSA",	"124",	"12" },
	{ "SLSLc",	"023",	"0" },	/* a later loan committed first */
	{ "SLLcS",	"023",	"0" },
	{ "LSLcS",	"123",	"" },
	{ "LLcC",	"01",	"01" },
};

/* Run @ops on @p; the message of slot i is the single byte '0' + i. */
static int run_loan_script(struct zchan *p, const char *ops)
{
	void *loans[16];
	char ids[16];
	int nloans = 0, slot = 0, i;

	for (; *ops; ops++) {
		char id = (char)('0' + slot);

		switch (*ops) {
		case 'S':
			if (zchan_send(p, &id, 1, 0) != 1)
				return 1;
			slot++;
			break;
		case 'L':
			if (zchan_loan(p, 1, &loans[nloans], 0))
				return 2;
			*(char *)loans[nloans] = id;
			ids[nloans++] = id;
			slot++;
			break;
		case 'c':
			if (!nloans || zchan_commit(p, loans[--nloans], 1))
				return 3;
			break;
		case 'C':
		case 'A':
			if (!nloans || (*ops == 'C' ?
					zchan_commit(p, loans[0], 1) :
					zchan_abort(p, loans[0])))
				return 3;
			for (i = 1; i < nloans; i++) {
				loans[i - 1] = loans[i];
				ids[i - 1] = ids[i];
			}
			nloans--;
			break;
		}
	}
	(void)ids;
	return 0;
}

static int loan_script_then_close(struct zchan *p, void *arg)
{
	return run_loan_script(p, arg);	/* spawn_producer closes */
}

static int loan_script_then_die(struct zchan *p, void *arg)
{
	if (run_loan_script(p, arg))
		return 1;
	raise(SIGKILL);
	return 2;
}

/* Exit without zchan_close(): a death without a signal. */
static int loan_script_then_exit(struct zchan *p, void *arg)
{
	_exit(run_loan_script(p, arg) ? 1 : 42);
}

enum loan_end { LOAN_CLOSE, LOAN_KILL, LOAN_EXIT };

/* What arrives: the bytes received, until -EPIPE. */
static int drain_ids(struct zchan *c, char *got, size_t cap)
{
	size_t n = 0;
	ssize_t r;
	char b[4];

	for (;;) {
		r = zchan_recv(c, b, sizeof(b), 0);
		if (r == -EPIPE)
			break;
		if (r != 1 || n + 1 >= cap)
			return -1;
		got[n++] = b[0];
	}
	got[n] = 0;
	return 0;
}

FIXTURE(loans) {
	struct zchan_attr attr;
};

ZC_BACKEND_VARIANTS(loans);

FIXTURE_SETUP(loans)
{
	small_attr(&self->attr, 16, 64 << 10, 256);
	self->attr.backend = variant->backend;
}

FIXTURE_TEARDOWN(loans)
{
}

static void loan_scripts_run(struct __test_metadata *_metadata,
			     const struct zchan_attr *attr, enum loan_end end)
{
	static int (*const fns[])(struct zchan *p, void *arg) = {
		[LOAN_CLOSE] = loan_script_then_close,
		[LOAN_KILL] = loan_script_then_die,
		[LOAN_EXIT] = loan_script_then_exit,
	};
	static const int status[] = {
		[LOAN_CLOSE] = 0,
		[LOAN_KILL] = ZC_SIGNALLED(SIGKILL),
		[LOAN_EXIT] = 42,
	};
	bool die = end != LOAN_CLOSE;
	/* a module that publishes on close loses nothing at a death either */
	bool all = !die || attr->backend == ZCHAN_BACKEND_MEMFD ||
		   module_has_feature(ZCHAN_FEAT_PUBLISH_ON_CLOSE);
	unsigned int i;

	for (i = 0; i < sizeof(loan_scripts) / sizeof(loan_scripts[0]); i++) {
		const struct loan_script *ls = &loan_scripts[i];
		char got[32];
		struct zchan *c;
		pid_t pid;

		pid = zc_spawn_producer(attr, fns[end], (void *)ls->ops, &c);
		ASSERT_LT(0, pid);
		zc_child_exits(pid, status[end]);
		ASSERT_EQ(0, drain_ids(c, got, sizeof(got)));
		EXPECT_STREQ(all ? ls->close_gets : ls->death_gets, got) {
			TH_LOG("script %s, %s", ls->ops, end == LOAN_CLOSE ?
			       "closed" : end == LOAN_KILL ? "killed" :
			       "exited without closing");
		}
		zchan_close(c);
	}
}

TEST_F(loans, every_committed_message_arrives_after_close)
{
	ENDS_ON_THIS_BACKEND();
	loan_scripts_run(_metadata, &self->attr, LOAN_CLOSE);
}

TEST_F(loans, every_committed_message_arrives_after_sigkill)
{
	ENDS_ON_THIS_BACKEND();
	loan_scripts_run(_metadata, &self->attr, LOAN_KILL);
}

TEST_F(loans, every_committed_message_arrives_after_exit_without_close)
{
	ENDS_ON_THIS_BACKEND();
	loan_scripts_run(_metadata, &self->attr, LOAN_EXIT);
}

/* ------------------------------------------------------------------ */
/* Every documented error of every call, the same on both backends.    */

FIXTURE(errors) {
	struct zchan_attr attr;
	struct zchan *p, *c;
};

ZC_BACKEND_VARIANTS(errors);

FIXTURE_SETUP(errors)
{
	small_attr(&self->attr, 8, 65536, 4096);
	self->attr.backend = variant->backend;
	if (variant->backend == (unsigned int)expected_backend())
		ASSERT_EQ(0, zc_local_pair(&self->attr, &self->p, &self->c));
}

FIXTURE_TEARDOWN(errors)
{
	zchan_close(self->c);
	zchan_close(self->p);
}

/* zchan_create(3) */
TEST_F(errors, create)
{
	char name[ZCHAN_NAME_MAX + 8];
	struct zchan_attr a = self->attr;
	struct zchan *p = NULL;
	int ret;

	ENDS_ON_THIS_BACKEND();
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, NULL));
	EXPECT_EQ(-EINVAL, zchan_create("", &a, &p));
	a.reserved[0] = 1;
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, &p));
	a = self->attr;
	a.flags = 1U << 7;
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, &p));
	a = self->attr;
	a.mode = 01777;
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, &p));
	a = self->attr;
	a.ring_entries = 12;
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, &p));
	a.ring_entries = ZCHAN_RING_ENTRIES_MAX * 2;	/* the UAPI's limit */
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, &p));
	a = self->attr;
	a.max_msg = a.pool_size / 2 + 1;
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, &p));
	/* larger than any message can be, whatever the pool */
	a = self->attr;
	a.pool_size = 8ULL << 30;
	a.max_msg = ZCHAN_MSG_MAX + 1ULL;
	EXPECT_EQ(-EINVAL, zchan_create(NULL, &a, &p));
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	EXPECT_EQ(-ENAMETOOLONG, zchan_create(name, &self->attr, &p));
	/* a pool too large: -ENOMEM, never -EINVAL (issue 13) */
	a = self->attr;
	a.pool_size = (1ULL << 40) + 4096;
	a.max_msg = 0;
	EXPECT_EQ(-ENOMEM, zchan_create(NULL, &a, &p));
	/* 16 GiB with the default max_msg: made, or too large for here */
	a.pool_size = 16ULL << 30;
	ret = zchan_create(NULL, &a, &p);
	if (ret != -ENOMEM) {
		struct zchan_attr got;

		ASSERT_EQ(0, ret);
		ASSERT_EQ(0, zchan_get_attr(p, &got));
		EXPECT_EQ(ZCHAN_MSG_MAX, got.max_msg);	/* pool / 4, capped */
		zchan_close(p);
	}
	snprintf(name, sizeof(name), "zchan-err-%d", (int)getpid());
	if (variant->backend == ZCHAN_BACKEND_MEMFD) {
		EXPECT_EQ(-EOPNOTSUPP, zchan_create(name, &self->attr, &p));
		/* the kernel backend required where there is no module */
		if (access("/dev/zchan", F_OK)) {
			a = self->attr;
			a.backend = ZCHAN_BACKEND_KERNEL;
			EXPECT_EQ(-ENOENT, zchan_create(NULL, &a, &p));
		}
	} else {
		ASSERT_EQ(0, zchan_create(name, &self->attr, &p));
		EXPECT_EQ(-EEXIST, zchan_create(name, &self->attr, &self->p));
		zchan_close(p);
	}
}

/* zchan_open(3) */
TEST_F(errors, open)
{
	char name[ZCHAN_NAME_MAX + 8];
	struct zchan *p, *c;
	pid_t pid;

	ENDS_ON_THIS_BACKEND();
	EXPECT_EQ(-EINVAL, zchan_open(NULL, &c));
	EXPECT_EQ(-EINVAL, zchan_open("x", NULL));
	EXPECT_EQ(-EINVAL, zchan_open("", &c));
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	EXPECT_EQ(-ENAMETOOLONG, zchan_open(name, &c));
	snprintf(name, sizeof(name), "zchan-err-%d", (int)getpid());
	if (variant->backend == ZCHAN_BACKEND_MEMFD) {
		EXPECT_EQ(-EOPNOTSUPP, zchan_open(name, &c));
		return;
	}
	EXPECT_EQ(-ENOENT, zchan_open(name, &c));
	ASSERT_EQ(0, zchan_create(name, &self->attr, &p));	/* mode 0600 */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (setgid(65534) || setuid(65534))
			_exit(90);
		_exit(zchan_open(name, &c) == -EACCES ? 0 : 91);
	}
	zc_child_exits(pid, 0);
	ASSERT_EQ(0, zchan_open(name, &c));
	EXPECT_EQ(-EBUSY, zchan_open(name, &self->c));
	zchan_close(c);
	zchan_close(p);
}

/* zchan_send(3), zchan_recv(3) */
TEST_F(errors, send_recv)
{
	char big[4097], small[4];
	void *lb[2];

	ENDS_ON_THIS_BACKEND();
	memset(big, 'b', sizeof(big));
	EXPECT_EQ(-EINVAL, zchan_send(self->c, big, 1, 0));
	EXPECT_EQ(-EINVAL, zchan_send(self->p, NULL, 1, 0));
	EXPECT_EQ(-EINVAL, zchan_send(self->p, big, 1, 1U << 9));
	EXPECT_EQ(-EINVAL, zchan_recv(self->p, big, 1, 0));
	EXPECT_EQ(-EINVAL, zchan_recv(self->c, NULL, 1, 0));
	EXPECT_EQ(-EMSGSIZE, zchan_send(self->p, big, 4097, 0));
	EXPECT_EQ(-EAGAIN, zchan_recv(self->c, small, sizeof(small),
				      ZCHAN_NONBLOCK));
	ASSERT_EQ(8, zchan_send(self->p, big, 8, 0));
	EXPECT_EQ(-EMSGSIZE, zchan_recv(self->c, small, sizeof(small), 0));
	EXPECT_EQ(8, zchan_recv(self->c, big, sizeof(big), 0));	/* kept */
	/* 8 slots: full */
	while (zchan_send(self->p, big, 8, ZCHAN_NONBLOCK) == 8)
		;
	EXPECT_EQ(-EAGAIN, zchan_send(self->p, big, 8, ZCHAN_NONBLOCK));
	while (zchan_recv(self->c, big, sizeof(big), ZCHAN_NONBLOCK) == 8)
		;
	/* the pool (64 KiB) held by our own loans */
	while (!zchan_loan(self->p, 4096, &lb[0], ZCHAN_NONBLOCK))
		;
	EXPECT_EQ(-ENOBUFS, zchan_send(self->p, big, 4096, 0));
	zchan_close(self->c);
	self->c = NULL;
	EXPECT_EQ(-EPIPE, zchan_send(self->p, big, 1, ZCHAN_NONBLOCK));
	(void)lb;
}

/* zchan_loan(3), zchan_commit(3), zchan_abort(3) */
TEST_F(errors, loan_commit_abort)
{
	void *lb, *other;
	char x;

	ENDS_ON_THIS_BACKEND();
	EXPECT_EQ(-EINVAL, zchan_loan(self->c, 8, &lb, 0));
	EXPECT_EQ(-EINVAL, zchan_loan(self->p, 0, &lb, 0));
	EXPECT_EQ(-EINVAL, zchan_loan(self->p, 8, NULL, 0));
	EXPECT_EQ(-EINVAL, zchan_loan(self->p, 8, &lb, 1U << 9));
	EXPECT_EQ(-EMSGSIZE, zchan_loan(self->p, 4097, &lb, 0));
	ASSERT_EQ(0, zchan_loan(self->p, 16, &lb, 0));
	EXPECT_EQ(-EINVAL, zchan_commit(self->p, &x, 1));
	EXPECT_EQ(-EINVAL, zchan_commit(self->p, lb, 17));
	EXPECT_EQ(-EINVAL, zchan_commit(self->c, lb, 1));
	EXPECT_EQ(0, zchan_abort(self->p, lb));
	EXPECT_EQ(-EINVAL, zchan_abort(self->p, lb));	/* no longer a loan */
	/* the consumer passes the aborted slot: the pool is ours again */
	EXPECT_EQ(-EAGAIN, zchan_recv(self->c, &x, 1, ZCHAN_NONBLOCK));
	while (!zchan_loan(self->p, 4096, &other, ZCHAN_NONBLOCK))
		;
	EXPECT_EQ(-ENOBUFS, zchan_loan(self->p, 4096, &lb, 0));
	zchan_close(self->c);
	self->c = NULL;
	EXPECT_EQ(-EPIPE, zchan_loan(self->p, 8, &lb, 0));
}

/*
 * Dropping the newest loan gives its slot and pool space back at once:
 * a ring of 8 and a pool of 16 loans of 4 KiB take a thousand dropped
 * loans with nobody reading.  An older loan dropped under a newer one is
 * a skipped slot as before, and a drop without ZCHAN_MORE still sends
 * what ZCHAN_MORE queued.
 */
TEST_F(errors, dropping_the_newest_loan_gives_its_room_back)
{
	void *a, *b;
	char x[8];
	int i;

	ENDS_ON_THIS_BACKEND();
	for (i = 0; i < 1000; i++) {
		ASSERT_EQ(0, zchan_loan(self->p, 4096, &a, ZCHAN_NONBLOCK));
		memset(a, 0xa5, 4096);
		ASSERT_EQ(0, zchan_abort(self->p, a));
	}
	EXPECT_EQ(-EAGAIN, zchan_recv(self->c, x, sizeof(x), ZCHAN_NONBLOCK));
	ASSERT_EQ(0, zchan_loan(self->p, 100, &a, ZCHAN_NONBLOCK));
	ASSERT_EQ(0, zchan_loan(self->p, 100, &b, ZCHAN_NONBLOCK));
	memcpy(b, "second", 6);
	ASSERT_EQ(0, zchan_abort(self->p, a));		/* older: skipped */
	ASSERT_EQ(0, zchan_commit(self->p, b, 6));
	EXPECT_EQ(6, zchan_recv(self->c, x, sizeof(x), ZCHAN_NONBLOCK));
	EXPECT_EQ(0, memcmp(x, "second", 6));
	ASSERT_EQ(5, zchan_send(self->p, "queue", 5, ZCHAN_MORE));
	EXPECT_EQ(-EAGAIN, zchan_recv(self->c, x, sizeof(x), ZCHAN_NONBLOCK));
	ASSERT_EQ(0, zchan_loan(self->p, 100, &a, ZCHAN_NONBLOCK));
	ASSERT_EQ(0, zchan_abort(self->p, a));		/* sends "queue" */
	EXPECT_EQ(5, zchan_recv(self->c, x, sizeof(x), ZCHAN_NONBLOCK));
	EXPECT_EQ(0, memcmp(x, "queue", 5));
	EXPECT_EQ(-EAGAIN, zchan_recv(self->c, x, sizeof(x), ZCHAN_NONBLOCK));
}

/* zchan_recv_zc(3), zchan_recv_batch(3), zchan_release(3) */
TEST_F(errors, recv_zc_batch_release)
{
	struct zchan_msg m[2];
	const void *b;

	ENDS_ON_THIS_BACKEND();
	EXPECT_EQ(-EINVAL, zchan_recv_zc(self->p, &b, 0));
	EXPECT_EQ(-EINVAL, zchan_recv_zc(self->c, NULL, 0));
	EXPECT_EQ(-EINVAL, zchan_recv_zc(self->c, &b, 1U << 9));
	EXPECT_EQ(-EINVAL, zchan_recv_batch(self->c, m, 0, 0));
	EXPECT_EQ(-EINVAL, zchan_recv_batch(self->c, NULL, 2, 0));
	EXPECT_EQ(-EAGAIN, zchan_recv_zc(self->c, &b, ZCHAN_NONBLOCK));
	EXPECT_EQ(-EAGAIN, zchan_recv_batch(self->c, m, 2, ZCHAN_NONBLOCK));
	ASSERT_EQ(2, zchan_send(self->p, "ok", 2, 0));
	ASSERT_EQ(2, zchan_recv_zc(self->c, &b, 0));
	EXPECT_EQ(-EINVAL, zchan_release(self->c, (const char *)b + 1));
	EXPECT_EQ(-EINVAL, zchan_release(self->p, b));
	EXPECT_EQ(0, zchan_release(self->c, b));
	EXPECT_EQ(-EINVAL, zchan_release(self->c, b));
	zchan_close(self->p);
	self->p = NULL;
	EXPECT_EQ(-EPIPE, zchan_recv_zc(self->c, &b, 0));
	EXPECT_EQ(-EPIPE, zchan_recv_batch(self->c, m, 2, 0));
}

/* zchan_send_peer(3), zchan_recv_peer(3) */
TEST_F(errors, send_peer_recv_peer)
{
	struct handoff h, bad;
	struct zchan *p, *c;
	int sv[2], pfd[2], file, i;
	uint32_t max_msg;

	ENDS_ON_THIS_BACKEND();
	EXPECT_EQ(-EINVAL, zchan_send_peer(self->c, 0));
	EXPECT_EQ(-EINVAL, zchan_send_peer(self->p, -1));
	EXPECT_EQ(-EINVAL, zchan_recv_peer(0, NULL));
	EXPECT_EQ(-EINVAL, zchan_recv_peer(-1, &c));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	EXPECT_EQ(-EBUSY, zchan_send_peer(self->p, sv[0]));	/* sent */
	close(sv[0]);
	EXPECT_EQ(-EPIPE, zchan_recv_peer(sv[1], &c));
	close(sv[1]);

	/* a handle message whose fd is not a channel: -EPROTO, both */
	ASSERT_EQ(0, zchan_create(NULL, &self->attr, &p));
	ASSERT_EQ(0, capture_handoff(p, &h));
	ASSERT_EQ(0, pipe(pfd));
	file = open("/proc/self/exe", O_RDONLY);
	ASSERT_LE(0, file);
	EXPECT_EQ(-EPROTO, replay_handoff(&h, 0, file, &c));
	EXPECT_EQ(-EPROTO, replay_handoff(&h, 0, pfd[0], &c));
	if (variant->backend == ZCHAN_BACKEND_MEMFD) {
		/* another legal max_msg than the channel was made with */
		bad = h;
		memcpy(&max_msg, bad.bytes + 16 + 12, sizeof(max_msg));
		ASSERT_EQ(4096, max_msg);
		max_msg = 8192;
		memcpy(bad.bytes + 16 + 12, &max_msg, sizeof(max_msg));
		EXPECT_EQ(-EPROTO, replay_handoff(&bad, -1, -1, &c));
		/* the consumer memfd where the producer's belongs */
		EXPECT_EQ(-EPROTO, replay_handoff(&h, 0, h.fds[1], &c));
	}
	close(file);
	close(pfd[0]);
	close(pfd[1]);
	ASSERT_EQ(0, replay_handoff(&h, -1, -1, &c));	/* the real one */
	for (i = 0; i < h.nfds; i++)
		close(h.fds[i]);
	zchan_close(c);
	zchan_close(p);
}

/* zchan_wait(3), zchan_poll(3) */
TEST_F(errors, wait_poll)
{
	void *lb;

	ENDS_ON_THIS_BACKEND();
	EXPECT_EQ(-EINVAL, zchan_wait(NULL, 0));
	EXPECT_EQ(-EINVAL, zchan_poll(NULL));
	EXPECT_EQ(-ETIME, zchan_wait(self->c, 0));
	EXPECT_EQ(-ETIME, zchan_wait(self->c, 1000000));
	while (!zchan_loan(self->p, 4096, &lb, ZCHAN_NONBLOCK))
		;
	EXPECT_EQ(-ENOBUFS, zchan_wait(self->p, 0));
	EXPECT_EQ(-ENOBUFS, zchan_poll(self->p));
}

/* ------------------------------------------------------------------ */
/* Readiness parity (issue 13, item 3).                                */
/*
 * On both backends: an empty channel's fd is not readable after setup, a
 * message makes it readable, a call that finds the channel empty again
 * leaves it not readable, and the peer's death makes it readable with
 * zchan_poll() reporting POLLHUP.  What still differs (the memfd fd is an
 * epoll fd: POLLIN only, readable until a call finds the channel empty) is
 * in Documentation/library.rst.
 */
static int fd_events_within(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };

	return poll(&pfd, 1, timeout_ms) > 0 ? pfd.revents : 0;
}

static int fd_events(int fd)
{
	return fd_events_within(fd, 0);
}

static int fd_wait_events(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 60000) > 0 ? pfd.revents : 0;
}

static int send_on_ack(struct zchan *p, void *arg)
{
	int *ack = arg;
	char x;

	close(ack[1]);
	if (read(ack[0], &x, 1) != 1 || zchan_send(p, "m", 1, 0) != 1)
		return 1;
	for (;;)
		pause();	/* until killed */
}

FIXTURE(ready) {
	struct zchan_attr attr;
};

ZC_BACKEND_VARIANTS(ready);

FIXTURE_SETUP(ready)
{
	small_attr(&self->attr, 16, 65536, 1024);
	self->attr.backend = variant->backend;
}

FIXTURE_TEARDOWN(ready)
{
}

TEST_F(ready, consumer_fd_follows_messages_and_peer_death)
{
	struct zchan *c;
	int ack[2];
	char b[4];
	pid_t pid;

	ENDS_ON_THIS_BACKEND();
	ASSERT_EQ(0, pipe(ack));
	pid = zc_spawn_producer(&self->attr, send_on_ack, ack, &c);
	ASSERT_LT(0, pid);
	close(ack[0]);
	EXPECT_EQ(0, fd_events(zchan_fd(c)));		/* empty */
	EXPECT_EQ(0, zchan_poll(c));
	ASSERT_EQ(1, write(ack[1], "a", 1));
	EXPECT_TRUE(fd_wait_events(zchan_fd(c)) & POLLIN);	/* a message */
	EXPECT_EQ(POLLIN, zchan_poll(c));
	EXPECT_EQ(1, zchan_recv(c, b, sizeof(b), 0));
	EXPECT_EQ(-EAGAIN, zchan_recv(c, b, sizeof(b), ZCHAN_NONBLOCK));
	EXPECT_EQ(0, fd_events(zchan_fd(c)));		/* empty again */
	EXPECT_EQ(0, zchan_poll(c));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	zc_child_killed(pid, SIGKILL);
	EXPECT_TRUE(fd_wait_events(zchan_fd(c)) & (POLLIN | POLLHUP));
	EXPECT_EQ(POLLHUP, zchan_poll(c));
	EXPECT_EQ(-EPIPE, zchan_recv(c, b, sizeof(b), 0));
	close(ack[1]);
	zchan_close(c);
}

TEST_F(ready, producer_sees_consumer_death)
{
	struct zchan *p;
	int sv[2];
	pid_t pid;

	ENDS_ON_THIS_BACKEND();
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	ASSERT_EQ(0, zchan_create(NULL, &self->attr, &p));
	EXPECT_EQ(POLLOUT, zchan_poll(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zchan *c;

		if (zchan_recv_peer(sv[1], &c))
			_exit(90);
		if (write(sv[1], "r", 1) != 1)
			_exit(91);
		for (;;)
			pause();
	}
	ASSERT_EQ(0, give_consumer(p, sv[0]));
	close(sv[1]);
	EXPECT_EQ(POLLOUT, zchan_poll(p));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	zc_child_killed(pid, SIGKILL);
	EXPECT_NE(0, fd_wait_events(zchan_fd(p)));
	EXPECT_EQ(POLLERR | POLLHUP, zchan_poll(p));
	EXPECT_EQ(-EPIPE, zchan_send(p, "x", 1, 0));
	zchan_close(p);
}

/*
 * An end's fd is readable whenever a receive would not block, whatever
 * happened before the consumer attached: messages sent before
 * zchan_send_peer(), or while the consumer end travelled, were sent while
 * no consumer waited (memfd: nobody to kick).  What is already there
 * shows at once, so a short poll will do.
 */
#define READY_EARLY_MSGS	5	/* before zchan_send_peer() */
#define READY_TRAVEL_MSGS	3	/* after it, before zchan_recv_peer() */
#define READY_NOW_MS		200

/*
 * Hand @p's consumer end over within this process, sending messages
 * [@from, @to) while it travels and closing @p then if @close_p: the
 * consumer (*@c) attaches after all that.  0, or what failed.
 */
static int attach_late(struct zchan *p, uint64_t from, uint64_t to,
		       bool close_p, struct zchan **c)
{
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	ret = zchan_send_peer(p, sv[0]);
	if (!ret)
		ret = send_seq(p, from, to);
	if (close_p)
		zchan_close(p);
	if (!ret)
		ret = zchan_recv_peer(sv[1], c);
	close(sv[0]);
	close(sv[1]);
	return ret;
}

TEST_F(ready, consumer_fd_shows_messages_sent_before_attach)
{
	const uint64_t n = READY_EARLY_MSGS + READY_TRAVEL_MSGS;
	struct zchan *p, *c;
	char b[ENDS_MAX_MSG];

	ENDS_ON_THIS_BACKEND();
	ASSERT_EQ(0, zchan_create(NULL, &self->attr, &p));
	ASSERT_EQ(0, send_seq(p, 0, READY_EARLY_MSGS));
	ASSERT_EQ(0, attach_late(p, READY_EARLY_MSGS, n, false, &c));
	EXPECT_TRUE(fd_events_within(zchan_fd(c), READY_NOW_MS) & POLLIN);
	EXPECT_EQ(POLLIN, zchan_poll(c));
	/* still readable while messages remain ... */
	ASSERT_EQ(0, recv_seq(c, 0, 1));
	EXPECT_TRUE(fd_events(zchan_fd(c)) & POLLIN);
	ASSERT_EQ(0, recv_seq(c, 1, n));
	/* ... not once a call found it empty, until the next message */
	EXPECT_EQ(-EAGAIN, zchan_recv(c, b, sizeof(b), ZCHAN_NONBLOCK));
	EXPECT_EQ(0, fd_events(zchan_fd(c)));
	ASSERT_EQ(0, send_seq(p, n, n + 1));
	EXPECT_TRUE(fd_wait_events(zchan_fd(c)) & POLLIN);
	ASSERT_EQ(0, recv_seq(c, n, n + 1));
	zchan_close(p);
	EXPECT_EQ(-EPIPE, zchan_recv(c, b, sizeof(b), 0));
	zchan_close(c);
}

/* ... also when the producer closed before the consumer attached ... */
TEST_F(ready, consumer_fd_shows_messages_of_a_producer_closed_before_attach)
{
	struct zchan *p, *c;
	char b[ENDS_MAX_MSG];

	ENDS_ON_THIS_BACKEND();
	ASSERT_EQ(0, zchan_create(NULL, &self->attr, &p));
	ASSERT_EQ(0, send_seq(p, 0, READY_EARLY_MSGS));
	ASSERT_EQ(0, attach_late(p, 0, 0, true, &c));
	EXPECT_TRUE(fd_events_within(zchan_fd(c), READY_NOW_MS) &
		    (POLLIN | POLLHUP));
	EXPECT_EQ(POLLIN | POLLHUP, zchan_poll(c));
	ASSERT_EQ(0, recv_seq(c, 0, READY_EARLY_MSGS));
	EXPECT_EQ(-EPIPE, zchan_recv(c, b, sizeof(b), ZCHAN_NONBLOCK));
	zchan_close(c);
}

/*
 * ... and a producer that filled the ring (-EAGAIN) before the consumer
 * attached: the consumer's fd shows the messages, and once it took them
 * the producer's fd shows the room.
 */
TEST_F(ready, producer_fd_shows_room_freed_by_a_later_consumer)
{
	unsigned char buf[ENDS_MAX_MSG];
	struct zchan *p, *c;
	uint64_t n;
	ssize_t r;

	ENDS_ON_THIS_BACKEND();
	ASSERT_EQ(0, zchan_create(NULL, &self->attr, &p));
	for (n = 0;; n++) {
		uint32_t len = msg_len(n, ENDS_MAX_MSG);

		zc_payload_fill(buf, len, 0, n);
		r = zchan_send(p, buf, len, ZCHAN_NONBLOCK);
		if (r == -EAGAIN)
			break;
		ASSERT_EQ(len, r);
	}
	ASSERT_LT(0, n);
	ASSERT_EQ(0, attach_late(p, n, n, false, &c));
	EXPECT_TRUE(fd_events_within(zchan_fd(c), READY_NOW_MS) & POLLIN);
	EXPECT_EQ(0, fd_events(zchan_fd(p)));		/* full */
	EXPECT_EQ(0, zchan_poll(p));
	ASSERT_EQ(0, recv_seq(c, 0, n));
	EXPECT_NE(0, fd_events_within(zchan_fd(p), 60000));	/* room */
	EXPECT_EQ(POLLOUT, zchan_poll(p));
	ASSERT_EQ(0, send_seq(p, n, n + 1));
	ASSERT_EQ(0, recv_seq(c, n, n + 1));
	zchan_close(p);
	zchan_close(c);
}

/* memfd: 64 live processes may use an end; the next one gets -EUSERS. */
TEST(memfd_users_table_full)
{
	struct zchan_attr a;
	struct zchan *p, *c;
	pid_t pids[ZCHAN_TEST_MEMFD_HOLDERS];
	int ready[2], i, n = 0;
	char b;

	if (expected_backend() != ZCHAN_BACKEND_MEMFD)
		SKIP(return, "a memfd backend limit");
	small_attr(&a, 16, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &p, &c));
	ASSERT_EQ(0, pipe(ready));
	/* this process is one user of c: 63 more fill the table */
	for (i = 0; i < ZCHAN_TEST_MEMFD_HOLDERS - 1; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (!pids[i]) {
			close(ready[0]);
			if (zchan_poll(c) != 0 || write(ready[1], "u", 1) != 1)
				_exit(90);
			for (;;)
				pause();
		}
		n++;
		ASSERT_EQ(1, read(ready[0], &b, 1));
	}
	pids[n] = fork();
	ASSERT_LE(0, pids[n]);
	if (!pids[n])
		_exit(zchan_poll(c) == -EUSERS ? 0 : 91);
	zc_child_exits(pids[n], 0);
	for (i = 0; i < n; i++) {
		kill(pids[i], SIGKILL);
		zc_child_wait(pids[i], -1);
	}
	/* dead users' words are taken over */
	pids[0] = fork();
	ASSERT_LE(0, pids[0]);
	if (!pids[0])
		_exit(zchan_poll(c) == 0 ? 0 : 92);
	zc_child_exits(pids[0], 0);
	close(ready[0]);
	close(ready[1]);
	zchan_close(c);
	zchan_close(p);
}

/* How many of this process's descriptors are io_urings. */
static int io_urings_open(void)
{
	char path[64], link[64];
	int fd, n = 0;
	ssize_t len;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = 0;
		if (!strcmp(link, "anon_inode:[io_uring]"))
			n++;
	}
	return n;
}

/* An end makes its io_uring when it first sleeps, not at setup. */
TEST(no_io_uring_until_the_first_sleep)
{
	struct zchan *p, *c;
	char buf[8];
	int before;

	before = io_urings_open();
	ASSERT_LE(0, before);
	ASSERT_EQ(0, zc_local_pair(NULL, &p, &c));
	ASSERT_EQ(3, zchan_send(p, "abc", 3, 0));
	ASSERT_EQ(3, zchan_recv(c, buf, sizeof(buf), 0));
	EXPECT_EQ(before, io_urings_open());
	/* a timed sleep: memfd's is in the ring, the kernel's in the ioctl */
	EXPECT_EQ(-ETIME, zchan_wait(c, 1000000));
	if (expected_backend() == ZCHAN_BACKEND_MEMFD) {
		EXPECT_EQ(before + 1, io_urings_open());
	} else {
		EXPECT_EQ(before, io_urings_open());
	}
	zchan_close(c);
	zchan_close(p);
	EXPECT_EQ(before, io_urings_open());
}

/* Every system call the waits made, counted: kicks and sleeps at least. */
TEST(stats_count_every_wait_syscall)
{
	struct zchan_stats p0, c0, p1, c1;
	struct zchan_attr a;
	struct zchan *p, *c;
	char buf[8];

	small_attr(&a, 8, 16384, 64);
	ASSERT_EQ(0, zc_local_pair(&a, &p, &c));
	ASSERT_EQ(0, zchan_stats(p, &p0));
	ASSERT_EQ(0, zchan_stats(c, &c0));
	EXPECT_EQ(0, p0.syscalls);	/* setup is not the data path */
	EXPECT_EQ(0, c0.syscalls);
	EXPECT_EQ(-EAGAIN, zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK));
	EXPECT_EQ(-ETIME, zchan_wait(c, 1000000));
	ASSERT_EQ(3, zchan_send(p, "abc", 3, 0));	/* kicks: c is armed */
	ASSERT_EQ(3, zchan_recv(c, buf, sizeof(buf), 0));
	ASSERT_EQ(0, zchan_stats(p, &p1));
	ASSERT_EQ(0, zchan_stats(c, &c1));
	EXPECT_LE(1, p1.kicks);
	EXPECT_EQ(0, p1.waits);
	EXPECT_EQ(p1.kicks, p1.syscalls);	/* it never waited */
	EXPECT_LE(1, c1.waits);
	/* memfd: the arms' drains and the liveness checks come on top */
	if (expected_backend() == ZCHAN_BACKEND_MEMFD) {
		EXPECT_LT(c1.kicks + c1.waits, c1.syscalls);
	} else {
		EXPECT_LE(c1.kicks + c1.waits, c1.syscalls);
	}
	zchan_close(c);
	zchan_close(p);
}

/* This thread's system calls so far, from the raw_syscalls tracepoint. */
static int syscall_counter(void)
{
	struct perf_event_attr attr;
	char buf[32] = "";
	FILE *f;

	f = fopen("/sys/kernel/tracing/events/raw_syscalls/sys_enter/id", "r");
	if (!f)
		f = fopen("/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id", "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.size = sizeof(attr);
	attr.config = strtoull(buf, NULL, 10);
	return attr.config ? (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1,
					  PERF_FLAG_FD_CLOEXEC) : -1;
}

/* The library's count for @p's end, and @c's if not NULL. */
static uint64_t syscalls_of(struct zchan *p, struct zchan *c)
{
	struct zchan_stats sp, sc = { 0 };

	if (zchan_stats(p, &sp) || (c && zchan_stats(c, &sc)))
		return 0;
	return sp.syscalls + sc.syscalls;
}

/*
 * The counters against the kernel's own count: an -EAGAIN (it arms), a
 * timed sleep, a send that kicks, the first wait on a peer in another
 * process (it starts watching the process) and a sleep it wakes from.
 */
TEST(stats_syscalls_are_the_kernels_count)
{
	struct zchan *p, *c, *cc;
	uint64_t lib0, lib1, n0, n1;
	int fd, sv[2];
	char buf[8];
	pid_t pid;

	if (expected_backend() != ZCHAN_BACKEND_MEMFD)
		SKIP(return, "in the guest: TCG and tracepoints do not mix");
	fd = syscall_counter();
	if (fd < 0)
		SKIP(return, "no raw_syscalls tracepoint to count with");
	ASSERT_EQ(0, zc_local_pair(NULL, &p, &c));
	ASSERT_EQ(sizeof(n0), read(fd, &n0, sizeof(n0)));
	lib0 = syscalls_of(p, c);
	EXPECT_EQ(-EAGAIN, zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK));
	EXPECT_EQ(-ETIME, zchan_wait(c, 1000000));
	EXPECT_EQ(3, zchan_send(p, "abc", 3, 0));
	EXPECT_EQ(3, zchan_recv(c, buf, sizeof(buf), 0));
	EXPECT_EQ(-EAGAIN, zchan_recv(c, buf, sizeof(buf), ZCHAN_NONBLOCK));
	lib1 = syscalls_of(p, c);
	ASSERT_EQ(sizeof(n1), read(fd, &n1, sizeof(n1)));
	/* the second read(2) of the counter is in n1 */
	EXPECT_EQ(n1 - n0 - 1, lib1 - lib0);
	zchan_close(c);
	zchan_close(p);

	/* a consumer in this process, its producer in a child */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct zchan *q;

		close(sv[0]);
		if (zchan_create(NULL, NULL, &q) || zchan_send_peer(q, sv[1]) ||
		    read(sv[1], buf, 1) != 1 || zchan_send(q, "x", 1, 0) != 1)
			_exit(1);
		zchan_close(q);
		_exit(0);
	}
	close(sv[1]);
	ASSERT_EQ(0, zchan_recv_peer(sv[0], &cc));
	ASSERT_EQ(sizeof(n0), read(fd, &n0, sizeof(n0)));
	lib0 = syscalls_of(cc, NULL);
	EXPECT_EQ(-ETIME, zchan_wait(cc, 1000000));
	lib1 = syscalls_of(cc, NULL);
	ASSERT_EQ(sizeof(n1), read(fd, &n1, sizeof(n1)));
	EXPECT_EQ(n1 - n0 - 1, lib1 - lib0);
	ASSERT_EQ(1, write(sv[0], "g", 1));
	ASSERT_EQ(sizeof(n0), read(fd, &n0, sizeof(n0)));
	lib0 = syscalls_of(cc, NULL);
	EXPECT_EQ(1, zchan_recv(cc, buf, sizeof(buf), 0));	/* may sleep */
	lib1 = syscalls_of(cc, NULL);
	ASSERT_EQ(sizeof(n1), read(fd, &n1, sizeof(n1)));
	EXPECT_EQ(n1 - n0 - 1, lib1 - lib0);
	EXPECT_EQ(0, zc_child_wait(pid, -1));
	zchan_close(cc);
	close(sv[0]);
	close(fd);
}

TEST_HARNESS_MAIN
