// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * One run of one point: fork a producer and a consumer, pin them, move the
 * messages, and watch them from the parent.  The parent never waits on a
 * child without a deadline: a run that makes no progress for stall_limit
 * seconds, or exceeds time_limit, is killed and reported as such.
 *
 * Syscalls are counted by the kernel where it can (a perf counter on the
 * raw_syscalls:sys_enter tracepoint, per child, over exactly the timed
 * loop); otherwise by the method code itself (SYSCOUNT) plus the library's
 * own count for zchan methods.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "bench.h"

enum { PRODUCER, CONSUMER };

struct side_result {
	uint64_t t_start, t_end;
	uint64_t cpu_ns;
	uint64_t faults;		/* minor + major page faults */
	int64_t syscalls;		/* -1: unknown */
	int syscalls_from_perf;
	uint64_t csum;			/* producer->consumer direction */
	uint64_t csum_back;		/* consumer->producer (pingpong) */
	_Atomic uint64_t done;		/* messages, read by the watchdog */
	_Atomic uint64_t bytes;		/* partial transfers, likewise */
	int failed;
	char why[200];
};

struct run_shared {
	_Atomic uint32_t barrier;
	struct side_result side[2];
	struct hist rtt;
};

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void chan_error(struct chan *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

const char *mode_name(enum bench_mode mode)
{
	static const char *const names[] = {
		[MODE_STREAM] = "stream",
		[MODE_HANDOFF] = "handoff",
		[MODE_PINGPONG] = "pingpong",
		[MODE_PINGPONG_BUSY] = "pingpong-busy",
	};

	return mode < MODE_COUNT ? names[mode] : "?";
}

long default_messages(const struct bench_cfg *cfg, enum bench_mode mode,
		      size_t size)
{
	/*
	 * The same count for every method at a given size and mode, so each
	 * moves exactly the same bytes: a byte budget per run, bounded so
	 * small messages do not take forever and huge ones still pipeline.
	 * (A handoff moves no bytes where it is zero-copy: main.c sizes its
	 * runs by time from here, handoff_messages().)
	 */
	double budget = (mode_is_pingpong(mode) ? 32.0 : 128.0) * 1048576.0;
	long max = mode_is_pingpong(mode) ? 10000 : 20000;
	/*
	 * A rate of four messages would be mostly the latency of the first
	 * one: a stream or handoff run moves at least twice the messages a
	 * pool keeps in flight.
	 */
	long min = mode_is_pingpong(mode) ? 4 : 2 * BENCH_INFLIGHT;
	long n;

	if (cfg->messages > 0)
		return cfg->messages;
	n = (long)(budget * cfg->scale / (double)size);
	max = (long)((double)max * cfg->scale);
	if (n > max)
		n = max;
	if (n < min)
		n = min;
	return n;
}

/*
 * The messages a handoff run of @n messages that took @seconds needs to
 * last BENCH_HANDOFF_MIN_SECONDS x --scale: @n itself when it already
 * does.  (With -n there is no first run to ask: main.c's size_point().)
 */
long handoff_messages(const struct bench_cfg *cfg, long n, double seconds)
{
	double want = BENCH_HANDOFF_MIN_SECONDS * cfg->scale;
	double more;

	if (seconds >= want || seconds <= 0)
		return n;
	more = ceil((double)n * want / seconds);
	return more > (double)BENCH_HANDOFF_MAX_MESSAGES ?
	       BENCH_HANDOFF_MAX_MESSAGES : (long)more;
}

unsigned int bench_inflight(size_t size)
{
	size_t n = BENCH_INFLIGHT_BYTES / (size ? size : 1);

	return n < 2 ? 2 : n > BENCH_INFLIGHT ? BENCH_INFLIGHT : (unsigned int)n;
}

/*
 * Untimed messages first: a tenth of the run, and enough to cycle every
 * method's buffers once - 8 MiB (pipe, vmsplice ring, zchan's 4 MiB pool)
 * and bench_inflight() messages (the pools of large ones) - so first-touch
 * page faults are not timed; at most 1000 messages (scaled by --scale, like
 * the run itself), except that from 4 KiB the cycle is never cut short
 * (2049 messages at most): a quarter of it left three quarters of zchan's
 * pool to fault in the timed loop of a 4 KiB stream.  Below 4 KiB zchan
 * keeps reusing the front of its pool (ring.c, prod_rewind()).
 */
static long warmup_messages(const struct bench_cfg *cfg, long n, size_t size)
{
	long w = n / 10, cycle = (long)((8UL << 20) / size) + 1;
	long max = (long)(1000 * cfg->scale);

	if (cycle < (long)bench_inflight(size) + 1)
		cycle = (long)bench_inflight(size) + 1;
	if (size >= 4096 && max < cycle)
		max = cycle;

	if (cfg->warmup >= 0)
		return cfg->warmup;
	if (w < cycle)
		w = cycle;
	if (w > max)
		w = max;
	return w < 2 ? 2 : w;
}

static int futex(_Atomic uint32_t *uaddr, int op, uint32_t val)
{
	return (int)syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

/*
 * Both sides start the clock together.  The first to arrive spins (on
 * CPUs of their own) before it sleeps, and the last one enters the kernel
 * only to wake a sleeper: the clock starts at the earlier start, so a
 * futex wake-up (several microseconds) would otherwise be timed, as much
 * as a whole run of a few large handoffs.
 */
#define BARRIER_SLEEPER	0x100U
#define BARRIER_SPIN_NS	20000000ULL

static void barrier_wait(_Atomic uint32_t *b, bool spin)
{
	uint32_t v = atomic_fetch_add(b, 1) + 1;
	uint64_t end = spin ? now_ns() + BARRIER_SPIN_NS : 0;
	unsigned int i = 0;

	if ((v & 0xff) >= 2) {
		if (v & BARRIER_SLEEPER)
			futex(b, FUTEX_WAKE, INT_MAX);
		return;
	}
	while (spin && (atomic_load(b) & 0xff) < 2)
		if (!(++i % 1024) && now_ns() >= end)
			break;
		else
			bench_cpu_relax();
	if (atomic_compare_exchange_strong(b, &v, v | BARRIER_SLEEPER))
		v |= BARRIER_SLEEPER;
	while (((v = atomic_load(b)) & 0xff) < 2)
		futex(b, FUTEX_WAIT, v);
}

/* ---- syscall counting ---------------------------------------------- */

static long sys_enter_id = -2;	/* -2: not looked up, -1: unavailable */

static long read_tracepoint_id(void)
{
	static const char *const paths[] = {
		"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
		"/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
	};
	char buf[32];
	unsigned int i;

	for (i = 0; i < 2; i++) {
		FILE *f = fopen(paths[i], "r");

		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f)) {
			fclose(f);
			return strtol(buf, NULL, 10);
		}
		fclose(f);
	}
	return -1;
}

