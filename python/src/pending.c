// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan._zchan: pending ends, and receiving an end over a socket.
 *
 * zchan.pipe() returns two ends that are real only at their first use, so
 * that multiprocessing can pickle them (by their socket) under every
 * start method.  The two sides of a socketpair carry it: the producer
 * side creates the channel where it is first used and sends the consumer
 * end over; the consumer side receives it.
 *
 * One process may use each side.  Each side has a token byte waiting in
 * a stream that carries nothing else: the producer side's own socket
 * (the consumer side never writes), and for the consumer side a second
 * socket it holds and pickles alongside (its rendezvous stream carries
 * the end itself, whose first byte a token read could steal).  The first
 * use takes the token (a non-blocking one-byte read: exactly one process
 * gets it) and only the taker goes on.  Any other process gets EBUSY at
 * once: a second producer used to create a channel nobody read (its
 * messages were lost), a second consumer to block for ever in recvmsg().
 * Every wait here is cut in slices, so that signals, timeouts and close()
 * from another thread are seen.
 */
#include "zchan_py.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Wait (no GIL) until @fd is readable; -ETIME, -EINTR or 0. */
static int wait_readable(int fd, int64_t slice_ns)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int ret;

	Py_BEGIN_ALLOW_THREADS
	ret = poll(&pfd, 1, (int)((slice_ns + 999999) / 1000000));
	Py_END_ALLOW_THREADS
	if (ret < 0)
		return -errno;
	return ret ? 0 : -ETIME;
}

/*
 * Wait for @sock to be readable up to @deadline (-1: do not wait, as
 * timeout=0).  0, -EAGAIN, -ETIME, -EINTR (the exception is set), or
 * -EBADF when @closing became true (close() from another thread).
 */
int wait_sock(int sock, int64_t deadline, const int *closing)
{
	for (;;) {
		int64_t slice = deadline < 0 ? 0 : next_slice(deadline);
		int ret;

		if (slice < 0)
			return -ETIME;
		ret = wait_readable(sock, slice);
		if (!ret)
			return 0;
		if (ret != -ETIME && ret != -EINTR)
			return ret;
		if (deadline < 0)
			return -EAGAIN;
		if (PyErr_CheckSignals())
			return -EINTR;
		if (closing && *closing)
			return -EBADF;
	}
}

/*
 * A consumer received after its producer sent: make its fd readable now if
 * a message waits.  (The memfd backend's epoll fd turns readable on a kick
 * only, and the kicks before this end existed went nowhere;
 * zchan_prep_wait() arms it and kicks it when the condition already holds.
 * The sqe is only filled in, never submitted.)
 */
static void arm_received(struct zchan *ch)
{
	struct io_uring_sqe sqe;

	zchan_prep_wait(&sqe, ch);
}

/*
 * zchan_recv_peer() that never blocks in recvmsg(): wait for @sock first
 * (interruptible, bounded), then receive with the socket non-blocking, so
 * that a process that lost a race for the same message waits again
 * instead of for ever.  -EPIPE once the sender is gone without sending.
 */
int recv_peer_bounded(int sock, int64_t deadline, const int *closing,
		      struct zchan **ch)
{
	int lost = 0;

