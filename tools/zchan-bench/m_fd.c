// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * The classic transports: pipe, vmsplice (pipe fed by vmsplice), unix
 * socketpair and TCP over loopback.  They share one implementation: the
 * sender builds a message in a private buffer and hands it to the kernel,
 * the receiver reads exactly msg_size bytes into its own buffer.  In spin
 * mode both ends are non-blocking and retry on EAGAIN, which is how people
 * busy-poll a file descriptor.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "bench.h"

/* Pipe buffer size requested for pipe and vmsplice (0: kernel default). */
long bench_pipe_size;

#define PAGE 4096UL

struct fd_priv {
	void *buf;		/* message buffer, or the vmsplice ring */
	size_t buf_len;
	size_t slot;		/* vmsplice: bytes per ring slot */
	size_t nslots, next;
};

static size_t round_up(size_t v, size_t to)
{
	return (v + to - 1) / to * to;
}

static int alloc_buf(struct chan *c, size_t len)
{
	struct fd_priv *p = c->priv;

	p->buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->buf == MAP_FAILED) {
		p->buf = NULL;
		chan_error(c, "mmap %zu bytes: %s", len, strerror(errno));
		return -1;
	}
	p->buf_len = len;
	return 0;
}

static int new_priv(struct chan *c)
{
	c->priv = calloc(1, sizeof(struct fd_priv));
	if (!c->priv) {
		chan_error(c, "out of memory");
		return -1;
	}
	return 0;
}

static int set_nonblock(struct chan *c, int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		chan_error(c, "O_NONBLOCK: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* fd[0] is always the receiving end, fd[1] the sending end. */
static int fd_open(struct chan *c, bool sender)
{
	int keep = sender ? 1 : 0;

	c->sender = sender;
	close_fd(&c->fd[!keep]);
	if ((c->spin || c->polled) && set_nonblock(c, c->fd[keep]))
		return -1;
	if (!c->priv && new_priv(c))
		return -1;
	return alloc_buf(c, round_up(c->msg_size, PAGE));
}

static void *fd_loan(struct chan *c)
{
	return ((struct fd_priv *)c->priv)->buf;
}

static int fd_send(struct chan *c, void *buf)
{
	size_t off = 0;

	while (off < c->msg_size) {
		ssize_t n = write(c->fd[1], (char *)buf + off, c->msg_size - off);

		SYSCOUNT(c);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			chan_error(c, "write: %s", strerror(errno));
			return -1;
		}
		off += (size_t)n;
		chan_progress(c, (uint64_t)n);
	}
	return 0;
}

static const void *fd_recv(struct chan *c)
{
	struct fd_priv *p = c->priv;
	size_t off = 0;

	while (off < c->msg_size) {
		ssize_t n = read(c->fd[0], (char *)p->buf + off, c->msg_size - off);

		SYSCOUNT(c);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			chan_error(c, "read: %s", strerror(errno));
			return NULL;
		}
		if (n == 0) {
			chan_error(c, "peer closed after %zu of %zu bytes",
				   off, c->msg_size);
			return NULL;
		}
		off += (size_t)n;
		chan_progress(c, (uint64_t)n);
	}
	return p->buf;
}

/*
 * Fan-in over lanes: the read end is non-blocking (c->polled).  Nothing
 * there: 0 at once; a message begun: all of it, waiting in poll(2) for
 * the rest (its writer is in the middle of writing it).
 */
static int fd_recv_try(struct chan *c, const void **msg)
{
	struct fd_priv *p = c->priv;
	size_t off = 0;

	while (off < c->msg_size) {
		ssize_t n = read(c->fd[0], (char *)p->buf + off, c->msg_size - off);

		SYSCOUNT(c);
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = c->fd[0], .events = POLLIN };

			if (!off)
				return 0;
			SYSCOUNT(c);
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
				chan_error(c, "poll: %s", strerror(errno));
				return -1;
			}
			continue;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			chan_error(c, "read: %s", strerror(errno));
			return -1;
		}
		if (n == 0) {
			chan_error(c, "peer closed after %zu of %zu bytes",
				   off, c->msg_size);
			return -1;
		}
		off += (size_t)n;
		chan_progress(c, (uint64_t)n);
	}
	*msg = p->buf;
	return 1;
}

static int fd_wait_fd(struct chan *c)
{
	return c->fd[0];
}

static void fd_destroy(struct chan *c)
{
	struct fd_priv *p = c->priv;

	close_fd(&c->fd[0]);
	close_fd(&c->fd[1]);
	if (p) {
		if (p->buf)
			munmap(p->buf, p->buf_len);
		free(p);
		c->priv = NULL;
	}
}

int method_always_available(char *why, size_t len)
{
	(void)why;
	(void)len;
	return 0;
}

void method_release_nothing(struct chan *c, const void *buf)
{
	(void)c;
	(void)buf;
}

/*
 * A method of this file: its own create, the others as given.  Fan-in:
 * a descriptor per producer, polled; fan-out (@fanout): the same buffer
 * written to a descriptor per consumer.
 */
