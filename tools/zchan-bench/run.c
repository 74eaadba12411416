// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * One run of one point: fork a producer and a consumer (or cfg->pairs of
 * them, each pair its own channel, all at once), pin them, move the
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
#include <dirent.h>
#include <linux/futex.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "bench.h"
#include "run.h"

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

unsigned int bench_max_pairs = 1;

const char *placement_name(enum bench_placement place)
{
	static const char *const names[] = {
		[PLACE_IDLE] = "idle",
		[PLACE_SAME_CORE] = "same-core",
		[PLACE_OVERSUB] = "oversub",
		[PLACE_PAIRS] = "pairs",
		[PLACE_FAN] = "fan",
	};

	return place <= PLACE_FAN ? names[place] : "?";
}

const char *mode_name(enum bench_mode mode)
{
	static const char *const names[] = {
		[MODE_STREAM] = "stream",
		[MODE_HANDOFF] = "handoff",
		[MODE_PINGPONG] = "pingpong",
		[MODE_PINGPONG_BUSY] = "pingpong-busy",
		[MODE_FANIN] = "fanin",
		[MODE_FANOUT] = "fanout",
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
	/* pairs at once share the budget: a run moves what one pair would */
	if (cfg->pairs > 1)
		n /= (long)cfg->pairs;
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
long warmup_messages(const struct bench_cfg *cfg, long n, size_t size)
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
#define BARRIER_COUNT	0xffffU
#define BARRIER_SLEEPER	0x10000U
#define BARRIER_SPIN_NS	20000000ULL

/* Wait until @parties processes have arrived at @b (each arrives once). */
void barrier_wait(_Atomic uint32_t *b, unsigned int parties, bool spin)
{
	uint32_t v = atomic_fetch_add(b, 1) + 1;
	uint64_t end = spin ? now_ns() + BARRIER_SPIN_NS : 0;
	unsigned int i = 0;

	if ((v & BARRIER_COUNT) >= parties) {
		if (v & BARRIER_SLEEPER)
			futex(b, FUTEX_WAKE, INT_MAX);
		return;
	}
	while (spin && (atomic_load(b) & BARRIER_COUNT) < parties)
		if (!(++i % 1024) && now_ns() >= end)
			break;
		else
			bench_cpu_relax();
	/* announce a sleeper; a change by another arrival is seen below */
	v = atomic_fetch_or(b, BARRIER_SLEEPER) | BARRIER_SLEEPER;
	while ((v & BARRIER_COUNT) < parties) {
		futex(b, FUTEX_WAIT, v);
		v = atomic_load(b);
	}
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

/* ---- a channel's setup: memory and descriptors --------------------- */

/*
 * This process's anonymous and shared-memory resident set in bytes (not
 * its file pages: code run for the first time is no channel's cost), or
 * -1.
 */
static int64_t rss_self(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	long long anon = -1, shmem = -1, kb;
	char line[128];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "RssAnon: %lld kB", &kb) == 1)
			anon = kb;
		else if (sscanf(line, "RssShmem: %lld kB", &kb) == 1)
			shmem = kb;
	}
	fclose(f);
	return anon < 0 || shmem < 0 ? -1 : (anon + shmem) * 1024;
}

/* Open descriptors of this process, or -1. */
static int fds_self(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
			n++;
	closedir(d);
	return n;
}

/*
 * Bytes of memfds this process maps (each file region once: a memfd
 * backend's descriptors are closed once mapped), or -1.
 */
static int64_t memfd_mapped(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long long seen[64][2];
	unsigned int nseen = 0, i;
	char line[512];
	int64_t sum = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off, inode;
		int path = 0;

		if (sscanf(line, "%llx-%llx %*s %llx %*s %llu %n", &start, &end,
			   &off, &inode, &path) < 4 || !path ||
		    strncmp(line + path, "/memfd:", 7))
			continue;
		for (i = 0; i < nseen; i++)
			if (seen[i][0] == inode && seen[i][1] == off)
				break;
		if (i < nseen)
			continue;
		if (nseen < 64) {
			seen[nseen][0] = inode;
			seen[nseen++][1] = off;
		}
		sum += (int64_t)(end - start);
	}
	fclose(f);
	return sum;
}