/*
 * Under TCG, no perf counter: enabling and disabling the tracepoint for
 * every run live-patches the guest kernel's text, and multi-threaded TCG
 * can leave a vCPU looping on the int3 of a half-done patch (seen as soft
 * lockups in syscall_trace_enter).  The methods count their own syscalls.
 */
void syscall_counting_init(bool emulated)
{
	if (sys_enter_id != -2)
		return;
	if (emulated) {
		sys_enter_id = -1;
		return;
	}
	sys_enter_id = read_tracepoint_id();
	if (sys_enter_id < 0) {
		/* a minimal system (the test guest) may not have tracefs up */
		mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL);
		sys_enter_id = read_tracepoint_id();
	}
}

static int syscall_counter_open(void)
{
	struct perf_event_attr attr;

	if (sys_enter_id < 0)
		return -1;
	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.size = sizeof(attr);
	attr.config = (uint64_t)sys_enter_id;
	attr.sample_period = 0;
	return (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1,
			    PERF_FLAG_FD_CLOEXEC);
}

static int64_t syscall_counter_read(int fd)
{
	uint64_t v;

	if (fd < 0 || read(fd, &v, sizeof(v)) != sizeof(v))
		return -1;
	return (int64_t)v;
}

/* ---- the two sides ------------------------------------------------- */

