// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * libzchan batches: ZCHAN_MORE on zchan_send() and zchan_commit_flags(),
 * zchan_flush(), zchan_release_batch(), and the batch thresholds behind
 * them (a quarter of the ring or pool).  Every test runs on both backends
 * (FIXTURE_VARIANT); the kernel variant is skipped where /dev/zchan is
 * missing, so it runs in the guest.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zchan.h>

#include "kselftest_harness.h"
#include "../common/zchan_test_lib.h"
#include "../common/zchan_test_payload.h"

/* TCG guests are slow: give every test room. */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 120

#define STREAM_MSGS	3000
#define STREAM_MAX	700

FIXTURE(batch) {
	struct zchan *p, *c;
	pid_t child;
};

ZC_BACKEND_VARIANTS(batch);

FIXTURE_SETUP(batch)
{
	self->p = self->c = NULL;
	self->child = 0;
}

FIXTURE_TEARDOWN(batch)
{
	if (self->child > 0) {
		kill(self->child, SIGKILL);
		zc_child_wait(self->child, -1);
	}
	zchan_close(self->p);
	zchan_close(self->c);
}

/* Message @seq: 1 to @max bytes of payload (0, @seq). */
static uint32_t msg_len(uint32_t seq, uint32_t max)
{
	return zc_payload_len(0, seq, 1, max);
}

static bool check(const void *buf, size_t len, uint32_t seq, uint32_t max)
{
	return len == msg_len(seq, max) && zc_payload_ok(buf, len, 0, seq);
}

/* Messages sent with ZCHAN_MORE stay queued until zchan_flush(). */
TEST_F(batch, more_waits_for_flush)
{
	unsigned char buf[64];
	struct zchan_attr a;
	struct zchan_msg m[8];
	uint32_t i;

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 64, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	for (i = 0; i < 3; i++) {
		zc_payload_fill(buf, msg_len(i, 64), 0, i);
		ASSERT_EQ(msg_len(i, 64), zchan_send(self->p, buf,
						     msg_len(i, 64), ZCHAN_MORE));
	}
	EXPECT_EQ(-EAGAIN, zchan_recv(self->c, buf, sizeof(buf),
				      ZCHAN_NONBLOCK));
	EXPECT_EQ(0, zchan_poll(self->c) & POLLIN);
	ASSERT_EQ(0, zchan_flush(self->p));
	EXPECT_EQ(POLLIN, zchan_poll(self->c) & POLLIN);
	ASSERT_EQ(3, zchan_recv_batch(self->c, m, 8, ZCHAN_NONBLOCK));
	for (i = 0; i < 3; i++)
		EXPECT_TRUE(check(m[i].buf, m[i].len, i, 64));
	ASSERT_EQ(3, zchan_release_batch(self->c, m, 3));
	/* a flush with nothing queued is harmless */
	EXPECT_EQ(0, zchan_flush(self->p));
	EXPECT_EQ(-EAGAIN, zchan_recv(self->c, buf, sizeof(buf),
				      ZCHAN_NONBLOCK));
}

/* A commit without ZCHAN_MORE publishes everything queued before it. */
TEST_F(batch, plain_commit_publishes_the_queue)
{
	struct zchan_attr a;
	struct zchan_msg m[4];
	void *b0, *b1;

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 64, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	ASSERT_EQ(0, zchan_loan(self->p, 100, &b0, 0));
	ASSERT_EQ(0, zchan_loan(self->p, 100, &b1, 0));
	zc_payload_fill(b0, msg_len(0, 100), 0, 0);
	zc_payload_fill(b1, msg_len(1, 100), 0, 1);
	ASSERT_EQ(0, zchan_commit_flags(self->p, b0, msg_len(0, 100),
					ZCHAN_MORE));
	EXPECT_EQ(-EAGAIN, zchan_recv_batch(self->c, m, 4, ZCHAN_NONBLOCK));
	ASSERT_EQ(0, zchan_commit(self->p, b1, msg_len(1, 100)));
	ASSERT_EQ(2, zchan_recv_batch(self->c, m, 4, ZCHAN_NONBLOCK));
	EXPECT_TRUE(check(m[0].buf, m[0].len, 0, 100));
	EXPECT_TRUE(check(m[1].buf, m[1].len, 1, 100));
	EXPECT_EQ(2, zchan_release_batch(self->c, m, 2));
}