/* zchan.ko's pages in use (debugfs zchan/stats), or -1. */
static int64_t zchan_kernel_pages(void)
{
	static const char stats[] = "/sys/kernel/debug/zchan/stats";
	static bool mounted;
	FILE *f = fopen(stats, "r");
	char line[128];
	long long pages = -1;

	/* a minimal system (the test guest) may not have debugfs up */
	if (!f && !mounted && !access("/dev/zchan", F_OK)) {
		mounted = true;
		mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
		f = fopen(stats, "r");
	}
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "pages %lld", &pages) == 1)
			break;
	fclose(f);
	return pages;
}

static int chan_inherited_fds(const struct chan *c)
{
	return c ? (c->fd[0] >= 0) + (c->fd[1] >= 0) : 0;
}

/* Before the open: what the process holds without its channel. */
static void setup_before(struct side *s)
{
	struct side_result *me = s->me;

	me->rss_before = rss_self();
	me->memfd_before = memfd_mapped();
	me->fds_before = fds_self();
	if (me->fds_before >= 0)
		me->fds_before -= chan_inherited_fds(s->fwd) +
				  chan_inherited_fds(s->back);
}

/*
 * After this end's first message: what the channel costs it, then wait
 * for every pair to get there, so zchan.ko's count covers them all.
 */
void setup_after(struct side *s)
{
	struct side_result *me = s->me;
	int64_t memfd = memfd_mapped();
	int fds = fds_self();

	me->rss_after = rss_self();
	me->fds = fds < 0 || me->fds_before < 0 ? -1 : fds - me->fds_before;
	me->memfd_bytes = memfd < 0 || me->memfd_before < 0 ? -1 :
		memfd - me->memfd_before;
	barrier_wait(&s->common->setup_barrier, s->parties, s->spin_barrier);
	if (s->common->kpages_before < 0)
		return;
	if (s->pair == 0 && s->me == &s->sh->side[PRODUCER])
		s->common->kpages_after = zchan_kernel_pages();
	barrier_wait(&s->common->kstat_barrier, s->parties, s->spin_barrier);
}

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

static int64_t lib_syscalls(const struct side *s);

void timing_start(struct side *s)
{
	unsigned int i;

	barrier_wait(&s->common->barrier, s->parties, s->spin_barrier);
	s->cpu0 = cpu_ns_self(&s->faults0);
	s->lib0 = lib_syscalls(s);
	s->sys0 = syscall_counter_read(s->counter_fd);
	s->fwd->nsys = 0;
	if (s->back)
		s->back->nsys = 0;
	for (i = 1; i < s->nlanes; i++)
		s->lanes[i].nsys = 0;
	s->me->t_start = now_ns();
}

/*
 * The kicks and sleeps the library counted on this side's channels so far
 * (0 for a method without a library count, -1 if it failed).
 */
static int64_t lib_syscalls(const struct side *s)
{
	int64_t a = 0, b = 0;
	unsigned int i;

	if (!s->m->lib_syscalls)
		return 0;
	a = s->m->lib_syscalls(s->fwd);
	if (s->back)
		b = s->m->lib_syscalls(s->back);
	for (i = 1; i < s->nlanes && b >= 0; i++) {
		int64_t v = s->m->lib_syscalls(&s->lanes[i]);

		b = v < 0 ? -1 : b + v;
	}
	return a < 0 || b < 0 ? -1 : a + b;
}

/* syscalls the method code counted on this side's chans (SYSCOUNT) */
static uint64_t method_syscalls(const struct side *s)
{
	uint64_t n = s->fwd->nsys + (s->back ? s->back->nsys : 0);
	unsigned int i;

	for (i = 1; i < s->nlanes; i++)
		n += s->lanes[i].nsys;
	return n;
}

void timing_end(struct side *s)
{
	int64_t sys1, lib;

	s->me->t_end = now_ns();
	sys1 = syscall_counter_read(s->counter_fd);
	lib = lib_syscalls(s);
	s->me->cpu_ns = cpu_ns_self(&s->me->faults) - s->cpu0;
	s->me->faults -= s->faults0;
	lib = lib < 0 || s->lib0 < 0 ? -1 : lib - s->lib0;
	s->me->lib_syscalls = s->m->lib_syscalls ? lib : -1;
	if (s->sys0 >= 0 && sys1 >= 0) {
		/* the closing read() itself entered the kernel once */
		s->me->syscalls = sys1 - s->sys0 - 1;
		s->me->syscalls_from_perf = 1;
	} else {
		s->me->syscalls = lib < 0 ? -1 : (int64_t)method_syscalls(s) + lib;
	}
}

