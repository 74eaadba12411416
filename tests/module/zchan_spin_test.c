// SPDX-License-Identifier: GPL-2.0
/*
 * zchan.ko selftests: waits that know whether the peer runs.
 * ZCHAN_IOC_WAIT with ZCHAN_WAIT_SPIN (ZCHAN_FEAT_WAIT_SPIN) - its
 * arguments, and that a wait which spins before it sleeps still ends with
 * the right mask and loses no wakeup, whether the peer runs, blocks, or
 * runs and never publishes - and each end's run-state word
 * (ZCHAN_FEAT_RUN_STATE).  Nothing here asserts how long anything takes.
 * Runs as root in the test guest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>

#include <linux/zchan.h>

#include "kselftest_harness.h"
#include "../common/zchan_test_utils.h"

/* A channel: the producer's file and mappings, and a consumer file. */
struct spin_chan {
	int p, c;
	struct zchan_layout l;
	void *prod;		/* producer ring, writable */
	const void *cons;	/* consumer ring, the producer's read-only view */
	void *cons_rw;		/* consumer ring, the consumer's view */
	uint32_t tail;
};

static int spin_chan_open(struct spin_chan *s)
{
	memset(s, 0, sizeof(*s));
	s->p = zc_open();
	if (s->p < 0)
		return -1;
	if (_zc_create(s->p, NULL, 16 * sysconf(_SC_PAGESIZE), 64, 0, 0600,
		       &s->l))
		return -1;
	s->c = _zc_peer_fd(s->p, 0);
	if (s->c < 0)
		return -1;
	s->prod = mmap(NULL, s->l.prod_ring_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED, s->p, s->l.prod_ring_off);
	s->cons = mmap(NULL, s->l.cons_ring_size, PROT_READ, MAP_SHARED, s->p,
		       s->l.cons_ring_off);
	s->cons_rw = mmap(NULL, s->l.cons_ring_size, PROT_READ | PROT_WRITE,
			  MAP_SHARED, s->c, s->l.cons_ring_off);
	return s->prod == MAP_FAILED || s->cons == MAP_FAILED ||
	       s->cons_rw == MAP_FAILED ? -1 : 0;
}

static void spin_chan_close(struct spin_chan *s)
{
	munmap(s->prod, s->l.prod_ring_size);
	munmap((void *)s->cons, s->l.cons_ring_size);
	munmap(s->cons_rw, s->l.cons_ring_size);
	close(s->c);
	close(s->p);
}

/* Publish one 8-byte message; kick the consumer if it announced a sleep. */
static int spin_publish(struct spin_chan *s)
{
	struct zchan_desc *d = zc_desc(s->prod, &s->l, s->tail);

	d->off = 0;
	d->len = 8;
	d->flags = 0;
	__atomic_store_n(&ZC_PROD_WORD(s->prod, &s->l, tail), ++s->tail,
			 __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&ZC_CONS_WORD((void *)s->cons, &s->l, need_wakeup),
			    __ATOMIC_RELAXED))
		return _zc_kick(s->p);
	return 0;
}

/* WAIT on @fd with ZCHAN_WAIT_SPIN; timeout_ns < 0: none. */
static int spin_wait(int fd, uint64_t spin_ns, long long timeout_ns,
		     __u32 *revents)
{
	struct zchan_wait w = { .flags = ZCHAN_WAIT_SPIN, .spin_ns = spin_ns };
	int ret;

	if (timeout_ns >= 0) {
		w.flags |= ZCHAN_WAIT_TIMEOUT;
		w.timeout_ns = timeout_ns;
	}
	ret = zc_ioctl(fd, ZCHAN_IOC_WAIT, &w);
	if (!ret && revents)
		*revents = w.revents;
	return ret;
}

TEST(wait_spin_arguments)
{
	struct zchan_wait w = { 0 };
	struct spin_chan s;
	__u32 revents = 0;

	ASSERT_EQ(0, spin_chan_open(&s));
	EXPECT_TRUE(s.l.features & ZCHAN_FEAT_WAIT_SPIN);

	/* spin_ns needs the flag; the flag takes at most the maximum. */
	w.spin_ns = 1;
	zc_err_ioctl(EINVAL, s.c, ZCHAN_IOC_WAIT, &w);
	w.flags = ZCHAN_WAIT_SPIN;
	w.spin_ns = ZCHAN_WAIT_SPIN_MAX_NS + 1;
	zc_err_ioctl(EINVAL, s.c, ZCHAN_IOC_WAIT, &w);
	w.spin_ns = 1000;
	w.resv = 1;
	zc_err_ioctl(EINVAL, s.c, ZCHAN_IOC_WAIT, &w);
	w.resv = 0;
	w.flags = ZCHAN_WAIT_SPIN << 1;
	zc_err_ioctl(EINVAL, s.c, ZCHAN_IOC_WAIT, &w);
	/* The old name of the two words is the same memory. */
	EXPECT_EQ(offsetof(struct zchan_wait, spin_ns),
		  offsetof(struct zchan_wait, reserved));
	EXPECT_EQ(32, sizeof(struct zchan_wait));

	/* Nothing published, the producer is this thread: no spin, a sleep. */
	EXPECT_EQ(-ETIMEDOUT, spin_wait(s.c, ZCHAN_WAIT_SPIN_MAX_NS,
					1000000, NULL));
	/* A message already there: at once. */
	ASSERT_EQ(0, spin_publish(&s));
	ASSERT_EQ(0, spin_wait(s.c, ZCHAN_WAIT_SPIN_MAX_NS, -1, &revents));
	EXPECT_TRUE(revents & POLLIN);
	/* Zero spin with the flag is a plain wait. */
	ASSERT_EQ(0, spin_wait(s.c, 0, -1, &revents));
	EXPECT_TRUE(revents & POLLIN);
	spin_chan_close(&s);
}

