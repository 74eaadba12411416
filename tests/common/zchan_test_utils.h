/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * The zchan test helper library, tests/common/: what the module tests
 * (tests/module), the library tests (tests/lib), the reliability suite
 * (tests/reliability) and the fuzzer (tests/fuzz) share.
 *
 *   zchan_test_utils.h    /dev/zchan through the raw UAPI (this file)
 *   zchan_test_lib.h      libzchan's public API
 *   zchan_test_forge.h    a hostile producer: its own ring, forged
 *   zchan_test_payload.h  message payloads: generate, check; a PRNG
 *   zchan_test_proc.h     child processes: spawn, reap, fd passing
 *
 * Licensed as libzchan is, so any program may take a helper, whatever its
 * own licence.  The ASSERT/EXPECT macros below name kselftest_harness.h
 * (GPL-2.0), which the including program brings in: nothing of the
 * harness is copied here, and a program that includes both is GPL-2.0 as
 * a whole, which MIT and LGPL-2.1 code may join.
 *
 * This file, in the manner of the kernel's
 * tools/testing/selftests/iommu/iommufd_utils.h:
 *
 *  - _zc_FOO(): one ioctl, returns 0 or -errno;
 *  - zc_cmd_FOO(...): the same inside a kselftest TEST, asserting success;
 *  - zc_err_FOO(errno, ...): asserting that exact error;
 *  - the shared ring reached through the layout's offsets (as libzchan
 *    does), debugfs counters, module parameters, io_uring commands and
 *    SEND_PAGES buffers.
 *
 * Everything is static inline: each test program is one translation unit.
 * The zc_cmd_/zc_err_ macros need kselftest_harness.h (included first);
 * the rest does not.
 */
#ifndef ZCHAN_TEST_UTILS_H
#define ZCHAN_TEST_UTILS_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <liburing.h>
#include <linux/zchan.h>

#include "zchan_test_payload.h"
#include "zchan_test_proc.h"

#define ZC_DEV		"/dev/zchan"
#define ZC_DEBUGFS	"/sys/kernel/debug/zchan"
#define ZC_PARAMS	"/sys/module/zchan/parameters"

/* ---------------------------------------------------------------------
 * One ioctl each: 0 or -errno.
 */
static inline int zc_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

static inline int zc_open(void)
{
	return open(ZC_DEV, O_RDWR | O_CLOEXEC);
}

static inline void zc_set_name(__u8 *dst, const char *name)
{
	memset(dst, 0, ZCHAN_NAME_MAX);
	if (name)
		memcpy(dst, name, strnlen(name, ZCHAN_NAME_MAX - 1));
}

static inline int _zc_create_flags(int fd, const char *name, __u64 pool,
				   __u32 entries, __u32 max_msg, __u32 mode,
				   __u32 flags, struct zchan_layout *l)
{
	struct zchan_create c = {
		.pool_size = pool,
		.ring_entries = entries,
		.max_msg = max_msg,
		.mode = mode,
		.flags = flags,
	};
	int ret;

	zc_set_name(c.name, name);
	ret = zc_ioctl(fd, ZCHAN_IOC_CREATE, &c);
	if (!ret && l)
		*l = c.layout;
	return ret;
}

static inline int _zc_create(int fd, const char *name, __u64 pool,
			     __u32 entries, __u32 max_msg, __u32 mode,
			     struct zchan_layout *l)
{
	return _zc_create_flags(fd, name, pool, entries, max_msg, mode, 0, l);
}

static inline int _zc_attach(int fd, const char *name, struct zchan_layout *l)
{
	struct zchan_attach a = { 0 };
	int ret;

	zc_set_name(a.name, name);
	ret = zc_ioctl(fd, ZCHAN_IOC_ATTACH, &a);
	if (!ret && l)
		*l = a.layout;
	return ret;
}

/* A new consumer file of producer @fd: the fd, or -errno. */
static inline int _zc_peer_fd(int fd, __u32 flags)
{
	struct zchan_peer_fd pf = { .flags = flags };
	int ret = zc_ioctl(fd, ZCHAN_IOC_PEER_FD, &pf);

	return ret ? ret : (int)pf.fd;
}

static inline int _zc_kick(int fd)
{
	struct zchan_kick k = { 0 };

	return zc_ioctl(fd, ZCHAN_IOC_KICK, &k);
}

/* Wait with an optional timeout (ns, or -1 for none); revents out. */
static inline int _zc_wait(int fd, long long timeout_ns, __u32 *revents)
{
	struct zchan_wait w = { 0 };
	int ret;

	if (timeout_ns >= 0) {
		w.flags = ZCHAN_WAIT_TIMEOUT;
		w.timeout_ns = timeout_ns;
	}
	ret = zc_ioctl(fd, ZCHAN_IOC_WAIT, &w);
	if (!ret && revents)
		*revents = w.revents;
	return ret;
}