int fail(struct side *s, struct chan *c, const char *what, uint64_t seq)
{
	snprintf(s->me->why, sizeof(s->me->why), "%s %s at message %llu: %s",
		 s->role == PRODUCER ? "producer" : "consumer",
		 what, (unsigned long long)seq, c->err[0] ? c->err : "failed");
	s->me->failed = 1;
	return 1;
}

bool corrupt_here(const struct side *s, uint64_t seq)
{
	return s->cfg->corrupt && seq == (uint64_t)(s->warm + s->n / 2);
}

int producer(struct side *s)
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
			total = csum_mix(total, msg_fill(buf, s->size, s->tag | seq));
			if (corrupt_here(s, seq))
				((unsigned char *)buf)[s->size / 2] ^= 0x40;
		} else {
			msg_stamp(buf, seq);
			total = csum_mix(total, seq);
			if (corrupt_here(s, seq))
				((unsigned char *)buf)[0] ^= 0x40;
		}
		/*
		 * the consumer must have it all before each barrier (the
		 * first message's, setup_after(), too)
		 */
		s->fwd->more = stream && seq + 1 < end && seq > 0 &&
			       seq + 1 != (uint64_t)s->warm;
		if (s->m->send(s->fwd, buf))
			return fail(s, s->fwd, "send", seq);
		if (seq == 0 && s->warm > 0)
			setup_after(s);
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

int consumer(struct side *s)
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
		if (seq == 0)
			s->me->t_first = now_ns();
		if (stream) {
			total = csum_mix(total, msg_sum(p, s->size));
			got = seq;
		} else {
			/* handoff: the reader touches one line, the stamp */
			got = msg_stamp_read(p);
			total = csum_mix(total, got);
		}
		s->m->release(s->fwd, p);
		if (seq == 0 && s->warm > 0)
			setup_after(s);
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

void destroy_chan(struct chan *c)
{
	if (c->m)
		c->m->destroy(c);
}

/* The @i-th CPU (modulo their number) this process may run on, or -1. */
int allowed_cpu(unsigned int i)
{
	cpu_set_t set;
	int cpu, n;

	if (sched_getaffinity(0, sizeof(set), &set) || !(n = CPU_COUNT(&set)))
		return -1;
	i %= (unsigned int)n;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set) && !i--)
			return cpu;
	return -1;
}

static int child_cpu(const struct side *s, int role)
{
	if (s->cfg->same_core)
		return s->cfg->cpu[0];
	if (s->parties <= 2)
		return s->cfg->cpu[role];
	return allowed_cpu(s->pair + (unsigned int)role);
}

void child_prepare(struct side *s, int cpu)
{
	struct side_result *me = s->me;

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
	/* before the setup is timed: enabling a tracepoint can take long */
	s->counter_fd = syscall_counter_open();
}