/* A quarter of the ring queued goes out without a flush. */
TEST_F(batch, quarter_of_ring_publishes)
{
	unsigned char buf[32] = { 0 };
	struct zchan_attr a;
	struct zchan_msg m[16];
	int i;

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 16, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(8, zchan_send(self->p, buf, 8, ZCHAN_MORE));
	EXPECT_EQ(-EAGAIN, zchan_recv_batch(self->c, m, 16, ZCHAN_NONBLOCK));
	ASSERT_EQ(8, zchan_send(self->p, buf, 8, ZCHAN_MORE));
	EXPECT_EQ(4, zchan_recv_batch(self->c, m, 16, ZCHAN_NONBLOCK));
	EXPECT_EQ(4, zchan_release_batch(self->c, m, 4));
}

/* A producer that must wait publishes its queue first, or both would wait. */
TEST_F(batch, queue_goes_out_before_waiting)
{
	unsigned char buf[32] = { 0 };
	struct zchan_attr a;
	struct zchan_msg held[61], m[8];
	int i;

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 64, 1 << 20, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	/* the consumer holds 61 of the 64 slots */
	for (i = 0; i < 61; i++)
		ASSERT_EQ(8, zchan_send(self->p, buf, 8, 0));
	ASSERT_EQ(61, zchan_recv_batch(self->c, held, 61, ZCHAN_NONBLOCK));
	/* 3 queued, far from a quarter of the ring or pool */
	for (i = 0; i < 3; i++)
		ASSERT_EQ(8, zchan_send(self->p, buf, 8, ZCHAN_MORE));
	EXPECT_EQ(-EAGAIN, zchan_recv_batch(self->c, m, 8, ZCHAN_NONBLOCK));
	/* the ring is full: the producer would wait, so it published */
	EXPECT_EQ(-EAGAIN, zchan_send(self->p, buf, 8,
				      ZCHAN_MORE | ZCHAN_NONBLOCK));
	EXPECT_EQ(3, zchan_recv_batch(self->c, m, 8, ZCHAN_NONBLOCK));
	EXPECT_EQ(61, zchan_release_batch(self->c, held, 61));
	EXPECT_EQ(3, zchan_release_batch(self->c, m, 3));
}

static int stream_producer(struct zchan *p, void *arg)
{
	unsigned int flags_every = *(unsigned int *)arg;
	static unsigned char buf[STREAM_MAX];
	uint32_t seq;

	for (seq = 0; seq < STREAM_MSGS; seq++) {
		uint32_t len = msg_len(seq, STREAM_MAX);
		unsigned int more = seq % flags_every ? ZCHAN_MORE : 0;
		void *lb;

		if (seq & 1) {
			zc_payload_fill(buf, len, 0, seq);
			if (zchan_send(p, buf, len, more) != (ssize_t)len)
				return 1;
			continue;
		}
		if (zchan_loan(p, len, &lb, 0))
			return 2;
		zc_payload_fill(lb, len, 0, seq);
		if (zchan_commit_flags(p, lb, len, more))
			return 3;
	}
	return zchan_flush(p) ? 4 : 0;
}

/*
 * A stream in batches between two processes through a small ring and pool
 * (the producer runs out of room over and over, and goes back to the
 * front of the pool): every message arrives, whole, once, in order,
 * received and released in batches, some released out of order.
 */
TEST_F(batch, stream_in_batches)
{
	struct zchan_attr a;
	struct zchan_msg m[16];
	unsigned int flags_every = 7;
	uint32_t seq = 0;

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 32, 16384, STREAM_MAX);
	self->child = zc_spawn_producer(&a, stream_producer, &flags_every,
					&self->c);
	ASSERT_LT(0, self->child);
	while (seq < STREAM_MSGS) {
		int n = zchan_recv_batch(self->c, m, 16, 0), i;

		ASSERT_LT(0, n);
		for (i = 0; i < n; i++)
			ASSERT_TRUE(check(m[i].buf, m[i].len, seq + i,
					  STREAM_MAX));
		seq += n;
		if (n >= 2) {
			/* the second half first, then the rest */
			ASSERT_EQ(n - n / 2, zchan_release_batch(self->c,
					m + n / 2, n - n / 2));
			ASSERT_EQ(n / 2, zchan_release_batch(self->c, m,
							      n / 2));
		} else {
			ASSERT_EQ(0, zchan_release(self->c, m[0].buf));
		}
	}
	zc_child_exits(self->child, 0);
	self->child = 0;
	EXPECT_EQ(-EPIPE, zchan_recv_batch(self->c, m, 16, 0));
}

