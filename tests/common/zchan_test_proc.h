/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * Child processes for the tests: start one on a function, reap it with a
 * timeout, kill it, say how it ended (an exit status, or the signal that
 * killed it), and the small channels tests use between parent and child
 * (descriptors over a unix socket, "ready" over a pipe).
 *
 * zc_child_exits()/zc_child_killed() assert inside a kselftest TEST and
 * need kselftest_harness.h (included first); the rest does not.  They
 * wait no longer than the test itself may run (the harness's timeout for
 * it), and a child still running then is killed, not left behind.  A
 * test that bounds a wait more tightly calls zc_child_wait() itself.
 */
#ifndef ZCHAN_TEST_PROC_H
#define ZCHAN_TEST_PROC_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

/* zc_child_wait() of a child that signal @sig killed (exit codes < 256). */
#define ZC_SIGNALLED(sig)	(256 + (sig))

/* Run @fn(@arg) in a child process, which exits with what @fn returns. */
static inline pid_t zc_spawn(int (*fn)(void *arg), void *arg)
{
	pid_t pid = fork();

	if (!pid)
		_exit(fn(arg));
	return pid < 0 ? -errno : pid;
}

/* A wait status as zc_child_wait() returns it. */
static inline int zc_wait_status(int status)
{
	if (WIFSIGNALED(status))
		return ZC_SIGNALLED(WTERMSIG(status));
	return WEXITSTATUS(status);
}

static inline double __zc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Reap @pid within @timeout_s seconds (< 0: however long it takes).
 * Its exit status (0 to 255); ZC_SIGNALLED(sig) if a signal killed it;
 * -ETIMEDOUT if it is still running (not reaped: look at it, or
 * zc_child_kill() it); or -errno from waitpid().
 */
static inline int zc_child_wait(pid_t pid, double timeout_s)
{
	struct timespec nap = { 0, 1000000 };
	double end = __zc_now() + timeout_s;
	int status;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, timeout_s < 0 ? 0 : WNOHANG);
		if (r == pid)
			return zc_wait_status(status);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r == 0) {
			if (__zc_now() >= end)
				return -ETIMEDOUT;
			nanosleep(&nap, NULL);
			if (nap.tv_nsec < 32000000)
				nap.tv_nsec *= 2;
		}
	}
}

/*
 * SIGKILL @pid and reap it, as zc_child_wait(); a task stuck in the
 * kernel may outlive ZC_CHILD_GRACE_S: then -ETIMEDOUT, still unreaped.
 */
#define ZC_CHILD_GRACE_S	10

static inline int zc_child_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	return zc_child_wait(pid, ZC_CHILD_GRACE_S);
}

/* What zc_child_wait()'s @st says, for a log. */
static inline const char *zc_child_str(int st, char *buf, size_t len)
{
	if (st == -ETIMEDOUT)
		snprintf(buf, len, "did not end in time");
	else if (st < 0)
		snprintf(buf, len, "waitpid: %s", strerror(-st));
	else if (st >= ZC_SIGNALLED(0))
		snprintf(buf, len, "killed by signal %d (%s)",
			 st - ZC_SIGNALLED(0), strsignal(st - ZC_SIGNALLED(0)));
	else
		snprintf(buf, len, "exit status %d", st);
	return buf;
}

/*
 * Inside a TEST: child @pid ends with exit status @code, or is killed by
 * signal @sig, within the test's own timeout (else it is killed).
 */
#define __zc_child_ends(pid, want) do {					\
	pid_t __zc_pid = (pid);						\
	int __zc_st = zc_child_wait(__zc_pid, _metadata->timeout);	\
	char __zc_why[96];						\
									\
	if (__zc_st == -ETIMEDOUT)					\
		zc_child_kill(__zc_pid);				\
	ASSERT_EQ((want), __zc_st)					\
		TH_LOG("child %d: %s", (int)__zc_pid,			\
		       zc_child_str(__zc_st, __zc_why, sizeof(__zc_why))); \
} while (0)
#define zc_child_exits(pid, code)	__zc_child_ends(pid, code)
#define zc_child_killed(pid, sig)	__zc_child_ends(pid, ZC_SIGNALLED(sig))

/* ---------------------------------------------------------------------
 * Between parent and child: descriptors over a unix socket, "ready" over
 * a pipe.
 */
static inline int zc_send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'z';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -errno;
}

static inline int zc_recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

static inline void zc_signal(int fd)
{
	char c = 1;

	if (write(fd, &c, 1) != 1)
		_exit(90);
}

static inline int zc_await(int fd)
{
	char c;

	return read(fd, &c, 1) == 1 ? 0 : -1;
}

/* Does a write to @p kill a child with SIGSEGV (sanitizers or not)? */
static inline int __zc_write(void *p)
{
	signal(SIGSEGV, SIG_DFL);
	*(volatile unsigned char *)p = 1;
	return 0;
}

static inline bool zc_write_segfaults(const void *p)
{
	pid_t pid = zc_spawn(__zc_write, (void *)p);

	return pid > 0 && zc_child_wait(pid, -1) == ZC_SIGNALLED(SIGSEGV);
}

#endif /* ZCHAN_TEST_PROC_H */