static void child_main(struct side *s, int role)
{
	struct side_result *me = &s->sh->side[role];
	int rc;

	s->me = me;
	s->role = role;
	child_prepare(s, child_cpu(s, role));
	setup_before(s);
	barrier_wait(&s->common->open_barrier, s->parties, s->spin_barrier);
	if (role == PRODUCER)
		me->t_open = now_ns();
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


int children_alloc(struct children *ch, unsigned int n)
{
	unsigned int j;

	ch->n = n;
	ch->pid = calloc(n, sizeof(*ch->pid));
	ch->pfd = calloc(n, sizeof(*ch->pfd));
	ch->res = calloc(n, sizeof(*ch->res));
	ch->role = calloc(n, sizeof(*ch->role));
	if (!ch->pid || !ch->pfd || !ch->res || !ch->role)
		return -1;
	for (j = 0; j < n; j++)
		ch->pfd[j] = -1;
	return 0;
}

void children_free(struct children *ch)
{
	free(ch->pid);
	free(ch->pfd);
	free(ch->res);
	free(ch->role);
}

void kill_and_reap(struct children *ch)
{
	unsigned int i;

	for (i = 0; i < ch->n; i++)
		if (ch->pid[i] > 0)
			kill(ch->pid[i], SIGKILL);
	for (i = 0; i < ch->n; i++) {
		if (ch->pid[i] <= 0)
			continue;
		waitpid(ch->pid[i], NULL, 0);
		ch->pid[i] = 0;
		if (ch->pfd[i] >= 0)
			close(ch->pfd[i]);
		ch->pfd[i] = -1;
	}
}

void set_result(struct run_result *res, enum run_status st,
		       const char *fmt, ...)
{
	va_list ap;

	res->status = st;
	va_start(ap, fmt);
	vsnprintf(res->why, sizeof(res->why), fmt, ap);
	va_end(ap);
}

static uint64_t progress_of(const struct children *ch, int role)
{
	uint64_t v = 0;
	unsigned int j;

	for (j = 0; j < ch->n; j++)
		if (role < 0 || ch->role[j] == role)
			v += atomic_load(&ch->res[j]->done) +
			     (role < 0 ? atomic_load(&ch->res[j]->bytes) : 0);
	return v;
}

/* A child exited: note a failure, with a reason if it gave none. */
static void reaped(const struct children *ch, unsigned int j, int status,
		   bool *failed)
{
	struct side_result *r = ch->res[j];

	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return;
	if (!*failed && !r->failed)
		snprintf(r->why, sizeof(r->why), "%s died (%s %d)",
			 ch->role[j] == PRODUCER ? "producer" : "consumer",
			 WIFSIGNALED(status) ? "signal" : "exit",
			 WIFSIGNALED(status) ? WTERMSIG(status) :
			 WEXITSTATUS(status));
	*failed = true;
	r->failed = 1;
}

/*
 * The reason a failed run gives: a child's own, preferring one that says
 * what went wrong over one that only saw its peer die.
 */
static const char *failure_reason(const struct children *ch)
{
	const char *any = NULL;
	unsigned int j;

	for (j = 0; j < ch->n; j++) {
		const struct side_result *r = ch->res[j];

		if (!r->why[0])
			continue;
		if (!strstr(r->why, "died"))
			return r->why;
		if (!any)
			any = r->why;
	}
	return any ? any : "a child failed";
}

/*
 * Wait for every child.  Returns 0 when all exited 0, else fills res.
 * @all: the messages the consumers receive, together.
 */
int watch(const struct bench_cfg *cfg, struct children *ch, uint64_t all,
	  struct run_result *res)
{
	uint64_t start = now_ns(), last_change = start, last_done = 0;
	uint64_t limit = (uint64_t)(cfg->time_limit * 1e9);
	uint64_t stall = (uint64_t)(cfg->stall_limit * 1e9);
	unsigned int live = ch->n, i;
	struct pollfd *p = calloc(ch->n, sizeof(*p));
	bool failed = false;

	for (i = 0; i < ch->n; i++)
		ch->pfd[i] = pidfd_open(ch->pid[i]);
	while (live) {
		unsigned int np = 0;
		uint64_t now, done;
		int status;

		for (i = 0; p && i < ch->n; i++)
			if (ch->pid[i] > 0 && ch->pfd[i] >= 0)
				p[np++] = (struct pollfd){ .fd = ch->pfd[i], .events = POLLIN };
		if (np < live)
			usleep(20000);	/* no pidfd (very old kernel): plain polling */
		else
			poll(p, (nfds_t)np, failed ? 200 : 100);
		for (i = 0; i < ch->n; i++) {
			if (ch->pid[i] <= 0 ||
			    waitpid(ch->pid[i], &status, WNOHANG) != ch->pid[i])
				continue;
			ch->pid[i] = 0;
			if (ch->pfd[i] >= 0)
				close(ch->pfd[i]);
			ch->pfd[i] = -1;
			live--;
			reaped(ch, i, status, &failed);
		}
		if (!live)
			break;
		now = now_ns();
		if (failed) {
			/* give the survivors a moment to see EOF, then stop them */
			if (now - last_change > 300000000ULL) {
				kill_and_reap(ch);
				live = 0;
			}
			continue;
		}
		done = progress_of(ch, -1);
		if (done != last_done) {
			last_done = done;
			last_change = now;
		}
		if (now - start > limit) {
			kill_and_reap(ch);
			set_result(res, RUN_TIMEOUT,
				   "time limit %.0fs exceeded at message %llu/%llu",
				   cfg->time_limit,
				   (unsigned long long)progress_of(ch, CONSUMER),
				   (unsigned long long)all);
			free(p);
			return -1;
		}
		if (now - last_change > stall) {
			kill_and_reap(ch);
			set_result(res, RUN_STALL,
				   "stalled: no progress for %.1fs (producer at %llu, consumer at %llu of %llu)",
				   cfg->stall_limit,
				   (unsigned long long)progress_of(ch, PRODUCER),
				   (unsigned long long)progress_of(ch, CONSUMER),
				   (unsigned long long)all);
			free(p);
			return -1;
		}
	}
	free(p);
	if (failed) {
		set_result(res, RUN_ERROR, "%s", failure_reason(ch));
		return -1;
	}
	return 0;
}

void chan_init(struct chan *c, const struct method *m, size_t size, bool spin)
{
	memset(c, 0, sizeof(*c));
	c->m = m;
	c->msg_size = size;
	c->spin = spin;
	c->fd[0] = c->fd[1] = -1;
}

static int create_chan(const struct method *m, struct chan *c, size_t size,
		       bool spin)
{
	chan_init(c, m, size, spin);
	return m->create(c);
}

/* Mean of @v over the pairs, -1 if one is unknown. */
static double pairs_mean(const double *v, unsigned int n)
{
	double sum = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (v[i] < 0)
			return -1;
		sum += v[i];
	}
	return n ? sum / n : -1;
}