struct side {
	const struct bench_cfg *cfg;
	const struct method *m;
	enum bench_mode mode;
	size_t size;
	long n, warm;
	struct chan *fwd, *back;
	struct run_shared *sh;
	struct side_result *me;
	pid_t parent;		/* the watchdog */
	int counter_fd;
	int64_t sys0;
	uint64_t cpu0, faults0;
};

static uint64_t cpu_ns_self(uint64_t *faults)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*faults = (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
	return (uint64_t)ru.ru_utime.tv_sec * 1000000000ULL +
	       (uint64_t)ru.ru_utime.tv_usec * 1000ULL +
	       (uint64_t)ru.ru_stime.tv_sec * 1000000000ULL +
	       (uint64_t)ru.ru_stime.tv_usec * 1000ULL;
}

static void timing_start(struct side *s)
{
	barrier_wait(&s->sh->barrier, !s->cfg->same_core);
	s->cpu0 = cpu_ns_self(&s->faults0);
	s->sys0 = syscall_counter_read(s->counter_fd);
	s->fwd->nsys = 0;
	if (s->back)
		s->back->nsys = 0;
	s->me->t_start = now_ns();
}

static int64_t lib_syscalls(const struct side *s)
{
	int64_t a = 0, b = 0;

	if (!s->m->lib_syscalls)
		return 0;
	a = s->m->lib_syscalls(s->fwd);
	if (s->back)
		b = s->m->lib_syscalls(s->back);
	return a < 0 || b < 0 ? -1 : a + b;
}

static void timing_end(struct side *s)
{
	int64_t sys1;

	s->me->t_end = now_ns();
	sys1 = syscall_counter_read(s->counter_fd);
	s->me->cpu_ns = cpu_ns_self(&s->me->faults) - s->cpu0;
	s->me->faults -= s->faults0;
	if (s->sys0 >= 0 && sys1 >= 0) {
		/* the closing read() itself entered the kernel once */
		s->me->syscalls = sys1 - s->sys0 - 1;
		s->me->syscalls_from_perf = 1;
	} else {
		int64_t lib = lib_syscalls(s);

		s->me->syscalls = lib < 0 ? -1 :
			(int64_t)(s->fwd->nsys + (s->back ? s->back->nsys : 0)) + lib;
	}
}

static int fail(struct side *s, struct chan *c, const char *what, uint64_t seq)
{
	snprintf(s->me->why, sizeof(s->me->why), "%s %s at message %llu: %s",
		 s->me == &s->sh->side[PRODUCER] ? "producer" : "consumer",
		 what, (unsigned long long)seq, c->err[0] ? c->err : "failed");
	s->me->failed = 1;
	return 1;
}

static bool corrupt_here(const struct side *s, uint64_t seq)
{
	return s->cfg->corrupt && seq == (uint64_t)(s->warm + s->n / 2);
}

static int producer(struct side *s)
{
	uint64_t total = 0, back = 0, seq, end = (uint64_t)(s->warm + s->n);
	bool stream = s->mode == MODE_STREAM;
	bool pp = mode_is_pingpong(s->mode);

	for (seq = 0; seq < end; seq++) {
		uint64_t t = 0;
		void *buf;

		if (seq == (uint64_t)s->warm)
			timing_start(s);
		if (pp)
			t = now_ns();
		buf = s->m->loan(s->fwd);
		if (!buf)
			return fail(s, s->fwd, "loan", seq);
		if (stream) {
			total = csum_mix(total, msg_fill(buf, s->size, seq));
			if (corrupt_here(s, seq))
				((unsigned char *)buf)[s->size / 2] ^= 0x40;
		} else {
			msg_stamp(buf, seq);
			total = csum_mix(total, seq);
			if (corrupt_here(s, seq))
				((unsigned char *)buf)[0] ^= 0x40;
		}
		/* the consumer must have it all before each barrier */
		s->fwd->more = stream && seq + 1 < end &&
			       seq + 1 != (uint64_t)s->warm;
		if (s->m->send(s->fwd, buf))
			return fail(s, s->fwd, "send", seq);
		if (pp) {
			const void *p = s->m->recv(s->back);

			if (!p)
				return fail(s, s->back, "receive reply", seq);
			back = csum_mix(back, msg_stamp_read(p));
			s->m->release(s->back, p);
			if (seq >= (uint64_t)s->warm)
				hist_record(&s->sh->rtt, now_ns() - t);
		}
		atomic_store_explicit(&s->me->done, seq + 1, memory_order_relaxed);
	}
	/* the last messages may still live in our memory (cma) */
	if (s->m->flush && s->m->flush(s->fwd))
		return fail(s, s->fwd, "flush", end);
	timing_end(s);
	s->me->csum = total;
	s->me->csum_back = back;
	return 0;
}