static inline int _zc_info(int fd, struct zchan_info *info)
{
	memset(info, 0, sizeof(*info));
	return zc_ioctl(fd, ZCHAN_IOC_INFO, info);
}

/* ZCHAN_IOC_USE: start (0) or stop (ZCHAN_USE_END) using the end. */
static inline int _zc_use(int fd, __u32 flags)
{
	struct zchan_use u = { .flags = flags };

	return zc_ioctl(fd, ZCHAN_IOC_USE, &u);
}

/* SEND_PAGES of @len bytes at @buf: 0 and the transfer's *@offset, or -errno. */
static inline int _zc_send_pages(int fd, const void *buf, __u64 len,
				 __u64 cookie, __u64 *offset)
{
	struct zchan_send_pages sp = {
		.addr = (uintptr_t)buf, .len = len, .cookie = cookie,
	};
	int ret = zc_ioctl(fd, ZCHAN_IOC_SEND_PAGES, &sp);

	if (!ret && offset)
		*offset = sp.offset;
	return ret;
}

/* REAP up to @nr completions into @c: how many, or -errno. */
static inline int _zc_reap(int fd, struct zchan_completion *c, __u32 nr)
{
	struct zchan_reap r = { .addr = (uintptr_t)c, .nr = nr };
	int ret = ioctl(fd, ZCHAN_IOC_REAP, &r);

	return ret < 0 ? -errno : ret;
}

/* The state bits INFO reports, or -errno. */
static inline long long zc_state(int fd)
{
	struct zchan_info info;
	int ret = _zc_info(fd, &info);

	return ret ? ret : info.state;
}

/* Inside a TEST: assert success, or exactly -@err. */
#define zc_cmd_create(fd, name, pool, entries, max_msg, mode, l)	\
	ASSERT_EQ(0, _zc_create(fd, name, pool, entries, max_msg, mode, l))
#define zc_err_create(err, fd, name, pool, entries, max_msg, mode)	\
	EXPECT_EQ(-(err), _zc_create(fd, name, pool, entries, max_msg, mode, NULL))
#define zc_cmd_attach(fd, name, l)	ASSERT_EQ(0, _zc_attach(fd, name, l))
#define zc_err_attach(err, fd, name)	EXPECT_EQ(-(err), _zc_attach(fd, name, NULL))
#define zc_err_peer_fd(err, fd, flags)	EXPECT_EQ(-(err), _zc_peer_fd(fd, flags))
#define zc_cmd_kick(fd)			ASSERT_EQ(0, _zc_kick(fd))
#define zc_cmd_wait(fd, timeout_ns, revents)				\
	ASSERT_EQ(0, _zc_wait(fd, timeout_ns, revents))
#define zc_err_wait(err, fd, timeout_ns)				\
	EXPECT_EQ(-(err), _zc_wait(fd, timeout_ns, NULL))
#define zc_cmd_info(fd, info)		ASSERT_EQ(0, _zc_info(fd, info))
#define zc_cmd_use(fd, flags)		ASSERT_EQ(0, _zc_use(fd, flags))
#define zc_err_use(err, fd, flags)	EXPECT_EQ(-(err), _zc_use(fd, flags))
#define zc_cmd_send_pages(fd, buf, len, cookie, offset)		\
	ASSERT_EQ(0, _zc_send_pages(fd, buf, len, cookie, offset))
#define zc_err_send_pages(err, fd, buf, len, cookie)			\
	EXPECT_EQ(-(err), _zc_send_pages(fd, buf, len, cookie, NULL))
#define zc_cmd_ioctl(fd, req, arg)	ASSERT_EQ(0, zc_ioctl(fd, req, arg))
#define zc_err_ioctl(err, fd, req, arg)	EXPECT_EQ(-(err), zc_ioctl(fd, req, arg))

/* ---------------------------------------------------------------------
 * The shared ring, through the layout's offsets (as libzchan reads it).
 */
static inline uint32_t *zc_word(void *base, uint32_t off)
{
	return (uint32_t *)((uint8_t *)base + off);
}

static inline struct zchan_desc *zc_desc(void *prod_ring,
					 const struct zchan_layout *l,
					 uint32_t index)
{
	return (struct zchan_desc *)((uint8_t *)prod_ring + l->prod_descs) +
	       (index & (l->ring_entries - 1));
}

/* A producer-ring word (tail, head_seen, need_wakeup, closed, alloc). */
#define ZC_PROD_WORD(prod_ring, l, word) (*zc_word(prod_ring, (l)->prod_##word))
/* A consumer-ring word (head, read, need_wakeup, closed). */
#define ZC_CONS_WORD(cons_ring, l, word) (*zc_word(cons_ring, (l)->cons_##word))

/* ---------------------------------------------------------------------
 * debugfs counters and module parameters.
 */

