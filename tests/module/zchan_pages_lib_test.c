// SPDX-License-Identifier: GPL-2.0
/*
 * libzchan's zchan_send_pages() and zchan_reap() with the kernel backend:
 * the consumer's zchan_recv_zc(), zchan_recv(), zchan_recv_batch() and
 * zchan_close() see and let go of the producer's own pages.  Runs in the
 * guest with zchan.ko loaded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <zchan.h>

#include "kselftest_harness.h"
#include "../common/zchan_test_utils.h"

static long page_size;

static void __attribute__((constructor)) zc_pages_lib_init(void)
{
	page_size = sysconf(_SC_PAGESIZE);
	zc_debugfs_ready();
}

FIXTURE(pages) {
	struct zchan *p, *c;
	uint8_t *buf;
	long before;
};

FIXTURE_SETUP(pages)
{
	struct zchan_attr attr;
	char name[64];

	self->before = zc_stat("pinned");
	ASSERT_LE(0, self->before);
	snprintf(name, sizeof(name), "zpl-%d", getpid());
	zchan_attr_init(&attr);
	attr.backend = ZCHAN_BACKEND_KERNEL;
	attr.ring_entries = 16;
	ASSERT_EQ(0, zchan_create(name, &attr, &self->p));
	ASSERT_EQ(0, zchan_open(name, &self->c));
	self->buf = zc_payload_pages(4, 5);
	ASSERT_NE(NULL, self->buf);
}

FIXTURE_TEARDOWN(pages)
{
	if (self->c)
		zchan_close(self->c);
	if (self->p)
		zchan_close(self->p);
	munmap(self->buf, 4 * page_size);
}

TEST_F(pages, recv_zc_maps_release_completes)
{
	const void *m, *msg;
	uint64_t cookies[4];
	char small[8];

	EXPECT_EQ(-EINVAL, zchan_send_pages(self->p, self->buf + 1, page_size, 1, 0));
	EXPECT_EQ(-EINVAL, zchan_send_pages(self->p, self->buf, page_size + 1, 1, 0));
	EXPECT_EQ(-EINVAL, zchan_send_pages(self->c, self->buf, page_size, 1, 0));
	EXPECT_EQ(-EINVAL, zchan_reap(self->p, cookies, 4, 1));
	ASSERT_EQ(0, zchan_send_pages(self->p, self->buf, 4 * page_size, 77, 0));
	ASSERT_EQ(5, zchan_send(self->p, "hello", 5, 0));
	EXPECT_EQ(self->before + 4, zc_stat("pinned"));

	ASSERT_EQ(4 * page_size, zchan_recv_zc(self->c, &m, 0));
	EXPECT_NE(self->buf, m);
	EXPECT_TRUE(zc_payload_ok(m, 4 * page_size, 0, 5));
	EXPECT_TRUE(zc_write_segfaults((const uint8_t *)m + page_size));
	ASSERT_EQ(5, zchan_recv_zc(self->c, &msg, 0));
	EXPECT_EQ(0, memcmp(msg, "hello", 5));
	EXPECT_EQ(0, zchan_reap(self->p, cookies, 4, 0));
	/* Out of order: the mapping goes at once, the head waits. */
	ASSERT_EQ(0, zchan_release(self->c, m));
	EXPECT_EQ(-EINVAL, zchan_release(self->c, m));
	EXPECT_EQ(self->before, zc_stat("pinned"));
	ASSERT_EQ(1, zchan_reap(self->p, cookies, 4, 0));
	EXPECT_EQ(77, cookies[0]);
	ASSERT_EQ(0, zchan_release(self->c, msg));

	/* zchan_recv() copies and completes; too small a buffer takes nothing. */
	ASSERT_EQ(0, zchan_send_pages(self->p, self->buf, page_size, 78, 0));
	EXPECT_EQ(-EMSGSIZE, zchan_recv(self->c, small, sizeof(small), 0));
	{
		uint8_t out[page_size];

		ASSERT_EQ(page_size, zchan_recv(self->c, out, page_size, 0));
		EXPECT_TRUE(zc_payload_ok(out, page_size, 0, 5));
	}
	ASSERT_EQ(1, zchan_reap(self->p, cookies, 4, 0));
	EXPECT_EQ(78, cookies[0]);
	EXPECT_EQ(self->before, zc_stat("pinned"));
}

TEST_F(pages, batch_and_close)
{
	struct zchan_msg msgs[4];
	uint64_t cookies[4];
	const void *m;

	ASSERT_EQ(0, zchan_send_pages(self->p, self->buf, page_size, 1, 0));
	ASSERT_EQ(0, zchan_send_pages(self->p, self->buf + page_size,
				      2 * page_size, 2, 0));
	ASSERT_EQ(2, zchan_recv_batch(self->c, msgs, 4, ZCHAN_NONBLOCK));
	EXPECT_EQ(page_size, msgs[0].len);
	EXPECT_EQ(2 * page_size, msgs[1].len);
	EXPECT_TRUE(zc_payload_ok(msgs[0].buf, page_size, 0, 5));
	EXPECT_TRUE(zc_payload_ok_at(msgs[1].buf, 2 * page_size, page_size, 0, 5));
	ASSERT_EQ(2, zchan_release_batch(self->c, msgs, 2));
	ASSERT_EQ(2, zchan_reap(self->p, cookies, 4, 0));
	EXPECT_EQ(1, cookies[0]);
	EXPECT_EQ(2, cookies[1]);

	/* A consumer closing with a transfer borrowed lets go of it. */
	ASSERT_EQ(0, zchan_send_pages(self->p, self->buf, page_size, 3, 0));
	ASSERT_EQ(page_size, zchan_recv_zc(self->c, &m, 0));
	zchan_close(self->c);
	self->c = NULL;
	EXPECT_TRUE(zc_stat_becomes("pinned", self->before, 10));
	ASSERT_EQ(1, zchan_reap(self->p, cookies, 4, 0));
	EXPECT_EQ(3, cookies[0]);
	EXPECT_EQ(-EPIPE, zchan_send_pages(self->p, self->buf, page_size, 4,
					   ZCHAN_NONBLOCK));
}

TEST(memfd_backend_has_no_send_pages)
{
	struct zchan_attr attr;
	uint64_t cookie;
	struct zchan *p;
	void *buf = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, buf);
	zchan_attr_init(&attr);
	attr.backend = ZCHAN_BACKEND_MEMFD;
	ASSERT_EQ(0, zchan_create(NULL, &attr, &p));
	EXPECT_EQ(-EOPNOTSUPP, zchan_send_pages(p, buf, page_size, 1, 0));
	EXPECT_EQ(-EOPNOTSUPP, zchan_reap(p, &cookie, 1, 0));
	zchan_close(p);
	munmap(buf, page_size);
}

TEST_HARNESS_MAIN