static int consumer(struct side *s)
{
	uint64_t total = 0, back = 0, seq, end = (uint64_t)(s->warm + s->n);
	bool stream = s->mode == MODE_STREAM;
	bool pp = mode_is_pingpong(s->mode);

	for (seq = 0; seq < end; seq++) {
		const void *p;
		uint64_t got;

		if (seq == (uint64_t)s->warm)
			timing_start(s);
		if (s->cfg->debug_stall && seq == (uint64_t)(s->warm + s->n / 2))
			for (;;)
				pause();
		p = s->m->recv(s->fwd);
		if (!p)
			return fail(s, s->fwd, "receive", seq);
		if (stream) {
			total = csum_mix(total, msg_sum(p, s->size));
			got = seq;
		} else {
			/* handoff: the reader touches one line, the stamp */
			got = msg_stamp_read(p);
			total = csum_mix(total, got);
		}
		s->m->release(s->fwd, p);
		if (pp) {
			void *buf = s->m->loan(s->back);

			if (!buf)
				return fail(s, s->back, "loan reply", seq);
			msg_stamp(buf, got);
			back = csum_mix(back, got);
			if (s->m->send(s->back, buf))
				return fail(s, s->back, "send reply", seq);
		}
		atomic_store_explicit(&s->me->done, seq + 1, memory_order_relaxed);
	}
	/* pingpong: the last reply may still live in our memory (cma) */
	if (pp && s->m->flush && s->m->flush(s->back))
		return fail(s, s->back, "flush reply", end);
	timing_end(s);
	s->me->csum = total;
	s->me->csum_back = back;
	return 0;
}

static int pin_to(int cpu, char *why, size_t len)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		snprintf(why, len, "cannot pin to CPU %d: %s", cpu,
			 strerror(errno));
		return -1;
	}
	return 0;
}

static void destroy_chan(struct chan *c)
{
	if (c->m)
		c->m->destroy(c);
}

static void child_main(struct side *s, int role)
{
	struct side_result *me = &s->sh->side[role];
	int cpu = s->cfg->same_core ? s->cfg->cpu[0] : s->cfg->cpu[role];
	int rc;

	s->me = me;
	me->syscalls = -1;
	/* the parent's handlers stop its daemons: not a child's business */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	/* without the watchdog, nobody would ever stop this child */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != s->parent)
		_exit(1);
	if (pin_to(cpu, me->why, sizeof(me->why))) {
		me->failed = 1;
		_exit(1);
	}
	if (s->cfg->rt) {
		struct sched_param sp = { .sched_priority = 1 };

		if (sched_setscheduler(0, SCHED_FIFO, &sp)) {
			snprintf(me->why, sizeof(me->why), "SCHED_FIFO: %s",
				 strerror(errno));
			me->failed = 1;
			_exit(1);
		}
	}
	if (s->m->open(s->fwd, role == PRODUCER) ||
	    (s->back && s->m->open(s->back, role == CONSUMER))) {
		struct chan *c = s->fwd->err[0] ? s->fwd : s->back;

		snprintf(me->why, sizeof(me->why), "%s: open: %s",
			 role == PRODUCER ? "producer" : "consumer", c->err);
		me->failed = 1;
		_exit(1);
	}
	s->fwd->progress = &me->bytes;
	if (s->back)
		s->back->progress = &me->bytes;
	s->counter_fd = syscall_counter_open();
	rc = role == PRODUCER ? producer(s) : consumer(s);
	if (s->m->clean_exit) {
		/* let the method's library deregister from its daemon */
		destroy_chan(s->fwd);
		if (s->back)
			destroy_chan(s->back);
		exit(rc);
	}
	_exit(rc);
}

