// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Waiting: spin briefly on the shared words, then sleep in the kernel.
 *
 *  - kernel backend: IORING_OP_URING_CMD ZCHAN_URING_CMD_WAIT in the
 *    handle's private io_uring (the kernel arms need_wakeup and completes
 *    the command on a kick or when the peer goes), ZCHAN_IOC_WAIT for
 *    timed waits or where io_uring is unavailable;
 *  - memfd backend: we arm our own need_wakeup (a generation number), then
 *    IORING_OP_POLL_ADD on the epoll fd that aggregates our eventfd and the
 *    liveness socket; the kick is an eventfd write.
 *
 * Both loops re-check the condition after arming, so a kick can't be lost.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "zchan_int.h"

/* Spinning checks the clock every ZCHAN_SPIN_CHUNK iterations. */
#define ZCHAN_SPIN_CHUNK	32
#define ZCHAN_BUSY_SLOW_EVERY	4096	/* busy poll: liveness/clock checks */

#define ZCHAN_UDATA_WAIT	0x7a63686e01ULL

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int kernel_ioctl_wait(struct zchan *z, int64_t timeout_ns)
{
	struct zchan_wait w;

	memset(&w, 0, sizeof(w));
	if (timeout_ns >= 0) {
		w.flags = ZCHAN_WAIT_TIMEOUT;
		w.timeout_ns = (uint64_t)timeout_ns;
	}
	if (ioctl(z->fd, ZCHAN_IOC_WAIT, &w) < 0) {
		if (errno == ETIMEDOUT || errno == ETIME)
			return -ETIME;
		return -errno;
	}
	return 0;
}

static void prep_uring_cmd(struct io_uring_sqe *sqe, int fd, uint32_t op)
{
	struct zchan_uring_cmd *cmd;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = op;
	cmd = (struct zchan_uring_cmd *)sqe->cmd;
	memset(cmd, 0, sizeof(*cmd));
}

/* Submit (unless one is still in flight) and reap one private wait sqe. */
static int ring_wait(struct zchan *z, int64_t timeout_ns)
{
	struct io_uring_cqe *cqe;
	int ret, res;

	if (!z->ring_pending) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&z->ring);

		if (!sqe)
			return -EBUSY;
		if (z->backend == ZCHAN_BACKEND_KERNEL)
			prep_uring_cmd(sqe, z->fd, ZCHAN_URING_CMD_WAIT);
		else
			io_uring_prep_poll_add(sqe, z->fd, POLLIN);
		io_uring_sqe_set_data64(sqe, ZCHAN_UDATA_WAIT);
		ret = io_uring_submit(&z->ring);
		if (ret < 0)
			return ret;
		z->ring_pending = true;
	}
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
	res = cqe->res;
	io_uring_cqe_seen(&z->ring, cqe);
	z->ring_pending = false;
	if (res >= 0 || res == -EINTR || res == -ECANCELED || res == -EAGAIN)
		return 0;
	return res;
}

static int do_sleep_once(struct zchan *z, int64_t timeout_ns)
{
	z->st.waits++;
	if (z->backend == ZCHAN_BACKEND_KERNEL) {
		/*
		 * A uring_cmd can't be cancelled by a 6.1 kernel: never leave
		 * one in flight on a timeout, use the ioctl for timed waits.
		 */
		if (!z->have_ring || z->use_ioctl_wait || timeout_ns >= 0)
			return kernel_ioctl_wait(z, timeout_ns);
		return ring_wait(z, -1);
	}
	if (z->have_ring)
		return ring_wait(z, timeout_ns);
	{
		struct pollfd pfd = { .fd = z->fd, .events = POLLIN };
		int ms = timeout_ns < 0 ? -1 : (int)(timeout_ns / 1000000);
		int ret;

		if (timeout_ns > 0 && ms == 0)
			ms = 1;
		ret = poll(&pfd, 1, ms);
		if (ret < 0)
			return -errno;
		return ret ? 0 : -ETIME;
	}
}

static int sleep_once(struct zchan *z, int64_t timeout_ns)
{
	return zchan_keep_errno(do_sleep_once(z, timeout_ns));
}

/*
 * Wait until zchan_ready_mask() is non-zero: returns the mask, -ETIME when
 * @timeout_ns (>= 0) expires, or a negative error.
 */
int zchan_wait_ready(struct zchan *z, uint32_t need, int64_t timeout_ns)
{
	uint64_t deadline = 0;
	unsigned int i;
	int mask, ret;

	mask = zchan_ready_mask(z, need, false);
	if (mask)
		return mask;
	if (timeout_ns == 0) {
		mask = zchan_ready_mask(z, need, true);
		return mask ? mask : -ETIME;
	}
	if (timeout_ns > 0)
		deadline = now_ns() + (uint64_t)timeout_ns;

	if (z->spin_ns) {
		uint64_t spin_end = now_ns() + z->spin_ns;

		do {
			for (i = 0; i < ZCHAN_SPIN_CHUNK; i++) {
				cpu_relax();
				mask = zchan_ready_mask(z, need, false);
				if (mask) {
					z->st.spins += i + 1;
					return mask;
				}
			}
			z->st.spins += ZCHAN_SPIN_CHUNK;
		} while (now_ns() < spin_end);
	}

	if (z->flags & ZCHAN_BUSY_POLL) {
		for (i = 1;; i++) {
			bool slow = !(i % ZCHAN_BUSY_SLOW_EVERY);

			cpu_relax();
			z->st.spins++;
			mask = zchan_ready_mask(z, need, slow);
			if (mask)
				return mask;
			if (slow && deadline && now_ns() >= deadline)
				return -ETIME;
		}
	}

	for (;;) {
		int64_t left = -1;

		zchan_drain(z);
		zchan_arm(z);
		mask = zchan_ready_mask(z, need, true);
		if (mask)
			return mask;
		if (deadline) {
			uint64_t now = now_ns();

			if (now >= deadline)
				return -ETIME;
			left = (int64_t)(deadline - now);
		}
		ret = sleep_once(z, left);
		if (ret < 0 && ret != -ETIME && ret != -EINTR)
			return ret;
	}
}

ZCHAN_EXPORT
int zchan_wait(struct zchan *ch, int64_t timeout_ns)
{
	int ret;

	if (!ch)
		return -EINVAL;
	ret = zchan_use(ch);
	if (ret)
		return ret;
	return zchan_wait_ready(ch, ch->max_msg, timeout_ns < 0 ? -1 : timeout_ns);
}

ZCHAN_EXPORT
void zchan_prep_wait(struct io_uring_sqe *sqe, struct zchan *ch)
{
	unsigned int events;
	int fd = -1;

	if (!sqe)
		return;
	if (!ch) {
		/* completes with -EBADF: errors come back in the cqe */
		io_uring_prep_poll_add(sqe, -1, POLLIN);
		return;
	}
	fd = ch->fd;
	if (zchan_use(ch))
		fd = -1;	/* the cqe says -EBADF: the end is not ours */
	events = ch->role == ZCHAN_CONSUMER ? POLLIN : POLLOUT;
	if (ch->backend == ZCHAN_BACKEND_MEMFD) {
		/*
		 * The epoll fd only turns readable on a kick: arm here, and if
		 * the condition already holds kick ourselves, so the poll
		 * completes at once instead of missing it.
		 */
		zchan_drain(ch);
		zchan_arm(ch);
		if (zchan_ready_mask(ch, ch->max_msg, true))
			zchan_self_kick(ch);
		events = POLLIN;
	}
	io_uring_prep_poll_add(sqe, fd, events);
}