/* The producer thread of the tests below. */
struct spin_peer {
	struct spin_chan *s;
	int pipe[2];		/* blocking: read one byte before publishing */
	unsigned int busy_ms;	/* running: stay on the CPU this long first */
	volatile bool stop;	/* running, never publishing: until told */
	bool publish;
	int ret;
};

static void *spin_peer_fn(void *arg)
{
	struct spin_peer *pr = arg;
	struct timespec t0, t;
	char x;

	/* The producer's task is now this thread. */
	pr->ret = _zc_kick(pr->s->p);
	if (pr->ret)
		return NULL;
	if (pr->pipe[0] >= 0 && read(pr->pipe[0], &x, 1) != 1) {
		pr->ret = -EIO;
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (!pr->stop &&
		 (t.tv_sec - t0.tv_sec) * 1000 +
		 (t.tv_nsec - t0.tv_nsec) / 1000000 < pr->busy_ms);
	if (pr->publish)
		pr->ret = spin_publish(pr->s);
	return NULL;
}

static void spin_peer_init(struct spin_peer *pr, struct spin_chan *s)
{
	memset(pr, 0, sizeof(*pr));
	pr->s = s;
	pr->pipe[0] = pr->pipe[1] = -1;
	pr->publish = true;
}

/* The peer runs on a CPU and publishes: the spinning wait gets it. */
TEST(wait_spin_peer_running)
{
	struct spin_peer pr;
	struct spin_chan s;
	__u32 revents = 0;
	pthread_t th;
	int i;

	ASSERT_EQ(0, spin_chan_open(&s));
	for (i = 0; i < 20; i++) {
		spin_peer_init(&pr, &s);
		pr.busy_ms = i % 3;
		ASSERT_EQ(0, pthread_create(&th, NULL, spin_peer_fn, &pr));
		ASSERT_EQ(0, spin_wait(s.c, ZCHAN_WAIT_SPIN_MAX_NS, -1,
				       &revents));
		EXPECT_TRUE(revents & POLLIN);
		ASSERT_EQ(0, pthread_join(th, NULL));
		ASSERT_EQ(0, pr.ret);
		/* Take the message: the channel is empty again. */
		__atomic_store_n(&ZC_CONS_WORD(s.cons_rw, &s.l, read), s.tail,
				 __ATOMIC_RELEASE);
	}
	spin_chan_close(&s);
}

/*
 * The peer blocks (off the CPU) until the waiter has announced its sleep:
 * the wait must sleep, and the peer's publish and kick must end it.
 */
TEST(wait_spin_peer_blocked)
{
	struct zchan_info before, after;
	struct spin_peer pr;
	struct spin_chan s;
	__u32 revents = 0;
	int wake[2], status;
	pthread_t th;
	pid_t pid;

	ASSERT_EQ(0, spin_chan_open(&s));
	ASSERT_EQ(0, pipe(wake));
	spin_peer_init(&pr, &s);
	pr.pipe[0] = wake[0];
	ASSERT_EQ(0, pthread_create(&th, NULL, spin_peer_fn, &pr));

	/* A helper lets the peer go once the consumer's need_wakeup is set. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		while (!__atomic_load_n(&ZC_CONS_WORD((void *)s.cons, &s.l,
						      need_wakeup),
					__ATOMIC_ACQUIRE))
			usleep(1000);
		_exit(write(wake[1], "x", 1) == 1 ? 0 : 1);
	}
	zc_cmd_info(s.c, &before);
	ASSERT_EQ(0, spin_wait(s.c, ZCHAN_WAIT_SPIN_MAX_NS, -1, &revents));
	EXPECT_TRUE(revents & POLLIN);
	zc_cmd_info(s.c, &after);
	/* It slept: the helper saw the announcement, and counted a wait. */
	EXPECT_LT(before.waits, after.waits);
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(0, pr.ret);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	close(wake[0]);
	close(wake[1]);
	spin_chan_close(&s);
}

/* The peer runs and never publishes: the spin ends, then the timeout. */
TEST(wait_spin_bounded)
{
	struct spin_peer pr;
	struct spin_chan s;
	pthread_t th;

	ASSERT_EQ(0, spin_chan_open(&s));
	spin_peer_init(&pr, &s);
	pr.busy_ms = 60 * 1000;
	pr.publish = false;
	ASSERT_EQ(0, pthread_create(&th, NULL, spin_peer_fn, &pr));
	EXPECT_EQ(-ETIMEDOUT, spin_wait(s.c, ZCHAN_WAIT_SPIN_MAX_NS,
					20 * 1000000LL, NULL));
	/* A signal-free, message-free second round ends the same way. */
	EXPECT_EQ(-ETIMEDOUT, spin_wait(s.c, ZCHAN_WAIT_SPIN_MAX_NS,
					1000000, NULL));
	pr.stop = true;
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(0, pr.ret);
	spin_chan_close(&s);
}

/* The peer end goes while the waiter spins: EPOLLHUP, not a hang. */
TEST(wait_spin_peer_gone)
{
	struct spin_peer pr;
	struct spin_chan s;
	__u32 revents = 0;
	pthread_t th;

	ASSERT_EQ(0, spin_chan_open(&s));
	spin_peer_init(&pr, &s);
	pr.busy_ms = 5;
	pr.publish = false;
	ASSERT_EQ(0, pthread_create(&th, NULL, spin_peer_fn, &pr));
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(0, pr.ret);
	/* The producer stops holding its end: the consumer sees it gone. */
	ASSERT_EQ(0, _zc_use(s.p, ZCHAN_USE_STOP));
	ASSERT_EQ(0, spin_wait(s.c, ZCHAN_WAIT_SPIN_MAX_NS, -1, &revents));
	EXPECT_TRUE(revents & POLLHUP);
	spin_chan_close(&s);
}

/* The run-state words: where the layout says, one per end. */
TEST(run_state_layout)
{
	struct zchan_layout w;
	struct spin_chan s;

	ASSERT_EQ(0, spin_chan_open(&s));
	EXPECT_TRUE(s.l.features & ZCHAN_FEAT_RUN_STATE);
	w = s.l;
	zchan_layout_set_words(&w);
	EXPECT_EQ(w.prod_state, s.l.prod_state);
	EXPECT_EQ(w.cons_state, s.l.cons_state);
	EXPECT_LE(s.l.prod_state + 4, s.l.prod_descs);
	EXPECT_LE(s.l.cons_state + 4, s.l.cons_ring_size);
	EXPECT_NE(s.l.prod_state, s.l.prod_alloc);
	EXPECT_NE(s.l.cons_state, s.l.cons_closed);
	EXPECT_NE(s.l.cons_state, s.l.cons_need_wakeup);
	/* Nobody has waited: nothing known yet. */
	EXPECT_EQ(ZCHAN_RUN_UNKNOWN,
		  ZC_CONS_WORD((void *)s.cons, &s.l, state));
	spin_chan_close(&s);
}

static void *run_state_waiter(void *arg)
{
	struct spin_chan *s = arg;
	__u32 revents = 0;

	if (_zc_wait(s->c, -1, &revents) || !(revents & POLLIN))
		return (void *)1;
	return NULL;
}

/*
 * A consumer blocked in WAIT reads SLEEPING; the producer's kick makes it
 * RUNNING; back from the wait it is RUNNING on a CPU of this machine.
 */
TEST(run_state_sleep_and_wake)
{
	struct spin_chan s;
	void *res = (void *)1;
	pthread_t th;
	uint32_t word;
	int i;

	ASSERT_EQ(0, spin_chan_open(&s));
	ASSERT_EQ(0, pthread_create(&th, NULL, run_state_waiter, &s));
	/* It sleeps: nothing is published until the word says so. */
	for (i = 0; i < 60 * 1000; i++) {
		word = __atomic_load_n(&ZC_CONS_WORD((void *)s.cons, &s.l,
						     state), __ATOMIC_ACQUIRE);
		if (ZCHAN_RUN_STATE(word) == ZCHAN_RUN_SLEEPING)
			break;
		usleep(1000);
	}
	ASSERT_EQ(ZCHAN_RUN_SLEEPING, ZCHAN_RUN_STATE(word));
	EXPECT_LE(0, ZCHAN_RUN_CPU(word));
	EXPECT_GT(get_nprocs_conf(), ZCHAN_RUN_CPU(word));
	/* need_wakeup is set: the publish kicks. */
	ASSERT_EQ(0, spin_publish(&s));
	word = __atomic_load_n(&ZC_CONS_WORD((void *)s.cons, &s.l, state),
			       __ATOMIC_ACQUIRE);
	EXPECT_EQ(ZCHAN_RUN_RUNNING, ZCHAN_RUN_STATE(word));
	ASSERT_EQ(0, pthread_join(th, &res));
	EXPECT_EQ(NULL, res);
	word = ZC_CONS_WORD((void *)s.cons, &s.l, state);
	EXPECT_EQ(ZCHAN_RUN_RUNNING, ZCHAN_RUN_STATE(word));
	EXPECT_LE(0, ZCHAN_RUN_CPU(word));
	EXPECT_GT(get_nprocs_conf(), ZCHAN_RUN_CPU(word));
	spin_chan_close(&s);
}

TEST_HARNESS_MAIN