/* The channels' setup figures of struct run_result, per pair. */
static void setup_figures(struct run_shared *sh, struct run_common *common,
			  const uint64_t *create_ns, unsigned int npairs,
			  struct run_result *res)
{
	double *v = calloc(npairs, sizeof(*v));
	unsigned int i;
	int k;

	res->setup_ns = res->idle_rss_bytes = res->memfd_bytes = -1;
	res->fds[0] = res->fds[1] = res->kernel_bytes = -1;
	if (!v)
		return;
	for (i = 0; i < npairs; i++) {
		const struct side_result *P = &sh[i].side[PRODUCER];
		const struct side_result *C = &sh[i].side[CONSUMER];

		v[i] = !P->t_open || C->t_first < P->t_open ? -1 :
			(double)(create_ns[i] + C->t_first - P->t_open);
	}
	res->setup_ns = pairs_mean(v, npairs);
	for (i = 0; i < npairs; i++) {
		const struct side_result *P = &sh[i].side[PRODUCER];
		const struct side_result *C = &sh[i].side[CONSUMER];

		v[i] = P->rss_before < 0 || P->rss_after < 0 ||
		       C->rss_before < 0 || C->rss_after < 0 ? -1 :
			(double)(P->rss_after - P->rss_before +
				 C->rss_after - C->rss_before);
	}
	res->idle_rss_bytes = pairs_mean(v, npairs);
	for (k = 0; k < 2; k++) {
		for (i = 0; i < npairs; i++)
			v[i] = sh[i].side[k].fds;
		res->fds[k] = pairs_mean(v, npairs);
	}
	for (i = 0; i < npairs; i++)
		v[i] = (double)sh[i].side[PRODUCER].memfd_bytes;
	res->memfd_bytes = pairs_mean(v, npairs);
	if (common->kpages_before >= 0 && common->kpages_after >= 0)
		res->kernel_bytes = (double)(common->kpages_after -
					     common->kpages_before) *
				    (double)sysconf(_SC_PAGESIZE) / npairs;
	free(v);
}