/* zchan_release_batch() releases all or nothing. */
TEST_F(batch, release_batch_all_or_nothing)
{
	unsigned char buf[32] = { 0 }, other[8];
	struct zchan_attr a;
	struct zchan_msg m[4], bad[3];
	int i;

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 4, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(8, zchan_send(self->p, buf, 8, 0));
	ASSERT_EQ(4, zchan_recv_batch(self->c, m, 4, ZCHAN_NONBLOCK));

	/* a buffer that is not ours, then the same buffer twice */
	bad[0] = m[0];
	bad[1].buf = other;
	bad[1].len = sizeof(other);
	EXPECT_EQ(-EINVAL, zchan_release_batch(self->c, bad, 2));
	bad[1] = m[1];
	bad[2] = m[0];
	EXPECT_EQ(-EINVAL, zchan_release_batch(self->c, bad, 3));
	EXPECT_EQ(-EINVAL, zchan_release_batch(self->c, NULL, 1));
	EXPECT_EQ(-EINVAL, zchan_release_batch(self->c, m, 0));
	EXPECT_EQ(-EINVAL, zchan_release_batch(self->p, m, 1));
	EXPECT_EQ(-EINVAL, zchan_release_batch(NULL, m, 1));

	/* nothing was released: the ring is still full */
	EXPECT_EQ(-EAGAIN, zchan_send(self->p, buf, 8, ZCHAN_NONBLOCK));
	/* each one is still borrowed, exactly once */
	EXPECT_EQ(2, zchan_release_batch(self->c, m + 2, 2));
	EXPECT_EQ(-EINVAL, zchan_release(self->c, m[2].buf));
	EXPECT_EQ(2, zchan_release_batch(self->c, m, 2));
	for (i = 0; i < 4; i++)
		EXPECT_EQ(8, zchan_send(self->p, buf, 8, ZCHAN_NONBLOCK));
}

/* Bad flags and ends are refused and lose nothing. */
TEST_F(batch, bad_flags_and_ends)
{
	unsigned char buf[32] = { 0 };
	struct zchan_attr a;
	void *lb;

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 16, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	EXPECT_EQ(-EINVAL, zchan_loan(self->p, 8, &lb, ZCHAN_MORE));
	ASSERT_EQ(0, zchan_loan(self->p, 8, &lb, 0));
	EXPECT_EQ(-EINVAL, zchan_commit_flags(self->p, lb, 8, ZCHAN_NONBLOCK));
	EXPECT_EQ(-EINVAL, zchan_commit_flags(self->p, lb, 8, 1U << 7));
	EXPECT_EQ(-EINVAL, zchan_commit_flags(self->c, lb, 8, ZCHAN_MORE));
	EXPECT_EQ(-EINVAL, zchan_commit_flags(self->p, buf, 8, ZCHAN_MORE));
	EXPECT_EQ(-EINVAL, zchan_send(self->p, buf, 8, 1U << 7));
	EXPECT_EQ(-EINVAL, zchan_recv(self->c, buf, sizeof(buf), ZCHAN_MORE));
	EXPECT_EQ(-EINVAL, zchan_flush(self->c));
	EXPECT_EQ(-EINVAL, zchan_flush(NULL));
	/* the loan survived the bad commits */
	memcpy(lb, "12345678", 8);
	ASSERT_EQ(0, zchan_commit_flags(self->p, lb, 8, 0));
	EXPECT_EQ(8, zchan_recv(self->c, buf, sizeof(buf), ZCHAN_NONBLOCK));
	EXPECT_EQ(0, memcmp(buf, "12345678", 8));
}

/* zchan_flush() reports a consumer that went away. */
TEST_F(batch, flush_after_consumer_closed)
{
	unsigned char buf[8] = { 0 };
	struct zchan_attr a;

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 16, 65536, 1024);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p, &self->c));
	ASSERT_EQ(8, zchan_send(self->p, buf, 8, ZCHAN_MORE));
	zchan_close(self->c);
	self->c = NULL;
	EXPECT_EQ(-EPIPE, zchan_flush(self->p));
}

TEST_HARNESS_MAIN
