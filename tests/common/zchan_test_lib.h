/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * Test helpers on libzchan's public API (<zchan.h>), for the library's
 * tests and for any test that streams through the library.  Part of the
 * test helper library in tests/common (see zchan_test_utils.h for the
 * raw /dev/zchan side).
 */
#ifndef ZCHAN_TEST_LIB_H
#define ZCHAN_TEST_LIB_H

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zchan.h>

#include "zchan_test_proc.h"

/* Attributes of a channel of that backend and geometry, the rest default. */
static inline void zc_attr(struct zchan_attr *a, unsigned int backend,
			   unsigned int entries, size_t pool, size_t max_msg)
{
	zchan_attr_init(a);
	a->backend = backend;
	a->ring_entries = entries;
	a->pool_size = pool;
	a->max_msg = max_msg;
}

/*
 * Both ends in this process, the consumer passed over a socketpair.
 * On failure *p is NULL again, so a fixture's teardown closes nothing twice.
 */
static inline int zc_local_pair(const struct zchan_attr *a, struct zchan **p,
				struct zchan **c)
{
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return -errno;
	ret = zchan_create(NULL, a, p);
	if (!ret) {
		ret = zchan_send_peer(*p, sv[0]);
		if (!ret)
			ret = zchan_recv_peer(sv[1], c);
		if (ret) {
			zchan_close(*p);
			*p = NULL;
		}
	}
	close(sv[0]);
	close(sv[1]);
	return ret;
}

/*
 * Inside a kselftest program (kselftest_harness.h included first): a
 * fixture's two variants, one per backend (variant->backend) ...
 */
#define ZC_BACKEND_VARIANTS(fixture)					\
	FIXTURE_VARIANT(fixture) {					\
		unsigned int backend;					\
	};								\
	FIXTURE_VARIANT_ADD(fixture, memfd) {				\
		.backend = ZCHAN_BACKEND_MEMFD,				\
	};								\
	FIXTURE_VARIANT_ADD(fixture, kernel) {				\
		.backend = ZCHAN_BACKEND_KERNEL,			\
	}

/*
 * ... and, first thing in a TEST_F of such a fixture, the kernel variant
 * skipped where /dev/zchan is missing (a SKIP() in FIXTURE_SETUP does not
 * stop the test on every harness).
 */
#define ZC_NEED_BACKEND()						\
	do {								\
		if (variant->backend == ZCHAN_BACKEND_KERNEL &&		\
		    access("/dev/zchan", F_OK))				\
			SKIP(return, "no /dev/zchan (zchan.ko not loaded)"); \
	} while (0)

/*
 * Inside a kselftest TEST: what errno may hold before a call, none of
 * which may change its result (libzchan returns -errno and never sets
 * errno) ...
 */
static const int zc_preset_errno[] = { 0, EINVAL, EACCES };
#define ZC_NR_PRESETS (sizeof(zc_preset_errno) / sizeof(zc_preset_errno[0]))

/*
 * ... and @expr evaluated once per preset errno: it must return @want
 * (an error, or what the call returns on success) each time and leave
 * errno as it found it.
 */
#define EXPECT_ERR_ANY_ERRNO(want, expr)				\
	do {								\
		unsigned int __i;					\
									\
		for (__i = 0; __i < ZC_NR_PRESETS; __i++) {		\
			long __ret;					\
									\
			errno = zc_preset_errno[__i];			\
			__ret = (long)(expr);				\
			EXPECT_EQ((long)(want), __ret)			\
				TH_LOG("%s with errno %d before", #expr,\
				       zc_preset_errno[__i]);		\
			EXPECT_EQ(zc_preset_errno[__i], errno)		\
				TH_LOG("%s changed errno", #expr);	\
		}							\
	} while (0)

/*
 * A new end of @role of @end's channel, in this process: zchan_send_end()
 * over a socketpair.  0, or -errno (and *@e untouched).
 */
static inline int zc_local_end(struct zchan *end, unsigned int role,
			       struct zchan **e)
{
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return -errno;
	ret = zchan_send_end(end, role, sv[0]);
	if (!ret)
		ret = zchan_recv_peer(sv[1], e);
	close(sv[0]);
	close(sv[1]);
	return ret;
}

struct __zc_producer {
	const struct zchan_attr *attr;
	int (*fn)(struct zchan *p, void *arg);
	void *arg;
	int sv[2];
};

static inline int __zc_producer_main(void *arg)
{
	struct __zc_producer *pr = arg;
	struct zchan *p;
	int ret;

	close(pr->sv[1]);
	if (zchan_create(NULL, pr->attr, &p) || zchan_send_peer(p, pr->sv[0]))
		return 100;
	close(pr->sv[0]);
	ret = pr->fn(p, pr->arg);
	zchan_close(p);
	return ret;
}

/*
 * A producer in a child process: it creates the channel (so the parent
 * never holds producer fds), hands the consumer end over (*@cons) and
 * exits with what @fn returns (100: it could not start).  The child's
 * pid, or -errno.
 */
static inline pid_t zc_spawn_producer(const struct zchan_attr *a,
				      int (*fn)(struct zchan *p, void *arg),
				      void *arg, struct zchan **cons)
{
	struct __zc_producer pr = { .attr = a, .fn = fn, .arg = arg };
	pid_t pid;
	int ret;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pr.sv))
		return -errno;
	pid = zc_spawn(__zc_producer_main, &pr);
	close(pr.sv[0]);
	if (pid < 0) {
		close(pr.sv[1]);
		return pid;
	}
	ret = zchan_recv_peer(pr.sv[1], cons);
	close(pr.sv[1]);
	if (ret) {
		kill(pid, SIGKILL);
		zc_child_wait(pid, -1);
		return ret;
	}
	return pid;
}

struct __zc_end {
	int (*fn)(struct zchan *e, void *arg);
	void *arg;
	int sv[2];
};

static inline int __zc_end_main(void *arg)
{
	struct __zc_end *en = arg;
	struct zchan *e;
	int ret;

	close(en->sv[0]);
	if (zchan_recv_peer(en->sv[1], &e))
		return 100;
	close(en->sv[1]);
	ret = en->fn(e, en->arg);
	zchan_close(e);
	return ret;
}

/*
 * A new end of @role of @end's channel in a child process: forked first,
 * it receives the end zchan_send_end() makes (so the caller never holds
 * it) and exits with what @fn returns (100: it could not start).  The
 * child's pid, or -errno (the child then reaped).
 */
static inline pid_t zc_spawn_end(struct zchan *end, unsigned int role,
				 int (*fn)(struct zchan *e, void *arg),
				 void *arg)
{
	struct __zc_end en = { .fn = fn, .arg = arg };
	pid_t pid;
	int ret;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, en.sv))
		return -errno;
	pid = zc_spawn(__zc_end_main, &en);
	close(en.sv[1]);
	if (pid < 0) {
		close(en.sv[0]);
		return pid;
	}
	ret = zchan_send_end(end, role, en.sv[0]);
	close(en.sv[0]);
	if (ret) {
		kill(pid, SIGKILL);
		zc_child_wait(pid, -1);
		return ret;
	}
	return pid;
}

#endif /* ZCHAN_TEST_LIB_H */
