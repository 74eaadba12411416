/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * libzchan: zero-copy message channels between processes.
 *
 * A channel carries messages one way, from one producer end to one consumer
 * end, through shared pages: a descriptor ring and a data pool.  Two
 * backends implement the same API and the same ring protocol
 * (<linux/zchan.h>):
 *
 *  - ZCHAN_BACKEND_KERNEL: /dev/zchan (zchan.ko) owns the pages, names,
 *    permissions, lifetime and wakeups;
 *  - ZCHAN_BACKEND_MEMFD: anonymous channels over memfds, wakeups through
 *    eventfds, peer death through a socketpair; no module needed.
 *
 * Conventions (as liburing): every call returns 0, a count or a length, or
 * a negative errno value; nothing sets errno.  A handle is used by one
 * thread at a time; the two ends may live in different threads or
 * processes.  See zchan(7) / Documentation/library.rst.
 */
#ifndef ZCHAN_H
#define ZCHAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/zchan.h>	/* the UAPI: limits, defaults, the ring */

#ifdef __cplusplus
extern "C" {
#endif

struct zchan;			/* one end of a channel (opaque) */
struct io_uring_sqe;

/* zchan_backend() values and zchan_attr.backend */
#define ZCHAN_BACKEND_AUTO	0	/* attr only: $ZCHAN_BACKEND, else probe */
#define ZCHAN_BACKEND_KERNEL	1
#define ZCHAN_BACKEND_MEMFD	2

/* flags of zchan_send/recv/loan/recv_zc/recv_batch */
#define ZCHAN_NONBLOCK		(1U << 0)	/* -EAGAIN instead of waiting */
/* zchan_send() and zchan_commit_flags(): more follow, publish later */
#define ZCHAN_MORE		(1U << 1)

/* zchan_attr.flags and zchan_set_flags() */
#define ZCHAN_BUSY_POLL		(1U << 0)	/* blocking calls never sleep */
/*
 * zchan_attr.flags only (zchan_set_flags() rejects it): every consumer
 * gets every message.  Without it, a channel of several consumers is a
 * work queue: each message goes to exactly one.  See zchan_attach(3).
 */
#define ZCHAN_BROADCAST		(1U << 1)

/*
 * Zero fields of zchan_attr take the UAPI's defaults, the module's too:
 * ZCHAN_DEFAULT_POOL_SIZE, ZCHAN_DEFAULT_RING_ENTRIES and a max_msg of
 * pool_size / 4 (at most ZCHAN_MSG_MAX).
 */

/**
 * struct zchan_attr - channel geometry and options for zchan_create()
 * @pool_size: data pool bytes, rounded up to the page size (0: default)
 * @max_msg: largest message, at most @pool_size / 2 and ZCHAN_MSG_MAX
 *	(0: @pool_size / 4, at most ZCHAN_MSG_MAX)
 * @ring_entries: descriptor ring size, a power of two (0: default)
 * @mode: permission bits for attach by name (kernel backend; 0: 0600)
 * @flags: ZCHAN_BUSY_POLL, ZCHAN_BROADCAST or zero
 * @backend: ZCHAN_BACKEND_AUTO, _KERNEL or _MEMFD
 * @max_producers: most producer ends live at once (0: 1), at most
 *	ZCHAN_ENDS_MAX
 * @max_consumers: most consumer ends live at once (0: 1), at most
 *	ZCHAN_ENDS_MAX
 * @reserved: must be zero (-EINVAL otherwise)
 *
 * Initialise with zchan_attr_init() so that future fields stay zero.
 */
struct zchan_attr {
	size_t pool_size;
	size_t max_msg;
	unsigned int ring_entries;
	unsigned int mode;
	unsigned int flags;
	unsigned int backend;
	unsigned int max_producers;
	unsigned int max_consumers;
	uint64_t reserved[5];
};

/**
 * struct zchan_msg - one borrowed message, filled by zchan_recv_batch()
 * @buf: payload in the pool (read-only); give it back with zchan_release()
 * @len: payload length
 */
struct zchan_msg {
	const void *buf;
	size_t len;
};

/**
 * struct zchan_stats - per-handle counters (this end only)
 * @messages: messages published (producer) or taken (consumer)
 * @bytes: payload bytes of those messages
 * @kicks: wakeups sent to the peer (each one a syscall)
 * @waits: times this end went to sleep in the kernel
 * @spins: spin iterations spent waiting before sleeping
 * @syscalls: every system call the data path and its waits made: the
 *	kicks and sleeps, and (memfd) draining kicks and watching the
 *	peer's processes
 * @reserved: zero
 */
struct zchan_stats {
	uint64_t messages;
	uint64_t bytes;
	uint64_t kicks;
	uint64_t waits;
	uint64_t spins;
	uint64_t syscalls;
	uint64_t reserved[2];
};

/* Setup and teardown */
void zchan_attr_init(struct zchan_attr *attr);
int zchan_create(const char *name, const struct zchan_attr *attr,
		 struct zchan **prod);
int zchan_open(const char *name, struct zchan **cons);
int zchan_send_peer(struct zchan *prod, int unix_sock);
int zchan_recv_peer(int unix_sock, struct zchan **cons);
void zchan_close(struct zchan *ch);

/*
 * Many-ended channels (max_producers, max_consumers): a new end of @role
 * (ZCHAN_ROLE_PRODUCER or ZCHAN_ROLE_CONSUMER, <linux/zchan.h>) on a named
 * channel, or handed from any end to the process at the other side of a
 * unix socket (zchan_recv_peer() takes either role); how many ends of
 * @role are live.  zchan_open(name, c) is zchan_attach(name,
 * ZCHAN_ROLE_CONSUMER, c), zchan_send_peer(p, s) is zchan_send_end(p,
 * ZCHAN_ROLE_CONSUMER, s).  See zchan_attach(3), zchan_send_end(3).
 */
int zchan_attach(const char *name, unsigned int role, struct zchan **end);
int zchan_send_end(struct zchan *end, unsigned int role, int unix_sock);
int zchan_ends(const struct zchan *end, unsigned int role);

/* Copying data path */
ssize_t zchan_send(struct zchan *p, const void *buf, size_t len,
		   unsigned int flags);
ssize_t zchan_recv(struct zchan *c, void *buf, size_t cap, unsigned int flags);

/* Zero-copy producer: loan pool space, fill it, commit (or abort) it */
int zchan_loan(struct zchan *p, size_t len, void **buf, unsigned int flags);
int zchan_commit(struct zchan *p, void *buf, size_t len);
int zchan_abort(struct zchan *p, void *buf);

/* Batches: publish many messages at once, release many at once */
int zchan_commit_flags(struct zchan *p, void *buf, size_t len,
		       unsigned int flags);
int zchan_flush(struct zchan *p);
int zchan_release_batch(struct zchan *c, const struct zchan_msg *msgs,
			unsigned int nr);

/* Zero-copy consumer: borrow messages, release them in any order */
ssize_t zchan_recv_zc(struct zchan *c, const void **buf, unsigned int flags);
int zchan_recv_batch(struct zchan *c, struct zchan_msg *msgs,
		     unsigned int nr, unsigned int flags);
int zchan_release(struct zchan *c, const void *buf);

/*
 * The producer's own pages (kernel backend with ZCHAN_FEAT_SEND_PAGES; the
 * memfd backend returns -EOPNOTSUPP): page-aligned @buf and @len, handed
 * over without a copy; the consumer's zchan_recv_zc() returns a read-only
 * mapping of them, and once it released it zchan_reap() returns @cookie.
 * See zchan_send_pages(3).
 */
int zchan_send_pages(struct zchan *p, const void *buf, size_t len,
		     uint64_t cookie, unsigned int flags);
int zchan_reap(struct zchan *p, uint64_t *cookies, unsigned int n,
	       unsigned int flags);

/* Waiting and integration with poll/epoll/io_uring */
int zchan_fd(const struct zchan *ch);
int zchan_poll(struct zchan *ch);
int zchan_wait(struct zchan *ch, int64_t timeout_ns);
void zchan_prep_wait(struct io_uring_sqe *sqe, struct zchan *ch);

/* Introspection and options */
int zchan_backend(const struct zchan *ch);
int zchan_get_attr(const struct zchan *ch, struct zchan_attr *attr);
int zchan_stats(const struct zchan *ch, struct zchan_stats *stats);
int zchan_set_flags(struct zchan *ch, unsigned int flags);
const char *zchan_strerror(int err);

/*
 * A number that changes in every child fork(2) makes once this was called
 * (or a handle was made): an end whose user recorded another number was
 * inherited.  For state kept beside handles (locks) that a child replaces.
 */
unsigned int zchan_fork_generation(void);

#ifdef __cplusplus
}
#endif

#endif /* ZCHAN_H */
