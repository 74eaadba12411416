// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Notifications and waits, the layer below the data path (ring.c calls
 * in here; nothing here calls ring.c: readiness comes as an argument).
 *
 * Notifications: a kick wakes a sleeping peer, need_wakeup says whether it
 * sleeps (arm), the peer's closed word or liveness socket says whether it
 * is gone.  Waiting: spin briefly on the shared words, then sleep in the
 * kernel.
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
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "zchan_int.h"

/* Spinning checks the clock every ZCHAN_SPIN_CHUNK iterations. */
#define ZCHAN_SPIN_CHUNK	32
/*
 * Busy poll: the clock is read every ZCHAN_BUSY_CLOCK_EVERY iterations, and
 * the checks that cost system calls (memfd peer liveness) run once every
 * ZCHAN_BUSY_SLOW_NS: counting iterations instead put a poll() and a
 * pidfd check into about one round trip in a hundred.
 */
#define ZCHAN_BUSY_CLOCK_EVERY	1024
#define ZCHAN_BUSY_SLOW_NS	1000000

#define ZCHAN_UDATA_WAIT	0x7a63686e01ULL
#define ZCHAN_UDATA_DRAIN	0x7a63686e02ULL
#define ZCHAN_UDATA_CANCEL	0x7a63686e03ULL

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
	int ret;

	memset(&w, 0, sizeof(w));
	if (timeout_ns >= 0) {
		w.flags = ZCHAN_WAIT_TIMEOUT;
		w.timeout_ns = (uint64_t)timeout_ns;
	}
	ret = __sys_ioctl(z->fd, ZCHAN_IOC_WAIT, &w);
	if (ret == -ETIMEDOUT)
		return -ETIME;
	return ret < 0 ? ret : 0;
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

/* What is in flight in the private ring (z->ring_pending). */
#define RING_WAIT	1U
#define RING_DRAIN	2U

/*
 * memfd, untimed: the sleep drains our eventfd in the ring, with a read
 * linked after the poll that wakes it - one io_uring_enter() per sleep, no
 * read() before it.  RWF_NOWAIT: woken by the socket or a pidfd, the read
 * finds the eventfd empty and says so instead of waiting for a kick.
 */
static bool ring_drains(const struct zchan *z, int64_t timeout_ns)
{
	return z->backend == ZCHAN_BACKEND_MEMFD && z->have_ring &&
	       !z->no_ring_drain && timeout_ns < 0;
}

/* memfd: @cnt was read from our eventfd; was a peer's kick among it? */
static void note_drained(struct zchan *z, uint64_t cnt)
{
	if (cnt > z->self_kicks)
		z->kick_seen = true;
	z->self_kicks = 0;
}

/* One completion of the private ring: 0, or the wait's error. */
static int ring_reap(struct zchan *z, struct io_uring_cqe *cqe)
{
	uint64_t data = io_uring_cqe_get_data64(cqe);
	int res = cqe->res;

	io_uring_cqe_seen(&z->ring, cqe);
	if (data == ZCHAN_UDATA_DRAIN) {
		z->ring_pending &= ~RING_DRAIN;
		if (res == (int)sizeof(z->ring_drained))
			note_drained(z, z->ring_drained);
		else if (res == -EOPNOTSUPP || res == -EINVAL)
			z->no_ring_drain = true;	/* read() from now on */
		return 0;
	}
	z->ring_pending &= ~RING_WAIT;
	if (res >= 0 || res == -EINTR || res == -ECANCELED || res == -EAGAIN)
		return 0;
	return res;
}

