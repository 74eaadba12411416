// SPDX-License-Identifier: GPL-2.0
/*
 * zchan.ko selftests of many-ended channels at the ioctl level: CREATE's
 * max_producers/max_consumers, ATTACH's and PEER_FD's role, INFO's counts
 * of ends, and every error path of them.  Runs as root in the test guest
 * with zchan.ko loaded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <linux/zchan.h>

#include "kselftest_harness.h"
#include "../common/zchan_test_utils.h"

/* A name unique to this test process. */
static void zf_name(char *buf, const char *tag)
{
	snprintf(buf, ZCHAN_NAME_MAX, "zf-%s-%d", tag, getpid());
}

/* CREATE with the many-ended fields: 0 or -errno. */
static int zf_create(int fd, const char *name, __u32 max_producers,
		     __u32 max_consumers, __u32 flags,
		     struct zchan_layout *l)
{
	struct zchan_create c;
	int ret;

	memset(&c, 0, sizeof(c));
	c.pool_size = 16 * sysconf(_SC_PAGESIZE);
	c.ring_entries = 16;
	c.mode = 0600;
	c.flags = flags;
	c.max_producers = max_producers;
	c.max_consumers = max_consumers;
	if (name)
		zc_set_name(c.name, name);
	ret = zc_ioctl(fd, ZCHAN_IOC_CREATE, &c);
	if (!ret && l)
		*l = c.layout;
	return ret;
}

/* ATTACH with a role: 0 or -errno. */
static int zf_attach(int fd, const char *name, __u32 role,
		     struct zchan_layout *l)
{
	struct zchan_attach a;
	int ret;

	memset(&a, 0, sizeof(a));
	a.role = role;
	zc_set_name(a.name, name);
	ret = zc_ioctl(fd, ZCHAN_IOC_ATTACH, &a);
	if (!ret && l)
		*l = a.layout;
	return ret;
}

/* PEER_FD with a role: the new fd, or -errno. */
static int zf_peer_fd(int fd, __u32 role)
{
	struct zchan_peer_fd pf;
	int ret;

	memset(&pf, 0, sizeof(pf));
	pf.flags = ZCHAN_PEER_FD_CLOEXEC;
	pf.role = role;
	ret = zc_ioctl(fd, ZCHAN_IOC_PEER_FD, &pf);
	return ret ? ret : (int)pf.fd;
}

static struct zchan_info zf_info(int fd)
{
	struct zchan_info info;

	memset(&info, 0, sizeof(info));
	if (zc_ioctl(fd, ZCHAN_IOC_INFO, &info))
		info.role = ~0U;
	return info;
}

TEST(create_ends_bad_args)
{
	struct zchan_info info;
	int fd = zc_open();

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, zf_create(fd, NULL, ZCHAN_ENDS_MAX + 1, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, zf_create(fd, NULL, 0, ZCHAN_ENDS_MAX + 1, 0, NULL));
	EXPECT_EQ(-EINVAL, zf_create(fd, NULL, ~0U, ~0U, 0, NULL));
	/* Known but not built: after every -EINVAL. */
	EXPECT_EQ(-EOPNOTSUPP, zf_create(fd, NULL, 0, 2, 0, NULL));
	EXPECT_EQ(-EOPNOTSUPP, zf_create(fd, NULL, 0, ZCHAN_ENDS_MAX, 0, NULL));
	EXPECT_EQ(-EOPNOTSUPP,
		  zf_create(fd, NULL, 0, 0, ZCHAN_CREATE_BROADCAST, NULL));
	EXPECT_EQ(-EINVAL, zf_create(fd, NULL, 0, ZCHAN_ENDS_MAX + 1,
				     ZCHAN_CREATE_BROADCAST, NULL));
	EXPECT_EQ(-EINVAL, zf_create(fd, NULL, 0, 2,
				     ZCHAN_CREATE_BROADCAST << 1, NULL));
	/* None of that gave the fd a role. */
	info = zf_info(fd);
	EXPECT_EQ(ZCHAN_ROLE_NONE, info.role);
	/* 1 is 0: a 1:1 channel. */
	ASSERT_EQ(0, zf_create(fd, NULL, 1, 1, 0, NULL));
	info = zf_info(fd);
	EXPECT_EQ(1, info.max_producers);
	EXPECT_EQ(1, info.max_consumers);
	close(fd);
}