/* A finished run's figures, from every pair's results. */
static void collect(struct run_shared *sh, unsigned int npairs, bool pp,
		    long n, size_t size, struct run_result *res)
{
	uint64_t t0 = UINT64_MAX, t1 = 0, cpu[2] = { 0, 0 }, faults = 0;
	uint64_t msgs = (uint64_t)n * (pp ? 2 : 1) * npairs;
	int64_t sys[2] = { 0, 0 }, lib[2] = { 0, 0 };
	bool perf = true;
	unsigned int i;
	int k;

	for (i = 0; i < npairs; i++) {
		struct side_result *P = &sh[i].side[PRODUCER], *C = &sh[i].side[CONSUMER];
		uint64_t end = pp ? P->t_end : C->t_end;

		if (P->csum != C->csum || P->csum_back != C->csum_back) {
			set_result(res, RUN_CORRUPT,
				   "CHECKSUM MISMATCH%s: producer sent %016llx, consumer received %016llx%s",
				   npairs > 1 ? " in a pair" : "",
				   (unsigned long long)P->csum,
				   (unsigned long long)C->csum,
				   P->csum_back != C->csum_back ? " (and the replies differ)" : "");
			return;
		}
		if (P->t_start < t0)
			t0 = P->t_start;
		if (C->t_start < t0)
			t0 = C->t_start;
		if (end > t1)
			t1 = end;
		faults += P->faults + C->faults;
		for (k = 0; k < 2; k++) {
			const struct side_result *r = &sh[i].side[k];

			cpu[k] += r->cpu_ns;
			sys[k] = sys[k] < 0 || r->syscalls < 0 ? -1 : sys[k] + r->syscalls;
			lib[k] = lib[k] < 0 || r->lib_syscalls < 0 ? -1 :
				 lib[k] + r->lib_syscalls;
			perf = perf && r->syscalls_from_perf;
		}
		if (pp && i > 0)
			hist_merge(&sh[0].rtt, &sh[i].rtt);
	}
	res->status = RUN_OK;
	res->runs = 1;
	res->messages = msgs;
	res->round_trips = pp ? (uint64_t)n * npairs : 0;
	res->seconds = (double)(t1 - t0) / 1e9;
	res->seconds_min = res->seconds_max = res->seconds;
	res->bytes_per_sec = (double)msgs * (double)size / res->seconds;
	res->msgs_per_sec = (double)msgs / res->seconds;
	for (k = 0; k < 2; k++) {
		res->cpu_ns_per_msg[k] = (double)cpu[k] / (double)msgs;
		res->syscalls_per_msg[k] = sys[k] < 0 ? -1 :
			(double)sys[k] / (double)msgs;
		res->lib_syscalls_per_msg[k] = lib[k] < 0 ? -1 :
			(double)lib[k] / (double)msgs;
	}
	res->lib_syscalls_per_msg[2] = lib[0] < 0 || lib[1] < 0 ? -1 :
		res->lib_syscalls_per_msg[0] + res->lib_syscalls_per_msg[1];
	res->cpu_ns_per_msg[2] = res->cpu_ns_per_msg[0] + res->cpu_ns_per_msg[1];
	res->faults_per_msg = (double)faults / (double)msgs;
	res->syscalls_per_msg[2] =
		res->syscalls_per_msg[0] < 0 || res->syscalls_per_msg[1] < 0 ? -1 :
		res->syscalls_per_msg[0] + res->syscalls_per_msg[1];
	snprintf(res->syscalls_source, sizeof(res->syscalls_source), "%s",
		 res->syscalls_per_msg[2] < 0 ? "none" : perf ? "perf" : "counted");
	if (pp)
		hist_summarize(&sh[0].rtt, &res->rtt);
}

int bench_nproc(void)
{
	cpu_set_t set;

	return sched_getaffinity(0, sizeof(set), &set) ? 1 : CPU_COUNT(&set);
}

void run_point(const struct bench_cfg *cfg, const struct method *m,
	       enum bench_mode mode, size_t size, long messages,
	       struct run_result *res)
{
	bool pp = mode_is_pingpong(m ? mode : 0);
	unsigned int npairs = cfg->pairs ? cfg->pairs : 1, i, j;
	size_t map_len = sizeof(struct run_common) +
			 npairs * sizeof(struct run_shared);
	struct children ch = { .n = 0 };
	struct chan *chans = NULL;	/* pair i: fwd 2i, back 2i + 1 */
	uint64_t *create_ns = NULL;
	struct run_common *common;
	struct run_shared *sh;
	unsigned int created = 0;
	struct side s;