/* Submit (unless still in flight) and reap the private wait sqe(s). */
static int ring_wait(struct zchan *z, int64_t timeout_ns)
{
	struct io_uring_cqe *cqe;
	int ret, err = 0;

	if (!z->ring_pending) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&z->ring);
		struct io_uring_sqe *rd;

		if (!sqe)
			return -EBUSY;
		if (z->backend == ZCHAN_BACKEND_KERNEL)
			prep_uring_cmd(sqe, z->fd, ZCHAN_URING_CMD_WAIT);
		else
			io_uring_prep_poll_add(sqe, z->fd, POLLIN);
		io_uring_sqe_set_data64(sqe, ZCHAN_UDATA_WAIT);
		z->ring_pending = RING_WAIT;
		if (ring_drains(z, timeout_ns) &&
		    (rd = io_uring_get_sqe(&z->ring))) {
			io_uring_sqe_set_flags(sqe, IOSQE_IO_LINK);
			io_uring_prep_read(rd, z->own_efd, &z->ring_drained,
					   sizeof(z->ring_drained), 0);
			rd->rw_flags = RWF_NOWAIT;
			io_uring_sqe_set_data64(rd, ZCHAN_UDATA_DRAIN);
			z->ring_pending |= RING_DRAIN;
		}
		/*
		 * Untimed: submit and wait in one io_uring_enter(), not two
		 * (a sleep of a stream's consumer cost 4 to 5 syscalls).  The
		 * kernel returns the count submitted even when a signal cuts
		 * the wait short; the wait below then goes on.
		 */
		if (timeout_ns < 0)
			ret = io_uring_submit_and_wait(&z->ring,
					z->ring_pending & RING_DRAIN ? 2 : 1);
		else
			ret = io_uring_submit(&z->ring);
		if (ret < 0) {
			z->ring_pending = 0;
			return ret;
		}
	}
	while (z->ring_pending) {
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
 * in the process that submitted them (a forked child that never used the
 * end must not take its parent's completions), and not for the kernel
 * backend's wait, which writes nothing of ours.
 */
void zchan_ring_quiesce(struct zchan *z)
{
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	bool cancelled = false;
	int ret;

	if (!z->have_ring || !(z->ring_pending & RING_DRAIN) ||
	    !zchan_used_here(z))
		return;
	sqe = io_uring_get_sqe(&z->ring);
	if (!sqe)
		return;
	io_uring_prep_cancel64(sqe, ZCHAN_UDATA_WAIT, 0);
	io_uring_sqe_set_data64(sqe, ZCHAN_UDATA_CANCEL);
	if (zchan_keep_errno(io_uring_submit(&z->ring)) < 1)
		return;
	while (z->ring_pending || !cancelled) {
		ret = zchan_keep_errno(io_uring_wait_cqe(&z->ring, &cqe));
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
		ret = __sys_poll(&pfd, 1, ms);
		if (ret < 0)
			return ret;
		return ret ? 0 : -ETIME;
	}
}

static int sleep_once(struct zchan *z, int64_t timeout_ns)
{
	return zchan_keep_errno(do_sleep_once(z, timeout_ns));
}

/* ------------------------------------------------------------------ */
/* Notifications                                                       */

void zchan_kick(struct zchan *z)
{
	z->st.kicks++;
	if (z->backend == ZCHAN_BACKEND_KERNEL) {
		struct zchan_kick k = { 0 };

		/* An error here (peer gone) shows up through 'closed'. */
		(void)__sys_ioctl(z->fd, ZCHAN_IOC_KICK, &k);
	} else {
		uint64_t one = 1;

		/* -EAGAIN: counter saturated, the peer is woken anyway. */
		(void)__sys_write(z->peer_efd, &one, sizeof(one));
	}
}

/*
 * Called after our own store (tail or head) and before reading the peer's
 * need_wakeup: is the peer asleep, or about to sleep, waiting for us?  The
 * kernel clears need_wakeup when it delivers a kick; the memfd peer cannot
 * (the word is read-only here), so there need_wakeup is a generation and
 * a generation we already kicked does not sleep any more.
 */
bool zchan_peer_sleeps(struct zchan *z)
{
	uint32_t nw;

	smp_mb();	/* our tail/head store before the peer's need_wakeup */
	nw = load_once(z->peer_need_wakeup);
	if (likely(!nw))
		return false;
	if (z->backend == ZCHAN_BACKEND_MEMFD && nw == z->kicked_gen)
		return false;
	z->peer_gen = nw;
	return true;
}

/* Kick the peer that zchan_peer_sleeps() found asleep. */
void zchan_wake_peer(struct zchan *z)
{
	z->kicked_gen = z->peer_gen;
	zchan_kick(z);
}

void zchan_notify_peer(struct zchan *z)
{
	if (zchan_peer_sleeps(z))
		zchan_wake_peer(z);
}

/*
 * Announce that this end is about to sleep (or returns -EAGAIN), then the
 * caller re-checks its condition: either it sees the peer's last store or
 * the peer sees need_wakeup and kicks.
 *
 * memfd: the generation only moves on after a kick from the peer was
 * drained, so it is always the peer's last kicked generation or the one
 * after it: the peer can never mistake a new wait for one it already
 * kicked, however often we arm.
 */
void zchan_arm(struct zchan *z)
{
	if (z->backend == ZCHAN_BACKEND_MEMFD) {
		if (z->kick_seen || !z->arm_gen) {
			if (++z->arm_gen == 0)
				z->arm_gen = 1;
			z->kick_seen = false;
		}
		store_once(z->own_need_wakeup, z->arm_gen);
	} else {
		store_once(z->own_need_wakeup, 1);
	}
	smp_mb();
}

/* memfd: consume pending kicks so the epoll fd stops being readable. */
void zchan_drain(struct zchan *z)
{
	uint64_t cnt = 0;

	if (z->backend != ZCHAN_BACKEND_MEMFD)
		return;
	if (__sys_read(z->own_efd, &cnt, sizeof(cnt)) != sizeof(cnt))
		cnt = 0;
	note_drained(z, cnt);
}

/* memfd: make our own epoll fd readable (zchan_prep_wait, ready now). */
void zchan_self_kick(struct zchan *z)
{
	uint64_t one = 1;

	if (__sys_write(z->own_efd, &one, sizeof(one)) == sizeof(one))
		z->self_kicks++;
}

/*
 * Has the peer end gone?  The kernel (or a memfd peer closing cleanly) sets
 * the peer's closed word; a memfd peer whose users all died is seen through
 * their pidfds (users.c) or as a hang-up of the liveness socket, which
 * costs syscalls: only when @slow.
 */
int zchan_peer_gone(struct zchan *z, bool slow)
{
	if (z->peer_dead)
		return 1;
	if (load_acquire(z->peer_closed)) {
		z->peer_dead = true;
		return 1;
	}
	if (!slow || z->backend != ZCHAN_BACKEND_MEMFD || z->sock < 0)
		return 0;
	if (z->sleep_watches_peer) {
		(void)zchan_users_watch(z);
		return 0;
	}
	if (zchan_users_peer_gone(z, z->sock)) {
		z->peer_dead = true;
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Waiting until ready                                                 */

/*
 * How long to spin before sleeping next time.  A waiting end that the peer
 * serves within ZCHAN_SPIN_MAX_NS (a stream whose every message takes a
 * while to fill or to read) spins twice as long as its last wait took
 * instead of sleeping each time (a sleep and a wakeup are three or four
 * system calls); an end that waited longer, for a peer that went idle,
 * goes back to the short spin.
 */
static void spin_adapt(struct zchan *z, uint64_t waited_ns)
{
	if (waited_ns >= ZCHAN_SPIN_MAX_NS)
		z->spin_adapt_ns = 0;
	else if (waited_ns > z->spin_ns / 2)
		z->spin_adapt_ns = (uint32_t)(2 * waited_ns < ZCHAN_SPIN_MAX_NS ?
					      2 * waited_ns : ZCHAN_SPIN_MAX_NS);
}

/*
 * Arm, re-check, sleep; until ready, @deadline (0: none) or an error.
 *
 * memfd: the epoll fd a sleep waits on holds the liveness socket and the
 * pidfds of the peer's processes, so a peer that goes wakes the sleep: the
 * re-check before it only brings the watch list up to date
 * (sleep_watches_peer), and asks the processes (a poll()) only after a
 * wake-up that was not a kick.  With the eventfd drained in the ring
 * (ring_drains()), a sleep and its wake-up cost one io_uring_enter() and
 * the peer's kick.
 */
static int zchan_sleep_until(struct zchan *z, zchan_ready_fn *ready,
			     uint32_t need, uint64_t deadline)
{
	bool ask_peer = false;
	int mask, ret;

	for (;;) {
		bool in_ring = ring_drains(z, deadline ? 0 : -1);
		int64_t left = -1;

		if (!in_ring)
			zchan_drain(z);
		zchan_arm(z);
		z->sleep_watches_peer = in_ring && !ask_peer;
		mask = ready(z, need, true);
		z->sleep_watches_peer = false;
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
		ask_peer = !z->kick_seen;
	}
}

/*
 * Wait until @ready (the data path's readiness test, zchan_ready_mask()) is
 * non-zero: returns the mask, -ETIME when @timeout_ns (>= 0) expires, or a
 * negative error.  Taking the test as an argument keeps this file below
 * ring.c: the data path calls the waits, never the other way round.
 */
int zchan_wait_until(struct zchan *z, zchan_ready_fn *ready, uint32_t need,
		     int64_t timeout_ns)
{
	uint64_t deadline = 0;
	unsigned int i;
	int mask;

	mask = ready(z, need, false);
	if (mask)
		return mask;
	if (timeout_ns == 0) {
		mask = ready(z, need, true);
		return mask ? mask : -ETIME;
	}
	if (timeout_ns > 0)
		deadline = now_ns() + (uint64_t)timeout_ns;

	if (z->spin_ns) {
		uint64_t start = now_ns(), now = start, spin_end;

		spin_end = start + (z->spin_adapt_ns > z->spin_ns ?
				    z->spin_adapt_ns : z->spin_ns);
		if (deadline && spin_end > deadline)
			spin_end = deadline;
		do {
			for (i = 0; i < ZCHAN_SPIN_CHUNK; i++) {
				cpu_relax();
				mask = ready(z, need, false);
				if (mask) {
					/* the last chunk's time will do */
					z->st.spins += i + 1;
					spin_adapt(z, now - start);
					return mask;
				}
			}
			z->st.spins += ZCHAN_SPIN_CHUNK;
			now = now_ns();
		} while (now < spin_end);
		if (!(z->flags & ZCHAN_BUSY_POLL)) {
			mask = zchan_sleep_until(z, ready, need, deadline);
			if (mask > 0)
				spin_adapt(z, now_ns() - start);
			return mask;
		}
	}

	if (z->flags & ZCHAN_BUSY_POLL) {
		uint64_t slow_at = now_ns() + ZCHAN_BUSY_SLOW_NS;

		for (i = 1;; i++) {
			bool slow = false;

			cpu_relax();
			z->st.spins++;
			if (!(i % ZCHAN_BUSY_CLOCK_EVERY)) {
				uint64_t now = now_ns();

				if (deadline && now >= deadline) {
					mask = ready(z, need, true);
					return mask ? mask : -ETIME;
				}
				if (now >= slow_at) {
					slow = true;
					slow_at = now + ZCHAN_BUSY_SLOW_NS;
				}
			}
			mask = ready(z, need, slow);
			if (mask)
				return mask;
		}
	}

	return zchan_sleep_until(z, ready, need, deadline);
}