#define FD_METHOD(var, nm, dsc, createfn, openfn, loanfn, sendfn, fanout) \
const struct method var = {						\
	.name = nm,							\
	.desc = dsc,							\
	.probe = method_always_available,				\
	.create = createfn,						\
	.open = openfn,							\
	.loan = loanfn,							\
	.send = sendfn,							\
	.recv = fd_recv,						\
	.release = method_release_nothing,				\
	.destroy = fd_destroy,						\
	.fan_in = FAN_LANES,						\
	.fan_out = fanout,						\
	.recv_try = fd_recv_try,					\
	.wait_fd = fd_wait_fd,						\
}

/* ---- pipe ---------------------------------------------------------- */

static int pipe_create(struct chan *c)
{
	if (pipe(c->fd)) {
		chan_error(c, "pipe: %s", strerror(errno));
		return -1;
	}
	if (bench_pipe_size > 0 &&
	    fcntl(c->fd[1], F_SETPIPE_SZ, (int)bench_pipe_size) < 0) {
		chan_error(c, "F_SETPIPE_SZ %ld: %s", bench_pipe_size,
			   strerror(errno));
		fd_destroy(c);
		return -1;
	}
	return 0;
}

FD_METHOD(method_pipe, "pipe",
	  "pipe(2), write(2) and read(2): two copies per message",
	  pipe_create, fd_open, fd_loan, fd_send, FAN_LANES);

/* ---- vmsplice ------------------------------------------------------ */

/*
 * vmsplice(2) puts references to the sender's pages into the pipe, so the
 * sender must not rewrite a page until the reader has consumed it.  The
 * pipe holds at most (capacity / PAGE) buffers, which always belong to the
 * most recent messages; a ring of ceil(buffers / pages per message) + 1
 * page-aligned slots therefore never rewrites a page still in the pipe.
 * That ring is the price of using vmsplice correctly.
 */
static int vmsplice_open(struct chan *c, bool sender)
{
	struct fd_priv *p;
	size_t pipe_pages, msg_pages;
	int cap;

	if (!sender)
		return fd_open(c, false);
	c->sender = true;
	close_fd(&c->fd[0]);
	if (c->spin && set_nonblock(c, c->fd[1]))
		return -1;
	if (new_priv(c))
		return -1;
	p = c->priv;
	cap = fcntl(c->fd[1], F_GETPIPE_SZ);
	if (cap <= 0) {
		chan_error(c, "F_GETPIPE_SZ: %s", strerror(errno));
		return -1;
	}
	pipe_pages = (size_t)cap / PAGE;
	msg_pages = round_up(c->msg_size, PAGE) / PAGE;
	p->slot = msg_pages * PAGE;
	p->nslots = (pipe_pages + msg_pages - 1) / msg_pages + 1;
	return alloc_buf(c, p->slot * p->nslots);
}

static void *vmsplice_loan(struct chan *c)
{
	struct fd_priv *p = c->priv;
	void *buf = (char *)p->buf + p->next * p->slot;

	p->next = (p->next + 1) % p->nslots;
	return buf;
}

static int vmsplice_send(struct chan *c, void *buf)
{
	struct iovec iov = { .iov_base = buf, .iov_len = c->msg_size };
	unsigned int flags = c->spin ? SPLICE_F_NONBLOCK : 0;

	while (iov.iov_len) {
		ssize_t n = vmsplice(c->fd[1], &iov, 1, flags);

		SYSCOUNT(c);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			chan_error(c, "vmsplice: %s", strerror(errno));
			return -1;
		}
		iov.iov_base = (char *)iov.iov_base + n;
		iov.iov_len -= (size_t)n;
		chan_progress(c, (uint64_t)n);
	}
	return 0;
}

FD_METHOD(method_vmsplice, "vmsplice",
	  "pipe fed with vmsplice(2) (no copy in), read(2) out: one copy",
	  pipe_create, vmsplice_open, vmsplice_loan, vmsplice_send, FAN_NONE);

/* ---- unix socketpair ----------------------------------------------- */

static int socketpair_create(struct chan *c)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, c->fd)) {
		chan_error(c, "socketpair: %s", strerror(errno));
		return -1;
	}
	return 0;
}

FD_METHOD(method_socketpair, "socketpair",
	  "AF_UNIX SOCK_STREAM socketpair(2), write/read: two copies",
	  socketpair_create, fd_open, fd_loan, fd_send, FAN_LANES);

/* ---- TCP over 127.0.0.1 -------------------------------------------- */

static int tcp_create(struct chan *c)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int lfd, one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0) {
		chan_error(c, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len)) {
		chan_error(c, "listen on 127.0.0.1: %s", strerror(errno));
		goto err_lfd;
	}
	c->fd[1] = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd[1] < 0 ||
	    connect(c->fd[1], (struct sockaddr *)&sa, sizeof(sa))) {
		chan_error(c, "connect to 127.0.0.1:%u: %s", ntohs(sa.sin_port),
			   strerror(errno));
		goto err_fds;
	}
	c->fd[0] = accept(lfd, NULL, NULL);
	if (c->fd[0] < 0) {
		chan_error(c, "accept: %s", strerror(errno));
		goto err_fds;
	}
	/* latency is measured per message: no Nagle batching */
	setsockopt(c->fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(lfd);
	return 0;

err_fds:
	close_fd(&c->fd[1]);
err_lfd:
	close(lfd);
	return -1;
}

FD_METHOD(method_tcp, "tcp",
	  "TCP over 127.0.0.1 (TCP_NODELAY), write/read: two copies",
	  tcp_create, fd_open, fd_loan, fd_send, FAN_LANES);