	for (;;) {
		int ret = wait_sock(sock, deadline, closing), flags;
		char c;

		if (ret)
			return ret;
		ret = (int)recv(sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		/* a peer that closes with unread bytes (its token) resets */
		if (ret == 0 || (ret < 0 && errno == ECONNRESET))
			return lost ? -EBUSY : -EPIPE;
		if (ret < 0 && errno != EAGAIN)
			return -errno;
		if (ret < 0) {
			lost = 1;	/* another process took it */
			continue;
		}
		flags = fcntl(sock, F_GETFL);
		if (flags < 0)
			return -errno;
		if (!(flags & O_NONBLOCK))
			fcntl(sock, F_SETFL, flags | O_NONBLOCK);
		Py_BEGIN_ALLOW_THREADS
		ret = zchan_recv_peer(sock, ch);
		Py_END_ALLOW_THREADS
		if (!(flags & O_NONBLOCK))
			fcntl(sock, F_SETFL, flags);
		if (!ret)
			arm_received(*ch);
		if (ret != -EAGAIN)
			return ret;
		lost = 1;
	}
}

/*
 * Mark the end used here (it cannot travel any more) and, for a producer,
 * take the token: 0, or -EBUSY if another process (or a copy used
 * elsewhere) has it.  A copy inherited through fork() claims again.
 */
static int pending_claim(EndObject *self)
{
	unsigned int forks = zchan_fork_generation();
	char c;
	ssize_t n;

	int sock = self->role == ROLE_CONSUMER ? self->claim_sock : self->pending_sock;

	if (self->claimed && self->claim_generation == forks)
		return 0;
	if (sock < 0) {		/* recv_peer(pending) without a claim socket */
		self->claimed = 1;
		self->claim_generation = forks;
		return 0;
	}
	do {	/* a reset the peer's close reported once comes before data */
		n = recv(sock, &c, 1, MSG_DONTWAIT);
	} while (n < 0 && (errno == EINTR || errno == ECONNRESET));
	if (n != 1)
		return -EBUSY;
	self->claimed = 1;
	self->claim_generation = forks;
	return 0;
}

PyObject *pending_busy_error(void)
{
	PyObject *args = Py_BuildValue("(is)", EBUSY,
		"zchan: this pending end was first used by another process; "
		"a pipe() end has one user (give each worker its own pipe(), "
		"or hand the end over and close your copy)");

	if (args) {
		PyErr_SetObject(PyExc_OSError, args);
		Py_DECREF(args);
	}
	return NULL;
}

/* Once real, the consumer's fileno() (an epoll fd) watches the channel. */
static int ready_fd_switch(EndObject *self)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (self->ready_fd < 0)
		return 0;
	epoll_ctl(self->ready_fd, EPOLL_CTL_DEL, self->pending_sock, NULL);
	if (epoll_ctl(self->ready_fd, EPOLL_CTL_ADD, zchan_fd(self->ch), &ev))
		return -errno;
	return 0;
}

/*
 * Make a pending end real; called with the lock held.  A pending consumer
 * waits up to @deadline for its producer to be used somewhere; if every
 * copy of the producer's socket is closed first, the stream is over
 * before it began: -EPIPE.  -EBUSY: another process uses this end.
 */
int end_materialise(EndObject *self, int64_t deadline)
{
	int ret, sock = self->pending_sock;

	if (self->ch || sock < 0)
		return 0;
	ret = pending_claim(self);
	if (ret)
		return ret;
	if (self->role == ROLE_PRODUCER) {
		struct zchan *ch;

		Py_BEGIN_ALLOW_THREADS
		ret = zchan_create(NULL, &self->attr, &ch);
		if (!ret) {
			ret = zchan_send_peer(ch, sock);
			if (ret)
				zchan_close(ch);
		}
		Py_END_ALLOW_THREADS
		if (ret)
			return ret;
		self->ch = ch;
	} else {
		ret = recv_peer_bounded(sock, deadline, &self->close_requested, &self->ch);
		if (ret)
			return ret;
		ret = ready_fd_switch(self);
		if (ret)
			return ret;
	}
	close(sock);
	self->pending_sock = -1;
	return 0;
}

/*
 * fileno() of a consumer that is still pending: an epoll fd that holds the
 * rendezvous socket until the end is real, then the channel's descriptor,
 * so that it is readable whenever a receive would make progress, and the
 * same number throughout (select() and multiprocessing.connection.wait()
 * keep it).  Taking it is a use: it claims the end.
 */
int pending_ready_fd(EndObject *self)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ret;

	if (self->ready_fd >= 0)
		return self->ready_fd;
	ret = pending_claim(self);
	if (ret)
		return ret;
	self->ready_fd = epoll_create1(EPOLL_CLOEXEC);
	if (self->ready_fd < 0)
		return -errno;
	if (epoll_ctl(self->ready_fd, EPOLL_CTL_ADD, self->pending_sock, &ev)) {
		ret = -errno;
		close(self->ready_fd);
		self->ready_fd = -1;
		return ret;
	}
	return self->ready_fd;
}