/* Mount debugfs if the guest has not; 0 if zchan/stats is readable. */
static inline int zc_debugfs_ready(void)
{
	if (access(ZC_DEBUGFS "/stats", R_OK))
		mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	return access(ZC_DEBUGFS "/stats", R_OK) ? -errno : 0;
}

/* One counter ("pages", "channels", ...) of debugfs zchan/stats, or -1. */
static inline long long zc_stat(const char *key)
{
	char line[128], name[64];
	long long val = -1, v;
	FILE *f;

	f = fopen(ZC_DEBUGFS "/stats", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %lld", name, &v) == 2 && !strcmp(name, key))
			val = v;
	fclose(f);
	return val;
}

/* The leak counters of debugfs zchan/stats (see module/zchan_debugfs.c). */
struct zc_stats {
	long long channels;
	long long files;
	long long pages;
	long long created;
	long long uring_waits;	/* pending uring WAITs (-1: not exported) */
};

static inline int zc_stats_read(struct zc_stats *s)
{
	s->channels = zc_stat("channels");
	s->files = zc_stat("files");
	s->pages = zc_stat("pages");
	s->created = zc_stat("created");
	s->uring_waits = zc_stat("uring_waits");
	return s->channels < 0 || s->files < 0 || s->pages < 0 ? -EPROTO : 0;
}

static inline double zc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Wait until no channel, file or page is live.  Teardown is partly
 * asynchronous (io_uring rings are torn down by a kworker, exiting tasks
 * drop their files through task_work), so poll for up to @timeout_s.
 * 0 when clean, else -EBUSY with the last counters in @s.
 */
static inline int zc_wait_no_leaks(struct zc_stats *s, double timeout_s)
{
	double end = zc_now() + timeout_s;
	int ret;

	for (;;) {
		ret = zc_stats_read(s);
		if (ret)
			return ret;
		if (!s->channels && !s->files && !s->pages && s->uring_waits <= 0)
			return 0;
		if (zc_now() > end)
			return -EBUSY;
		usleep(20000);
	}
}

/* Poll counter @key until it equals @want, for up to @timeout_s. */
static inline bool zc_stat_becomes(const char *key, long long want,
				   double timeout_s)
{
	double end = zc_now() + timeout_s;

	while (zc_stat(key) != want) {
		if (zc_now() > end)
			return false;
		usleep(10000);
	}
	return true;
}

/* Open module parameter @param's file: an fd, or -errno. */
static inline int zc_param_open(const char *param, int flags)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), ZC_PARAMS "/%s", param);
	fd = open(path, flags);
	return fd < 0 ? -errno : fd;
}

/* Read module parameter @param, trailing whitespace stripped. */
static inline int zc_param_get(const char *param, char *buf, size_t len)
{
	int fd = zc_param_open(param, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	return 0;
}

static inline int zc_param_set(const char *param, const char *val)
{
	int fd = zc_param_open(param, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

/* ---------------------------------------------------------------------
 * io_uring commands.
 */

/* An IORING_OP_URING_CMD sqe carrying a struct zchan_uring_cmd. */
static inline void zc_prep_zcmd(struct io_uring_sqe *sqe, int fd, __u32 op,
				__u32 flags, __u32 resv0, __u64 data)
{
	struct zchan_uring_cmd *cmd = (void *)sqe->cmd;

	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = op;
	memset(cmd, 0, sizeof(*cmd));
	cmd->flags = flags;
	cmd->resv[0] = resv0;
	sqe->user_data = data;
}

static inline int zc_submit_zcmd(struct io_uring *ring, int fd, __u32 op,
				 __u32 flags, __u32 resv0, __u64 data)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe)
		return -EBUSY;
	zc_prep_zcmd(sqe, fd, op, flags, resv0, data);
	return io_uring_submit(ring) == 1 ? 0 : -EIO;
}

/* Wait for one completion; returns its res, user_data in *data. */
static inline int zc_reap(struct io_uring *ring, __u64 *data)
{
	struct io_uring_cqe *cqe;
	int ret = io_uring_wait_cqe(ring, &cqe);

	if (ret)
		return ret - 100000;
	ret = cqe->res;
	if (data)
		*data = cqe->user_data;
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

static inline bool zc_cqe_pending(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;

	return io_uring_peek_cqe(ring, &cqe) == 0;
}

/* ---------------------------------------------------------------------
 * SEND_PAGES buffers.
 */

/* @pages fresh private pages holding payload (0, @seq); NULL on failure. */
static inline uint8_t *zc_payload_pages(long pages, uint64_t seq)
{
	long len = pages * sysconf(_SC_PAGESIZE);
	uint8_t *b = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (b == MAP_FAILED)
		return NULL;
	zc_payload_fill(b, len, 0, seq);
	return b;
}

#endif /* ZCHAN_TEST_UTILS_H */
