// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * The private io_uring a handle sleeps in, the bottom of the waits: a
 * backend's sleep queues its sqe(s) here (kernel.c: a uring_cmd WAIT;
 * memfd.c: a poll on its epoll fd and an eventfd read linked to it), this
 * file submits and reaps them.  It calls nothing of the library's.
 */
#include <stdlib.h>
#include <string.h>

#include "zchan_int.h"

/*
 * The private ring for sleeping; without it (no io_uring here, or
 * ZCHAN_WAIT=syscall) the kernel backend sleeps in ZCHAN_IOC_WAIT and the
 * memfd backend in poll(2).  Here the handle only says whether it wants
 * one: the ring is made by the first sleep (__zchan_uring_ready()), so a
 * channel that never sleeps costs no io_uring (its setup was a quarter of
 * a channel's, and it is a descriptor).
 */
void __zchan_uring_init(struct zchan *z)
{
	const char *wait = getenv("ZCHAN_WAIT");

	z->ring_wanted = !wait || !*wait || !strcmp(wait, "uring");
}

/*
 * Is there a ring to sleep in: make it now if wanted and never tried (a
 * failure, e.g. no io_uring here or out of descriptors, is not retried:
 * the sleeps go without).  io_uring_queue_init() is io_uring_setup() and
 * two mmap()s: the sleep's system calls.
 */
bool __zchan_uring_ready(struct zchan *z)
{
	if (likely(z->have_ring) || !z->ring_wanted)
		return z->have_ring;
	z->ring_wanted = false;
	__zchan_count_syscalls(z, 3);
	if (!__zchan_keep_errno(io_uring_queue_init(4, &z->ring, 0)))
		z->have_ring = true;
	return z->have_ring;
}

/*
 * A forked child's first call: the inherited ring is the parent's (its
 * rings are shared memory), and so is what is in flight there.  The
 * child's own is made by its first sleep.
 */
void __zchan_uring_reinit(struct zchan *z)
{
	int saved_errno = errno;

	if (!z->have_ring)
		return;
	io_uring_queue_exit(&z->ring);
	errno = saved_errno;
	z->have_ring = false;
	z->ring_pending = 0;
	z->ring_wanted = true;
}

struct io_uring_sqe *__zchan_uring_sqe(struct zchan *z)
{
	return io_uring_get_sqe(&z->ring);
}

/*
 * Submit what the backend queued (@pending: RING_WAIT, RING_DRAIN).
 * Untimed: submit and wait in one io_uring_enter(), not two (a sleep of a
 * stream's consumer cost 4 to 5 syscalls).  The kernel returns the count
 * submitted even when a signal cuts the wait short; the reap goes on.
 */
int __zchan_uring_submit(struct zchan *z, unsigned int pending,
			 int64_t timeout_ns)
{
	int ret;

	z->ring_pending = pending;
	__zchan_count_syscalls(z, 1);	/* one io_uring_enter() */
	if (timeout_ns < 0)
		ret = io_uring_submit_and_wait(&z->ring,
					       pending & RING_DRAIN ? 2 : 1);
	else
		ret = io_uring_submit(&z->ring);
	if (ret < 0)
		z->ring_pending = 0;
	return ret < 0 ? ret : 0;
}

/*
 * One completion: 0, or the wait's error.  A drain's result is left in
 * ring_drain_res for the backend (ring_drain_done).
 */
static int ring_reap(struct zchan *z, struct io_uring_cqe *cqe)
{
	uint64_t data = io_uring_cqe_get_data64(cqe);
	int res = cqe->res;

	io_uring_cqe_seen(&z->ring, cqe);
	if (data == ZCHAN_UDATA_DRAIN) {
		z->ring_pending &= ~RING_DRAIN;
		z->ring_drain_res = res;
		z->ring_drain_done = true;
		return 0;
	}
	z->ring_pending &= ~RING_WAIT;
	if (res >= 0 || res == -EINTR || res == -ECANCELED || res == -EAGAIN)
		return 0;
	return res;
}

/* Reap until nothing is in flight, @timeout_ns (>= 0) or a signal. */
int __zchan_uring_reap(struct zchan *z, int64_t timeout_ns)
{
	struct io_uring_cqe *cqe;
	int ret, err = 0;

	while (z->ring_pending) {
		/* liburing enters the kernel only if no completion is there */
		if (!io_uring_cq_ready(&z->ring))
			__zchan_count_syscalls(z, 1);
		if (timeout_ns >= 0) {
			struct __kernel_timespec ts = {
				.tv_sec = timeout_ns / 1000000000LL,
				.tv_nsec = timeout_ns % 1000000000LL,
			};

			ret = io_uring_wait_cqe_timeout(&z->ring, &cqe, &ts);
		} else {
			ret = io_uring_wait_cqe(&z->ring, &cqe);
		}
		if (ret < 0)
			return ret;	/* -ETIME/-EINTR: the sqe stays in flight */
		ret = ring_reap(z, cqe);
		if (ret)
			err = ret;
	}
	return err;
}

/*
 * The handle goes.  A sleep cut short by a signal may have left its poll
 * and the read linked to it in flight (memfd), and the read writes into
 * *z: cancel the poll and reap the completions before z is freed.  Only
 * in the process that submitted them (@ours: a forked child that never
 * held the end must not take its parent's completions), and not for the
 * kernel backend's wait, which writes nothing of ours.
 */
static void ring_quiesce(struct zchan *z, bool ours)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	bool cancelled = false;
	int ret;

	if (!(z->ring_pending & RING_DRAIN) || !ours)
		return;
	sqe = io_uring_get_sqe(&z->ring);
	if (!sqe)
		return;
	io_uring_prep_cancel64(sqe, ZCHAN_UDATA_WAIT, 0);
	io_uring_sqe_set_data64(sqe, ZCHAN_UDATA_CANCEL);
	if (__zchan_keep_errno(io_uring_submit(&z->ring)) < 1)
		return;
	while (z->ring_pending || !cancelled) {
		ret = __zchan_keep_errno(io_uring_wait_cqe(&z->ring, &cqe));
		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return;
		if (io_uring_cqe_get_data64(cqe) == ZCHAN_UDATA_CANCEL) {
			cancelled = true;
			io_uring_cqe_seen(&z->ring, cqe);
		} else {
			ring_reap(z, cqe);
		}
	}
}

void __zchan_uring_exit(struct zchan *z, bool ours)
{
	if (!z->have_ring)
		return;
	ring_quiesce(z, ours);
	io_uring_queue_exit(&z->ring);
	z->have_ring = false;
}