/* An old caller's zeroed fields: one end of each role, reported. */
TEST(info_counts_ends_of_a_1to1_channel)
{
	struct zchan_info info;
	int p = zc_open(), c;

	ASSERT_LE(0, p);
	ASSERT_EQ(0, zf_create(p, NULL, 0, 0, 0, NULL));
	info = zf_info(p);
	EXPECT_EQ(1, info.producers);
	EXPECT_EQ(0, info.consumers);
	EXPECT_EQ(1, info.max_producers);
	EXPECT_EQ(1, info.max_consumers);
	c = zf_peer_fd(p, 0);
	ASSERT_LE(0, c);
	info = zf_info(c);
	EXPECT_EQ(ZCHAN_ROLE_CONSUMER, info.role);
	EXPECT_EQ(1, info.producers);
	EXPECT_EQ(1, info.consumers);
	close(p);
	info = zf_info(c);
	EXPECT_EQ(0, info.producers);
	EXPECT_EQ(1, info.consumers);
	close(c);
	/* A file without a role counts nothing. */
	p = zc_open();
	info = zf_info(p);
	EXPECT_EQ(0, info.producers | info.consumers | info.max_producers |
		     info.max_consumers);
	close(p);
}

/*
 * The roles of a 1:1 channel are taken once: a second end of either is
 * -EBUSY, by name or by PEER_FD, even after the first has gone.
 */
TEST(roles_of_a_1to1_channel_are_taken_once)
{
	char name[ZCHAN_NAME_MAX];
	int p = zc_open(), c = zc_open(), x = zc_open(), fd;

	ASSERT_LE(0, p);
	ASSERT_LE(0, c);
	ASSERT_LE(0, x);
	zf_name(name, "once");
	ASSERT_EQ(0, zf_create(p, name, 0, 0, 0, NULL));
	EXPECT_EQ(-EINVAL, zf_attach(x, name, ZCHAN_ROLE_CONSUMER + 1, NULL));
	EXPECT_EQ(-EINVAL, zf_attach(x, name, ZCHAN_ROLE_NONE + 3, NULL));
	EXPECT_EQ(-EBUSY, zf_attach(x, name, ZCHAN_ROLE_PRODUCER, NULL));
	EXPECT_EQ(-EBUSY, zf_peer_fd(p, ZCHAN_ROLE_PRODUCER));
	EXPECT_EQ(-EINVAL, zf_peer_fd(p, ZCHAN_ROLE_CONSUMER + 1));
	/* ZCHAN_ROLE_CONSUMER is 0's meaning, said. */
	ASSERT_EQ(0, zf_attach(c, name, ZCHAN_ROLE_CONSUMER, NULL));
	EXPECT_EQ(ZCHAN_ROLE_CONSUMER, zf_info(c).role);
	EXPECT_EQ(-EBUSY, zf_attach(x, name, 0, NULL));
	EXPECT_EQ(-EBUSY, zf_peer_fd(p, ZCHAN_ROLE_CONSUMER));
	/* A consumer makes no consumer; a producer of a 1:1 is taken. */
	EXPECT_EQ(-EINVAL, zf_peer_fd(c, ZCHAN_ROLE_CONSUMER));
	EXPECT_EQ(-EBUSY, zf_peer_fd(c, ZCHAN_ROLE_PRODUCER));
	close(c);
	EXPECT_EQ(-EBUSY, zf_attach(x, name, ZCHAN_ROLE_CONSUMER, NULL));
	/* Nothing above gave x a role. */
	EXPECT_EQ(ZCHAN_ROLE_NONE, zf_info(x).role);
	fd = zf_peer_fd(p, 0);
	EXPECT_EQ(-EBUSY, fd);
	close(x);
	close(p);
}

TEST_HARNESS_MAIN
