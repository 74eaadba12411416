// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Fan-in channels (max_producers > 1, one consumer), tested from the
 * contract: issue 19, Documentation/many.rst and the man pages
 * zchan_attach(3), zchan_send_end(3) and zchan_ends(3).
 *
 *  - API errors: a role, flag or reserved field not known, or a maximum
 *    above ZCHAN_ENDS_MAX: -EINVAL; several consumers: -EOPNOTSUPP (work
 *    queues and broadcast are not built yet); errno left alone by every
 *    call; zchan_get_attr()'s maxima.
 *
 * Both backends as fixture variants; the kernel variant runs in the
 * guests.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zchan.h>

#include "kselftest_harness.h"
#include "../common/zchan_test_lib.h"
#include "../common/zchan_test_utils.h"

/* TCG guests are slow: give every test room. */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300

#define NPROD_MAX	8
#define MSG_MAX		1024

static void fanin_attr(struct zchan_attr *a, unsigned int backend,
		       unsigned int producers, unsigned int entries,
		       size_t pool)
{
	zc_attr(a, backend, entries, pool, MSG_MAX);
	a->max_producers = producers;
}

FIXTURE(fanin) {
	struct zchan *p[NPROD_MAX], *c;
};

ZC_BACKEND_VARIANTS(fanin);

FIXTURE_SETUP(fanin)
{
	memset(self->p, 0, sizeof(self->p));
	self->c = NULL;
}

FIXTURE_TEARDOWN(fanin)
{
	unsigned int i;

	for (i = 0; i < NPROD_MAX; i++)
		zchan_close(self->p[i]);
	zchan_close(self->c);
}

/* ------------------------------------------------------------------ */
/* API errors                                                          */

/*
 * zchan_create()'s new fields, errno preset: maxima above
 * ZCHAN_ENDS_MAX, reserved fields and unknown flags are -EINVAL; several
 * consumers are -EOPNOTSUPP but for a broadcast from one producer (work
 * queues and N:M broadcast are not built yet: this test changes when
 * they are).  Holds on both backends with or without fan-in.
 */
TEST_F(fanin, create_errors_ignore_errno)
{
	struct zchan_attr a, bad;
	struct zchan *z = NULL;
	unsigned int i;

	ZC_NEED_BACKEND();

	fanin_attr(&a, variant->backend, 2, 16, 65536);
	bad = a;
	bad.max_producers = ZCHAN_ENDS_MAX + 1;
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_create(NULL, &bad, &z));
	bad.max_producers = ~0U;
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_create(NULL, &bad, &z));
	bad = a;
	bad.max_consumers = ZCHAN_ENDS_MAX + 1;
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_create(NULL, &bad, &z));
	for (i = 0; i < sizeof(a.reserved) / sizeof(a.reserved[0]); i++) {
		bad = a;
		bad.reserved[i] = 1;
		EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_create(NULL, &bad, &z));
	}
	bad = a;
	bad.flags = 1U << 2;	/* the first flag not known */
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_create(NULL, &bad, &z));
	bad.flags = ZCHAN_BROADCAST | 1U << 31;
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_create(NULL, &bad, &z));

	/*
	 * work queues and N:M broadcast: not built yet (many.rst); broadcast
	 * from one producer is zchan_bcast_test's
	 */
	bad = a;
	bad.max_consumers = 2;
	EXPECT_ERR_ANY_ERRNO(-EOPNOTSUPP, zchan_create(NULL, &bad, &z));
	bad.flags = ZCHAN_BROADCAST;
	EXPECT_ERR_ANY_ERRNO(-EOPNOTSUPP, zchan_create(NULL, &bad, &z));
	bad.flags = 0;
	bad.max_producers = 1;
	bad.max_consumers = ZCHAN_ENDS_MAX;
	EXPECT_ERR_ANY_ERRNO(-EOPNOTSUPP, zchan_create(NULL, &bad, &z));
	EXPECT_EQ(NULL, z);

	/* 0 and 1 both mean one: a 1:1 channel says 1 and 1 */
	for (i = 0; i < 2; i++) {
		struct zchan_attr got;

		bad = a;
		bad.max_producers = i;
		bad.max_consumers = i;
		ASSERT_EQ(0, zc_local_pair(&bad, &self->p[0], &self->c));
		EXPECT_ERR_ANY_ERRNO(0, zchan_get_attr(self->p[0], &got));
		EXPECT_EQ(1, got.max_producers);
		EXPECT_EQ(1, got.max_consumers);
		EXPECT_EQ(0, zchan_get_attr(self->c, &got));
		EXPECT_EQ(1, got.max_producers);
		EXPECT_EQ(1, got.max_consumers);
		zchan_close(self->c);
		zchan_close(self->p[0]);
		self->c = self->p[0] = NULL;
	}
}

/*
 * zchan_send_end(), zchan_ends() and zchan_attach() with a role, an end
 * or a socket that is not one, errno preset: nothing made, nothing sent
 * (any channel: a 1:1 one here).
 */
TEST_F(fanin, call_errors_ignore_errno)
{
	struct zchan_attr a;
	struct zchan *z = NULL;
	int sv[2], pfd[2], no_name;
	char byte;

	ZC_NEED_BACKEND();

	zc_attr(&a, variant->backend, 16, 65536, MSG_MAX);
	ASSERT_EQ(0, zc_local_pair(&a, &self->p[0], &self->c));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	ASSERT_EQ(0, pipe(pfd));

	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_send_end(self->p[0], 0, sv[0]));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_send_end(self->c, 3, sv[0]));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_send_end(self->c, ~0U, sv[0]));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_send_end(NULL, ZCHAN_ROLE_PRODUCER,
						     sv[0]));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_send_end(self->c,
						     ZCHAN_ROLE_PRODUCER, -1));
	/* a channel whose consumer is still to be handed out */
	ASSERT_EQ(0, zchan_create(NULL, &a, &self->p[1]));
	EXPECT_ERR_ANY_ERRNO(-ENOTSOCK, zchan_send_end(self->p[1],
						       ZCHAN_ROLE_CONSUMER,
						       pfd[1]));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_ends(NULL, ZCHAN_ROLE_PRODUCER));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_ends(self->c, 0));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_ends(self->p[0], 3));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_attach(NULL, ZCHAN_ROLE_PRODUCER,
						   &z));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_attach("zchan-many", 0, &z));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_attach("zchan-many", 3, &z));
	EXPECT_ERR_ANY_ERRNO(-EINVAL, zchan_attach("zchan-many",
						   ZCHAN_ROLE_PRODUCER, NULL));
	/* names live in the module: none here, or no such channel */
	no_name = access(ZC_DEV, F_OK) ? -EOPNOTSUPP : -ENOENT;
	EXPECT_ERR_ANY_ERRNO(no_name, zchan_attach("zchan-many-none",
						   ZCHAN_ROLE_CONSUMER, &z));
	EXPECT_EQ(NULL, z);

	/* none of it made an end or sent anything */
	EXPECT_ERR_ANY_ERRNO(1, zchan_ends(self->c, ZCHAN_ROLE_PRODUCER));
	EXPECT_ERR_ANY_ERRNO(1, zchan_ends(self->c, ZCHAN_ROLE_CONSUMER));
	EXPECT_EQ(-1, recv(sv[1], &byte, 1, MSG_DONTWAIT));
	EXPECT_EQ(EAGAIN, errno);
	close(sv[0]);
	close(sv[1]);
	close(pfd[0]);
	close(pfd[1]);
}

TEST_HARNESS_MAIN