	memset(res, 0, sizeof(*res));
	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.m = m;
	s.mode = mode;
	s.size = size;
	s.n = messages > 0 ? messages : default_messages(cfg, mode, size);
	s.warm = warmup_messages(cfg, s.n, size);
	s.counter_fd = -1;
	s.parties = 2 * npairs;
	s.spin_barrier = !cfg->same_core && (int)s.parties <= bench_nproc();

	common = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (common == MAP_FAILED) {
		set_result(res, RUN_ERROR, "mmap: %s", strerror(errno));
		return;
	}
	sh = (struct run_shared *)(common + 1);
	for (i = 0; i < npairs; i++)
		hist_init(&sh[i].rtt);
	common->kpages_before = zchan_kernel_pages();
	common->kpages_after = -1;
	s.common = common;

	chans = calloc(2 * npairs, sizeof(*chans));
	create_ns = calloc(npairs, sizeof(*create_ns));
	if (!chans || !create_ns || children_alloc(&ch, 2 * npairs)) {
		set_result(res, RUN_ERROR, "out of memory");
		goto out;
	}
	/* child j is pair j / 2's producer (even) or consumer */
	for (j = 0; j < ch.n; j++) {
		ch.res[j] = &sh[j / 2].side[j % 2];
		ch.role[j] = j % 2;
	}
	for (i = 0; i < npairs; i++) {
		uint64_t t = now_ns();

		if (create_chan(m, &chans[2 * i], size, mode == MODE_PINGPONG_BUSY)) {
			set_result(res, RUN_ERROR, "setup: %s", chans[2 * i].err);
			goto out_chans;
		}
		created = 2 * i + 1;
		if (pp) {
			if (create_chan(m, &chans[2 * i + 1], size,
					mode == MODE_PINGPONG_BUSY)) {
				set_result(res, RUN_ERROR, "setup: %s",
					   chans[2 * i + 1].err);
				goto out_chans;
			}
			created = 2 * i + 2;
		}
		create_ns[i] = now_ns() - t;
	}

	fflush(NULL);
	s.parent = getpid();
	for (j = 0; j < ch.n; j++) {
		/* per pair the consumer first, as a single pair always did */
		unsigned int pair = j / 2, child = 2 * pair + (j % 2 ? PRODUCER : CONSUMER);
		pid_t pid = fork();

		if (pid < 0) {
			set_result(res, RUN_ERROR, "fork: %s", strerror(errno));
			kill_and_reap(&ch);
			goto out_chans;
		}
		if (!pid) {
			/* this child's channels only: another pair's would keep it open */
			for (i = 0; i < created; i++)
				if (i / 2 != pair)
					destroy_chan(&chans[i]);
			s.pair = pair;
			s.sh = &sh[pair];
			s.fwd = &chans[2 * pair];
			s.back = pp ? &chans[2 * pair + 1] : NULL;
			child_main(&s, (int)(child % 2));
		}
		ch.pid[child] = pid;
	}
	/* the children hold what they need; drop the parent's references */
	for (i = 0; i < created; i++)
		destroy_chan(&chans[i]);
	created = 0;

	if (!watch(cfg, &ch, (uint64_t)(s.warm + s.n) * npairs, res)) {
		collect(sh, npairs, pp, s.n, size, res);
		if (res->status == RUN_OK)
			setup_figures(sh, common, create_ns, npairs, res);
	}

out_chans:
	for (i = 0; i < created; i++)
		destroy_chan(&chans[i]);
out:
	free(chans);
	free(create_ns);
	children_free(&ch);
	munmap(common, map_len);
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
	MED(consumer_msgs_per_sec);
	MED(consumer_bytes_per_sec);
	MED(faults_per_msg);
	for (k = 0; k < 3; k++) {
		MED(cpu_ns_per_msg[k]);
		MED(syscalls_per_msg[k]);
		MED(lib_syscalls_per_msg[k]);
	}
	MEDU(rtt.p50);
	MEDU(rtt.p90);
	MEDU(rtt.p99);
	MEDU(rtt.p999);
	MEDU(rtt.min);
	MED(rtt.mean);
	MED(setup_ns);
	MED(idle_rss_bytes);
	MED(fds[0]);
	MED(fds[1]);
	MED(memfd_bytes);
	MED(kernel_bytes);
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