/* ---- the parent ---------------------------------------------------- */

static int pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void kill_and_reap(pid_t *pid, int *pfd)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (pid[i] <= 0)
			continue;
		kill(pid[i], SIGKILL);
		waitpid(pid[i], NULL, 0);
		pid[i] = 0;
		if (pfd[i] >= 0)
			close(pfd[i]);
		pfd[i] = -1;
	}
}

static void set_result(struct run_result *res, enum run_status st,
		       const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_result(struct run_result *res, enum run_status st,
		       const char *fmt, ...)
{
	va_list ap;

	res->status = st;
	va_start(ap, fmt);
	vsnprintf(res->why, sizeof(res->why), fmt, ap);
	va_end(ap);
}

/*
 * Wait for both children.  Returns 0 when both exited 0, else fills res.
 */
static int watch(const struct bench_cfg *cfg, struct run_shared *sh, pid_t *pid,
		 uint64_t expect, struct run_result *res)
{
	int pfd[2] = { pidfd_open(pid[0]), pidfd_open(pid[1]) };
	uint64_t start = now_ns(), last_change = start, last_done = 0;
	uint64_t limit = (uint64_t)(cfg->time_limit * 1e9);
	uint64_t stall = (uint64_t)(cfg->stall_limit * 1e9);
	int live = 2, i, failed = 0;

	while (live) {
		struct pollfd p[2];
		int np = 0, status;
		uint64_t now, done;

		for (i = 0; i < 2; i++)
			if (pid[i] > 0 && pfd[i] >= 0)
				p[np++] = (struct pollfd){ .fd = pfd[i], .events = POLLIN };
		if (np < live) {
			/* no pidfd (very old kernel): plain polling */
			usleep(20000);
		} else {
			poll(p, (nfds_t)np, failed ? 200 : 100);
		}
		for (i = 0; i < 2; i++) {
			if (pid[i] <= 0 || waitpid(pid[i], &status, WNOHANG) != pid[i])
				continue;
			pid[i] = 0;
			if (pfd[i] >= 0)
				close(pfd[i]);
			pfd[i] = -1;
			live--;
			if (!WIFEXITED(status) || WEXITSTATUS(status)) {
				if (!failed && !sh->side[i].failed)
					snprintf(sh->side[i].why, sizeof(sh->side[i].why),
						 "%s died (%s %d)",
						 i == PRODUCER ? "producer" : "consumer",
						 WIFSIGNALED(status) ? "signal" : "exit",
						 WIFSIGNALED(status) ? WTERMSIG(status) :
						 WEXITSTATUS(status));
				failed = 1;
				sh->side[i].failed = 1;
			}
		}
		if (!live)
			break;
		now = now_ns();
		if (failed) {
			/* give the survivor a moment to see EOF, then stop it */
			if (now - last_change > 300000000ULL) {
				kill_and_reap(pid, pfd);
				live = 0;
			}
			continue;
		}
		done = atomic_load(&sh->side[0].done) + atomic_load(&sh->side[1].done) +
		       atomic_load(&sh->side[0].bytes) + atomic_load(&sh->side[1].bytes);
		if (done != last_done) {
			last_done = done;
			last_change = now;
		}
		if (now - start > limit) {
			kill_and_reap(pid, pfd);
			set_result(res, RUN_TIMEOUT,
				   "time limit %.0fs exceeded at message %llu/%llu",
				   cfg->time_limit,
				   (unsigned long long)atomic_load(&sh->side[CONSUMER].done),
				   (unsigned long long)expect);
			return -1;
		}
		if (now - last_change > stall) {
			kill_and_reap(pid, pfd);
			set_result(res, RUN_STALL,
				   "stalled: no progress for %.1fs (producer at %llu, consumer at %llu of %llu)",
				   cfg->stall_limit,
				   (unsigned long long)atomic_load(&sh->side[PRODUCER].done),
				   (unsigned long long)atomic_load(&sh->side[CONSUMER].done),
				   (unsigned long long)expect);
			return -1;
		}
	}
	if (failed) {
		i = sh->side[PRODUCER].failed && sh->side[PRODUCER].why[0] ?
			PRODUCER : CONSUMER;
		/* prefer the side that reported a reason over one that saw EOF */
		if (sh->side[PRODUCER].why[0] && sh->side[CONSUMER].why[0] &&
		    strstr(sh->side[i].why, "died"))
			i = !i;
		set_result(res, RUN_ERROR, "%s", sh->side[i].why[0] ?
			   sh->side[i].why : "a child failed");
		return -1;
	}
	return 0;
}

static int create_chan(const struct method *m, struct chan *c, size_t size,
		       bool spin)
{
	memset(c, 0, sizeof(*c));
	c->m = m;
	c->msg_size = size;
	c->spin = spin;
	c->fd[0] = c->fd[1] = -1;
	return m->create(c);
}

void run_point(const struct bench_cfg *cfg, const struct method *m,
	       enum bench_mode mode, size_t size, long messages,
	       struct run_result *res)
{
	bool pp = mode_is_pingpong(m ? mode : 0);
	struct chan fwd, back;
	struct run_shared *sh;
	struct side s;
	pid_t pid[2] = { 0, 0 };
	int role;

	memset(res, 0, sizeof(*res));
	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.m = m;
	s.mode = mode;
	s.size = size;
	s.n = messages > 0 ? messages : default_messages(cfg, mode, size);
	s.warm = warmup_messages(cfg, s.n, size);
	s.counter_fd = -1;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		set_result(res, RUN_ERROR, "mmap: %s", strerror(errno));
		return;
	}
	hist_init(&sh->rtt);
	s.sh = sh;

	if (create_chan(m, &fwd, size, mode == MODE_PINGPONG_BUSY)) {
		set_result(res, RUN_ERROR, "setup: %s", fwd.err);
		goto out_unmap;
	}
	s.fwd = &fwd;
	if (pp) {
		if (create_chan(m, &back, size, mode == MODE_PINGPONG_BUSY)) {
			set_result(res, RUN_ERROR, "setup: %s", back.err);
			goto out_fwd;
		}
		s.back = &back;
	}

	fflush(NULL);
	s.parent = getpid();
	for (role = CONSUMER; role >= PRODUCER; role--) {
		pid[role] = fork();
		if (pid[role] < 0) {
			set_result(res, RUN_ERROR, "fork: %s", strerror(errno));
			if (role == PRODUCER)
				kill_and_reap(pid, (int[]){ -1, -1 });
			goto out_back;
		}
		if (!pid[role])
			child_main(&s, role);
	}
	/* the children hold what they need; drop the parent's references */
	destroy_chan(&fwd);
	if (pp)
		destroy_chan(&back);
	s.fwd = s.back = NULL;

	if (watch(cfg, sh, pid, (uint64_t)(s.warm + s.n), res))
		goto out_unmap;

	{
		struct side_result *P = &sh->side[PRODUCER], *C = &sh->side[CONSUMER];
		uint64_t t0 = P->t_start < C->t_start ? P->t_start : C->t_start;
		uint64_t t1 = pp ? P->t_end : C->t_end;
		uint64_t msgs = (uint64_t)s.n * (pp ? 2 : 1);
		int k;

		if (P->csum != C->csum || P->csum_back != C->csum_back) {
			set_result(res, RUN_CORRUPT,
				   "CHECKSUM MISMATCH: producer sent %016llx, consumer received %016llx%s",
				   (unsigned long long)P->csum,
				   (unsigned long long)C->csum,
				   P->csum_back != C->csum_back ? " (and the replies differ)" : "");
			goto out_unmap;
		}
		res->status = RUN_OK;
		res->runs = 1;
		res->messages = msgs;
		res->round_trips = pp ? (uint64_t)s.n : 0;
		res->seconds = (double)(t1 - t0) / 1e9;
		res->seconds_min = res->seconds_max = res->seconds;
		res->bytes_per_sec = (double)msgs * (double)size / res->seconds;
		res->msgs_per_sec = (double)msgs / res->seconds;
		res->cpu_ns_per_msg[0] = (double)P->cpu_ns / (double)msgs;
		res->cpu_ns_per_msg[1] = (double)C->cpu_ns / (double)msgs;
		res->cpu_ns_per_msg[2] = res->cpu_ns_per_msg[0] + res->cpu_ns_per_msg[1];
		res->faults_per_msg = (double)(P->faults + C->faults) / (double)msgs;
		for (k = 0; k < 2; k++)
			res->syscalls_per_msg[k] = sh->side[k].syscalls < 0 ? -1 :
				(double)sh->side[k].syscalls / (double)msgs;
		res->syscalls_per_msg[2] =
			res->syscalls_per_msg[0] < 0 || res->syscalls_per_msg[1] < 0 ? -1 :
			res->syscalls_per_msg[0] + res->syscalls_per_msg[1];
		snprintf(res->syscalls_source, sizeof(res->syscalls_source), "%s",
			 res->syscalls_per_msg[2] < 0 ? "none" :
			 P->syscalls_from_perf && C->syscalls_from_perf ? "perf" :
			 "counted");
		if (pp)
			hist_summarize(&sh->rtt, &res->rtt);
	}
	goto out_unmap;

out_back:
	if (pp)
		destroy_chan(&back);
out_fwd:
	destroy_chan(&fwd);
out_unmap:
	munmap(sh, sizeof(*sh));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of one field over the runs; u64 fields are read as such. */
static double median_at(struct run_result *r, unsigned int n, size_t off,
			bool u64)
{
	double v[64];
	unsigned int i;

	if (n > 64)
		n = 64;
	for (i = 0; i < n; i++) {
		const char *f = (const char *)&r[i] + off;

		v[i] = u64 ? (double)*(const uint64_t *)f : *(const double *)f;
	}
	qsort(v, n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Each metric is the median over the repeats, independently; the first
 * failed run decides the point (a method that corrupts data once is
 * broken, however fast its other runs were).
 */
void median_of(struct run_result *runs, unsigned int n, struct run_result *out)
{
	unsigned int i;
	int k;

	for (i = 0; i < n; i++) {
		if (runs[i].status != RUN_OK) {
			*out = runs[i];
			return;
		}
	}
	*out = runs[0];
	out->runs = n;
#define MED(f) out->f = median_at(runs, n, offsetof(struct run_result, f), false)
#define MEDU(f) out->f = (uint64_t)median_at(runs, n, offsetof(struct run_result, f), true)
	MED(seconds);
	MED(bytes_per_sec);
	MED(msgs_per_sec);
	MED(faults_per_msg);
	for (k = 0; k < 3; k++) {
		MED(cpu_ns_per_msg[k]);
		MED(syscalls_per_msg[k]);
	}
	MEDU(rtt.p50);
	MEDU(rtt.p90);
	MEDU(rtt.p99);
	MEDU(rtt.p999);
	MEDU(rtt.min);
	MED(rtt.mean);
#undef MED
#undef MEDU
	out->rtt.max = 0;
	out->seconds_min = runs[0].seconds;
	out->seconds_max = runs[0].seconds;
	for (i = 0; i < n; i++) {
		/* the worst case is the worst seen, not a median */
		if (runs[i].rtt.max > out->rtt.max)
			out->rtt.max = runs[i].rtt.max;
		if (runs[i].seconds < out->seconds_min)
			out->seconds_min = runs[i].seconds;
		if (runs[i].seconds > out->seconds_max)
			out->seconds_max = runs[i].seconds;
	}
}
