/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the reliability suites and the fuzzer: debugfs leak
 * counters, module parameters, a seeded PRNG and io_uring command prep.
 * Everything is static inline: each test is one translation unit.
 */
#ifndef ZCHAN_REL_H
#define ZCHAN_REL_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <liburing.h>
#include <linux/zchan.h>

#define REL_DEV		"/dev/zchan"
#define REL_DEBUGFS	"/sys/kernel/debug/zchan"
#define REL_PARAMS	"/sys/module/zchan/parameters"

/* Mount debugfs if the guest has not; 0 if zchan/stats is readable. */
static inline int rel_debugfs_ready(void)
{
	if (access(REL_DEBUGFS "/stats", R_OK))
		mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	return access(REL_DEBUGFS "/stats", R_OK) ? -errno : 0;
}

/* The leak counters of debugfs zchan/stats (see module/zchan_debugfs.c). */
struct rel_stats {
	long long channels;
	long long files;
	long long pages;
	long long created;
	long long uring_waits;	/* pending uring WAITs (-1: not exported) */
};

static inline int rel_stats_read(struct rel_stats *s)
{
	char line[128], name[64];
	long long v;
	FILE *f;

	s->channels = s->files = s->pages = s->created = s->uring_waits = -1;
	f = fopen(REL_DEBUGFS "/stats", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %lld", name, &v) != 2)
			continue;
		if (!strcmp(name, "channels"))
			s->channels = v;
		else if (!strcmp(name, "files"))
			s->files = v;
		else if (!strcmp(name, "pages"))
			s->pages = v;
		else if (!strcmp(name, "created"))
			s->created = v;
		else if (!strcmp(name, "uring_waits"))
			s->uring_waits = v;
	}
	fclose(f);
	return s->channels < 0 || s->files < 0 || s->pages < 0 ? -EPROTO : 0;
}

static inline double rel_now(void)
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
static inline int rel_wait_no_leaks(struct rel_stats *s, double timeout_s)
{
	double end = rel_now() + timeout_s;
	int ret;

	for (;;) {
		ret = rel_stats_read(s);
		if (ret)
			return ret;
		if (!s->channels && !s->files && !s->pages && s->uring_waits <= 0)
			return 0;
		if (rel_now() > end)
			return -EBUSY;
		usleep(20000);
	}
}

static inline int rel_param_get(const char *param, char *buf, size_t len)
{
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), REL_PARAMS "/%s", param);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = 0;
	return 0;
}

static inline int rel_param_set(const char *param, const char *val)
{
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), REL_PARAMS "/%s", param);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

/* xoshiro-like 64-bit PRNG (splitmix64): seeded, reproducible. */
static inline uint64_t rel_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A value in [0, n). */
static inline uint64_t rel_below(uint64_t *s, uint64_t n)
{
	return n ? rel_rand(s) % n : 0;
}

/* FNV-1a, the checksum of the streaming suites. */
static inline uint32_t rel_csum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;

	while (len--)
		h = (h ^ *b++) * 16777619u;
	return h;
}

/* An IORING_OP_URING_CMD sqe carrying a struct zchan_uring_cmd. */
static inline void rel_prep_zcmd(struct io_uring_sqe *sqe, int fd, __u32 op,
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

#endif /* ZCHAN_REL_H */
