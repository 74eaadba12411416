// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Notifications and waits, the layer below the data path (ring.c calls
 * in here; nothing here calls ring.c: readiness comes as an argument).
 *
 * Notifications: a kick wakes a sleeping peer, need_wakeup says whether it
 * sleeps (arm), the peer's closed word or liveness socket says whether it
 * is gone.  Waiting: spin briefly on the shared words, then sleep in the
 * kernel.  How a backend kicks, arms and sleeps is its own (struct
 * zchan_ops: kernel.c, memfd.c); the order is this file's: arm, re-check
 * the condition, sleep, so a kick can't be lost.
 */
#include <time.h>

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

/* ------------------------------------------------------------------ */
/* Notifications                                                       */

void __zchan_kick(struct zchan *z)
{
	z->st.kicks++;
	__zchan_count_syscalls(z, 1);
	z->ops->kick(z);
}

static int sleep_once(struct zchan *z, int64_t timeout_ns)
{
	z->st.waits++;
	return __zchan_keep_errno(z->ops->sleep(z, timeout_ns));
}

/*
 * Called after our own store (tail or head) and before reading the peer's
 * need_wakeup: is the peer asleep, or about to sleep, waiting for us?
 */
bool __zchan_peer_sleeps(struct zchan *z)
{
	uint32_t nw;

	/* where we run, for the peer's can_spin(): fresh on every publish */
	if (z->ops->running)
		z->ops->running(z);
	smp_mb();	/* our tail/head store before the peer's need_wakeup */
	nw = load_once(z->peer_need_wakeup);
	if (likely(!nw))
		return false;
	return z->ops->peer_asleep(z, nw);
}

/* Kick the peer that __zchan_peer_sleeps() found asleep. */
void __zchan_wake_peer(struct zchan *z)
{
	__zchan_kick(z);
}

void __zchan_notify_peer(struct zchan *z)
{
	if (__zchan_peer_sleeps(z))
		__zchan_wake_peer(z);
}

/*
 * Announce that this end is about to sleep (or returns -EAGAIN), then the
 * caller re-checks its condition: either it sees the peer's last store or
 * the peer sees need_wakeup and kicks.
 */
void __zchan_arm(struct zchan *z)
{
	z->ops->arm(z);
}

/*
 * An fd that only turns readable on a kick (memfd's epoll fd) misses what
 * the peer did while this end was not armed (before zchan_prep_wait(),
 * before it attached): that kicked nobody.  So an end that just armed and
 * finds @ready already true kicks itself.  The kernel's fd polls the ring
 * itself: nothing to do.
 */
void __zchan_kick_self_if_ready(struct zchan *z, __zchan_ready_fn *ready,
				uint32_t need, bool slow)
{
	if (z->ops->self_kick && ready(z, need, slow))
		z->ops->self_kick(z);
}

/* zchan_prep_wait(): the events to poll zchan_fd() for, armed. */
unsigned int __zchan_poll_events(struct zchan *z, __zchan_ready_fn *ready,
				 uint32_t need)
{
	if (!z->ops->self_kick)
		return z->role == ZCHAN_CONSUMER ? POLLIN : POLLOUT;
	z->ops->arm(z);
	__zchan_kick_self_if_ready(z, ready, need, true);
	return POLLIN;
}

/*
 * Has the peer end gone?  The kernel (or a memfd peer closing cleanly) sets
 * the peer's closed word; a peer whose processes all died without closing
 * is the backend's to find (memfd: holders.c), which costs syscalls: only
 * when @slow.
 */
int __zchan_peer_gone(struct zchan *z, bool slow)
{
	if (z->peer_dead)
		return 1;
	if (load_acquire(z->peer_closed)) {
		z->peer_dead = true;
		return 1;
	}
	if (!slow || !z->ops->peer_gone(z))
		return 0;
	z->peer_dead = true;
	return 1;
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
 * A sleep that itself wakes when the peer goes (memfd: its epoll fd holds
 * the peer's pidfds and socket) lets the re-check before it only bring the
 * watch list up to date (sleep_watches_peer) instead of asking the peer's
 * processes (a poll()).
 */
static int sleep_until(struct zchan *z, __zchan_ready_fn *ready,
		       uint32_t need, uint64_t deadline)
{
	bool again = false;
	int mask, ret;

	for (;;) {
		int64_t left = -1;

		z->sleep_watches_peer = z->ops->arm_sleep(z, deadline ? 0 : -1,
							   again);
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
		again = true;
	}
}

/* ... and then this end runs again, whatever the outcome. */
static int sleep_then_run(struct zchan *z, __zchan_ready_fn *ready,
			     uint32_t need, uint64_t deadline)
{
	int ret = sleep_until(z, ready, need, deadline);

	if (z->ops->running)
		z->ops->running(z);
	return ret;
}

/* Could spinning succeed: is the peer running, on another CPU? */
static bool can_spin(struct zchan *z)
{
	return !z->ops->can_spin || z->ops->can_spin(z);
}

/*
 * Wait until @ready (the data path's readiness test, __zchan_ready_mask()) is
 * non-zero: returns the mask, -ETIME when @timeout_ns (>= 0) expires, or a
 * negative error.  Taking the test as an argument keeps this file below
 * ring.c: the data path calls the waits, never the other way round.
 */
int __zchan_wait_until(struct zchan *z, __zchan_ready_fn *ready, uint32_t need,
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
		uint64_t start = now_ns(), now = start, spin_end, budget;

		budget = z->spin_adapt_ns > z->spin_ns ? z->spin_adapt_ns :
							 z->spin_ns;
		spin_end = start + (z->sleep_spins && budget > ZCHAN_SPIN_FIRST_NS ?
				    ZCHAN_SPIN_FIRST_NS : budget);
		if (deadline && spin_end > deadline)
			spin_end = deadline;
		if (z->ops->running)
			z->ops->running(z);	/* and where: can_spin() */
		while (now < spin_end && can_spin(z)) {
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
		}
		if (!(z->flags & ZCHAN_BUSY_POLL)) {
			/* a sleep that spins gets the rest of the spin */
			if (z->sleep_spins && now - start < budget)
				z->sleep_spin_ns = (uint32_t)(budget - (now - start));
			mask = sleep_then_run(z, ready, need, deadline);
			z->sleep_spin_ns = 0;
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

	return sleep_then_run(z, ready, need, deadline);
}
