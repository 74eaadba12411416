/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * libzchan's system calls, in liburing's manner: each wrapper returns the
 * negative error itself and leaves errno as the caller had it.  Nothing
 * else in libzchan reads errno: an error can't be taken from a later
 * call, or from the caller's stale value, when it is never read late.
 * A failed mmap returns ERR_PTR(-error): IS_ERR() and PTR_ERR() read it.
 */
#ifndef ZCHAN_SYSCALL_H
#define ZCHAN_SYSCALL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open		434
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC		0x0001U
#define MFD_ALLOW_SEALING	0x0002U
#endif

/* The call's result, or -errno if it failed; errno itself is kept. */
#define __sys_call(type, call) ({			\
	int __saved_errno = errno;			\
	type __ret = (call);				\
	if (__ret < 0)					\
		__ret = -errno;				\
	errno = __saved_errno;				\
	__ret;						\
})

#define ZCHAN_MAX_ERRNO	4095

static inline void *ERR_PTR(long err)
{
	return (void *)err;
}

static inline long PTR_ERR(const void *ptr)
{
	return (long)ptr;
}

static inline bool IS_ERR(const void *ptr)
{
	return (uintptr_t)ptr >= (uintptr_t)-ZCHAN_MAX_ERRNO;
}

static inline void *__sys_mmap(void *addr, size_t len, int prot, int flags,
			       int fd, off_t off)
{
	int saved_errno = errno;
	void *m = mmap(addr, len, prot, flags, fd, off);

	if (m == MAP_FAILED)
		m = ERR_PTR(-errno);
	errno = saved_errno;
	return m;
}

static inline int __sys_munmap(void *addr, size_t len)
{
	return __sys_call(int, munmap(addr, len));
}

static inline int __sys_ioctl(int fd, unsigned long req, void *arg)
{
	return __sys_call(int, ioctl(fd, req, arg));
}

static inline int __sys_open(const char *path, int flags)
{
	return __sys_call(int, open(path, flags));
}

static inline int __sys_close(int fd)
{
	return __sys_call(int, close(fd));
}

static inline ssize_t __sys_read(int fd, void *buf, size_t n)
{
	return __sys_call(ssize_t, read(fd, buf, n));
}

static inline ssize_t __sys_write(int fd, const void *buf, size_t n)
{
	return __sys_call(ssize_t, write(fd, buf, n));
}

static inline ssize_t __sys_pread(int fd, void *buf, size_t n, off_t off)
{
	return __sys_call(ssize_t, pread(fd, buf, n, off));
}

static inline ssize_t __sys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return __sys_call(ssize_t, pwrite(fd, buf, n, off));
}

static inline ssize_t __sys_readlink(const char *path, char *buf, size_t n)
{
	return __sys_call(ssize_t, readlink(path, buf, n));
}

static inline int __sys_fcntl(int fd, int cmd, long arg)
{
	return __sys_call(int, fcntl(fd, cmd, arg));
}

static inline int __sys_fstat(int fd, struct stat *st)
{
	return __sys_call(int, fstat(fd, st));
}

static inline int __sys_stat(const char *path, struct stat *st)
{
	return __sys_call(int, stat(path, st));
}

static inline int __sys_ftruncate(int fd, off_t len)
{
	return __sys_call(int, ftruncate(fd, len));
}

static inline int __sys_memfd_create(const char *name, unsigned int flags)
{
	return __sys_call(int, memfd_create(name, flags));
}

static inline int __sys_eventfd(unsigned int count, int flags)
{
	return __sys_call(int, eventfd(count, flags));
}

static inline int __sys_epoll_create1(int flags)
{
	return __sys_call(int, epoll_create1(flags));
}

static inline int __sys_epoll_ctl(int epfd, int op, int fd,
				  struct epoll_event *ev)
{
	return __sys_call(int, epoll_ctl(epfd, op, fd, ev));
}

static inline int __sys_socketpair(int domain, int type, int proto, int sv[2])
{
	return __sys_call(int, socketpair(domain, type, proto, sv));
}

static inline ssize_t __sys_sendmsg(int sock, const struct msghdr *msg,
				    int flags)
{
	return __sys_call(ssize_t, sendmsg(sock, msg, flags));
}

static inline ssize_t __sys_recvmsg(int sock, struct msghdr *msg, int flags)
{
	return __sys_call(ssize_t, recvmsg(sock, msg, flags));
}

/* The most fds __sys_send_fds() passes in one message. */
#define __SYS_SEND_FDS_MAX	8U

/*
 * @len bytes of @buf and @nfds fds (SCM_RIGHTS) as one message on @sock,
 * again after a signal: 0, -EIO if it went short, or -errno.
 */
static inline int __sys_send_fds(int sock, const void *buf, size_t len,
				 const int *fds, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * __SYS_SEND_FDS_MAX)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)buf, len };
	struct msghdr msg;
	struct cmsghdr *cm;
	ssize_t n;

	if (nfds > __SYS_SEND_FDS_MAX)
		return -EINVAL;
	memset(&u, 0, sizeof(u));
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	do {
		n = __sys_sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n == -EINTR);
	if (n < 0)
		return (int)n;
	return n == (ssize_t)len ? 0 : -EIO;
}

static inline int __sys_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	return __sys_call(int, poll(fds, n, timeout_ms));
}

static inline int __sys_kill(pid_t pid, int sig)
{
	return __sys_call(int, kill(pid, sig));
}

static inline int __sys_pidfd_open(pid_t pid, unsigned int flags)
{
	return __sys_call(int, (int)syscall(SYS_pidfd_open, pid, flags));
}

#endif /* ZCHAN_SYSCALL_H */
