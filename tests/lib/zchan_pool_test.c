// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * libzchan pool placement: where the producer's loans land
 * (Documentation/library.rst, "Where messages go in the pool").  Checked
 * through the addresses zchan_loan() hands out - the first loan of a new
 * channel is at the front of the pool - never through timing.  Both ends
 * in one process; every test runs on both backends (FIXTURE_VARIANT), the
 * kernel variant in the guest.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <zchan.h>

#include "kselftest_harness.h"
#include "../common/zchan_test_lib.h"
#include "../common/zchan_test_payload.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 120

#define POOL		(1U << 20)
/*
 * Small messages stay within this much of the front: the first half of
 * the pool (the producer goes back to the front only once that leaves it
 * half the pool) and twice the window (ZCHAN_POOL_HOT, ring.c) at which
 * it looks at the consumer.
 */
#define FRONT		(POOL / 2 + (128U << 10))

FIXTURE(pool) {
	struct zchan *p, *c;
	unsigned char *front;	/* the pool's first byte, in the producer */
	uint32_t sent, got;
};

FIXTURE_VARIANT(pool) {
	unsigned int backend;
};

FIXTURE_VARIANT_ADD(pool, memfd) {
	.backend = ZCHAN_BACKEND_MEMFD,
};

FIXTURE_VARIANT_ADD(pool, kernel) {
	.backend = ZCHAN_BACKEND_KERNEL,
};

FIXTURE_SETUP(pool)
{
	self->p = self->c = NULL;
	self->front = NULL;
	self->sent = self->got = 0;
}

FIXTURE_TEARDOWN(pool)
{
	zchan_close(self->p);
	zchan_close(self->c);
}

#define NEED_BACKEND()							\
	do {								\
		if (variant->backend == ZCHAN_BACKEND_KERNEL &&		\
		    access("/dev/zchan", F_OK))				\
			SKIP(return, "no /dev/zchan (zchan.ko not loaded)"); \
	} while (0)

/* A new channel (closing the one before) with a 1 MiB pool. */
static int pool_pair(FIXTURE_DATA(pool) *self, unsigned int backend,
		     unsigned int entries, size_t max_msg)
{
	struct zchan_attr a;

	zchan_close(self->p);
	zchan_close(self->c);
	self->p = self->c = NULL;
	self->front = NULL;
	self->sent = self->got = 0;
	zchan_attr_init(&a);
	a.backend = backend;
	a.ring_entries = entries;
	a.pool_size = POOL;
	a.max_msg = max_msg;
	return zc_local_pair(&a, &self->p, &self->c);
}

/* Loan @len bytes, fill and commit them: the loan's offset in the pool. */
static int64_t send_one(FIXTURE_DATA(pool) *self, size_t len,
			unsigned int flags)
{
	void *buf;
	int ret = zchan_loan(self->p, len, &buf, flags);

	if (ret)
		return ret;
	if (!self->front)
		self->front = buf;	/* a new channel's first loan */
	zc_payload_fill(buf, len, 0, self->sent++);
	ret = zchan_commit(self->p, buf, len);
	return ret ? ret : (unsigned char *)buf - self->front;
}

/* Receive the oldest message, check it and give it back: 0 or -errno. */
static int recv_one(FIXTURE_DATA(pool) *self, size_t len)
{
	const void *buf;
	ssize_t n = zchan_recv_zc(self->c, &buf, ZCHAN_NONBLOCK);

	if (n < 0)
		return (int)n;
	if ((size_t)n != len || !zc_payload_ok(buf, len, 0, self->got++))
		return -EBADMSG;
	return zchan_release(self->c, buf);
}

/*
 * A consumer that keeps up (@depth messages in flight) while @msgs
 * messages of @len bytes go through: the highest pool byte a loan
 * reached, or -errno.
 */
static int64_t keep_up(FIXTURE_DATA(pool) *self, size_t len,
		       unsigned int depth, unsigned int msgs)
{
	int64_t high = 0;
	unsigned int i;

	for (i = 0; i < msgs; i++) {
		int64_t off = send_one(self, len, ZCHAN_NONBLOCK);
		int ret;

		if (off < 0)
			return off;
		if (off + (int64_t)len > high)
			high = off + (int64_t)len;
		if (i + 1 < depth)
			continue;
		ret = recv_one(self, len);
		if (ret)
			return ret;
	}
	return high;
}

/*
 * Small messages and a consumer that keeps up: the producer keeps going
 * back to the front of the pool, so 4 pools' worth of 1 KiB messages
 * never get far into its second half.
 */
TEST_F(pool, small_messages_stay_in_the_first_half)
{
	unsigned int depth;

	NEED_BACKEND();

	for (depth = 1; depth <= 16; depth *= 4) {
		int64_t high;

		ASSERT_EQ(0, pool_pair(self, variant->backend, 256, 1024));
		high = keep_up(self, 1024, depth, 4 * POOL / 1024);
		ASSERT_LT(0, high);
		EXPECT_GE(FRONT, high) TH_LOG("depth %u: a loan at %lld",
					      depth, (long long)high);
	}
}

/*
 * Larger messages take the pool in turn: each part of it is written again
 * only after all the rest (its lines have left the consumer's cache, and
 * writing them costs no snoop; see ring.c, prod_rewind()).
 */
TEST_F(pool, larger_messages_take_the_pool_in_turn)
{
	const size_t len = 64U << 10;
	unsigned int i;

	NEED_BACKEND();

	ASSERT_EQ(0, pool_pair(self, variant->backend, 256, len));
	for (i = 0; i < 3 * POOL / len; i++) {
		int64_t off = send_one(self, len, ZCHAN_NONBLOCK);

		ASSERT_EQ((int64_t)(i * len % POOL), off);
		ASSERT_EQ(0, recv_one(self, len));
	}
}

TEST_HARNESS_MAIN
