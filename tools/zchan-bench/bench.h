/* SPDX-License-Identifier: MIT OR LGPL-2.1 */
/*
 * zchan-bench: shared definitions.
 *
 * A benchmark point is (method, mode, message size).  Each run of a point
 * forks a producer and a consumer, pins them, moves the same number of
 * messages through the method under test and reports through a shared
 * anonymous mapping (struct run_shared) to the parent, which enforces the
 * time limit.
 */
#ifndef ZCHAN_BENCH_H
#define ZCHAN_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hist.h"

#ifndef ZCHAN_BENCH_VERSION
#define ZCHAN_BENCH_VERSION "unknown"
#endif

enum bench_mode {
	MODE_STREAM,
	MODE_HANDOFF,
	MODE_PINGPONG,
	MODE_PINGPONG_BUSY,
	/* N producers into one consumer, one producer to N consumers (fan.c) */
	MODE_FANIN,
	MODE_FANOUT,
	MODE_COUNT
};
/* the modes a sweep runs when -M does not say: the 1:1 ones */
#define MODE_DEFAULT_COUNT	MODE_FANIN

const char *mode_name(enum bench_mode mode);
static inline bool mode_is_pingpong(enum bench_mode mode)
{
	return mode == MODE_PINGPONG || mode == MODE_PINGPONG_BUSY;
}
static inline bool mode_is_fan(enum bench_mode mode)
{
	return mode == MODE_FANIN || mode == MODE_FANOUT;
}

/*
 * How a method takes part in a fan mode (fan.c):
 *   FAN_NONE    it does not (the point is not available)
 *   FAN_LANES   one 1:1 chan per producer (fan-in: the consumer polls them
 *               all, with recv_try() and wait_fd()) or per consumer
 *               (fan-out: the producer sends every message down each,
 *               a copy per consumer)
 *   FAN_SHARED  one chan that every end opens: the method fans in or out
 *               itself (iceoryx's n:m publish-subscribe, a many-ended
 *               zchan channel)
 */
enum fan_shape {
	FAN_NONE,
	FAN_LANES,
	FAN_SHARED,
};

struct method;

/*
 * One direction of traffic.  Created by the parent before fork (so both
 * children inherit what they need), then opened by exactly one sender and
 * one receiver child.
 */
struct chan {
	const struct method *m;
	size_t msg_size;
	bool spin;		/* busy-poll instead of blocking */
	bool sender;		/* set by open */
	/*
	 * sender, stream mode: another message follows this one at once, so
	 * the method may queue this one and publish a batch (zchan:
	 * ZCHAN_MORE); false before the timing barrier, for the last message
	 * and in the other modes
	 */
	bool more;
	int fd[2];		/* method use; -1 when unused */
	void *priv;		/* method private state */
	uint64_t nsys;		/* syscalls issued by the method code */
	/* bytes moved so far, for the stall watchdog (may be NULL) */
	_Atomic uint64_t *progress;
	/*
	 * fan modes: the ends of the many side (N; 0 outside the fan modes),
	 * whether they are consumers (fan-out), which of them this process
	 * is (set before open; the single end is end 0), and whether the
	 * receiver takes messages with recv_try() (fan-in over lanes)
	 */
	unsigned int fan_ends, fan_end;
	bool fan_out;
	bool polled;
	char err[160];		/* why the last call failed */
};

/*
 * A transport.  Every hook returns 0 / a pointer on success; on failure
 * -1 / NULL with a reason in chan->err.  loan() returns the buffer the
 * sender builds the next message in (a private buffer for copying
 * methods, shared memory for zero-copy ones); recv() returns the next
 * whole message of chan->msg_size bytes, valid until release().
 */
struct method {
	const char *name;
	const char *desc;
	bool zero_copy;
	/* 0 when it can run here, else -1 and a reason in why */
	int (*probe)(char *why, size_t len);
	int (*create)(struct chan *c);
	int (*open)(struct chan *c, bool sender);
	void *(*loan)(struct chan *c);
	int (*send)(struct chan *c, void *buf);
	const void *(*recv)(struct chan *c);
	void (*release)(struct chan *c, const void *buf);
	/*
	 * Optional, sender: return once the receiver has taken every message
	 * (for methods whose messages stay in the sender's memory).
	 */
	int (*flush)(struct chan *c);
	/* called in every process holding the chan (parent and children) */
	void (*destroy)(struct chan *c);
	/* syscalls the library made on this chan, if it keeps count (-1 if not) */
	int64_t (*lib_syscalls)(struct chan *c);
	/*
	 * Optional, in the parent: before the sweep, with every size it will
	 * run (start a daemon); 0, or -1 and a reason in why.  finish() undoes
	 * it after the sweep, and from a signal handler: async-signal-safe.
	 */
	int (*prepare)(const size_t *sizes, int nsizes, char *why, size_t len);
	void (*finish)(void);
	/*
	 * The children end with exit(3) after destroying their ends, so the
	 * method's library can say goodbye to its daemon, instead of _exit(2).
	 */
	bool clean_exit;
	/*
	 * Optional: a reason why this method does not run at @size (say,
	 * not a multiple of the page size), NULL when it does.
	 */
	const char *(*declines)(size_t size);
	/* fan modes: how the method fans in and out (FAN_NONE: it does not) */
	enum fan_shape fan_in, fan_out;
	/*
	 * Optional, fan modes: a reason why the method cannot fan @ends ways
	 * in @mode here (probed once per point), NULL when it can.
	 */
	const char *(*fan_declines)(const struct method *m, enum bench_mode mode,
				    unsigned int ends);
	/* only in the fan modes (a many-ended channel) */
	bool fan_only;
	/*
	 * FAN_LANES fan-in, receiver of a chan opened with c->polled:
	 * recv_try() takes the next message if one has begun to arrive (1,
	 * *msg set, released with release() as recv()'s), or returns 0 at
	 * once if none has, or -1 with the reason in chan->err; wait_fd()
	 * is readable (POLLIN) once recv_try() may have one.
	 */
	int (*recv_try)(struct chan *c, const void **msg);
	int (*wait_fd)(struct chan *c);
};

extern const struct method method_pipe, method_vmsplice, method_socketpair,
	method_tcp, method_shm_flag, method_cma;
#ifdef HAVE_ICEORYX
extern const struct method method_iceoryx;

/* iox_roudi.c: iceoryx's daemon for the length of a sweep */
unsigned int iox_queue_capacity(size_t size);
unsigned int iox_chunks(size_t size);
size_t iox_payload(size_t size);
const char *iox_roudi_path(char *buf, size_t len);
int iox_roudi_start(const size_t *sizes, int nsizes, char *why, size_t len);
void iox_roudi_stop(void);
#endif
#ifdef HAVE_LIBZCHAN
extern const struct method method_zchan, method_zchan_copy, method_zchan_memfd,
	method_zchan_memfd_copy, method_zchan_pages, method_zchan_many,
	method_zchan_memfd_many;
#endif

/* probe of the methods that need nothing but the kernel's basics */
int method_always_available(char *why, size_t len);
/* release of the methods whose received buffer is their own, reused */
void method_release_nothing(struct chan *c, const void *buf);

const struct method *method_find(const char *name);
void method_list(FILE *f);
extern const struct method *const all_methods[];

void chan_error(struct chan *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* pipe buffer size for pipe and vmsplice; 0 = kernel default */
extern long bench_pipe_size;
void syscall_counting_init(bool emulated);

/* count one syscall issued by method code (fallback syscall accounting) */
#define SYSCOUNT(c) ((c)->nsys++)

static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/*
 * waitword.c: a 32-bit word in shared memory that one side changes and the
 * other waits on; in spin mode the waiter polls, otherwise it sleeps in
 * FUTEX_WAIT after announcing itself in *sleepers, and the writer enters
 * the kernel only when someone sleeps.
 */
void word_wait(struct chan *c, _Atomic uint32_t *word,
	       _Atomic uint32_t *sleepers, uint32_t seen);
void word_set(struct chan *c, _Atomic uint32_t *word,
	      _Atomic uint32_t *sleepers, uint32_t v);

/* tell the watchdog that a partial transfer moved n bytes */
static inline void chan_progress(struct chan *c, uint64_t n)
{
	if (c->progress)
		atomic_fetch_add_explicit(c->progress, n, memory_order_relaxed);
}

/* pattern.c: message contents and checksums */
uint64_t msg_fill(void *buf, size_t len, uint64_t seq);
uint64_t msg_sum(const void *buf, size_t len);
void msg_stamp(void *buf, uint64_t seq);
uint64_t msg_stamp_read(const void *buf);
static inline uint64_t csum_mix(uint64_t total, uint64_t msg)
{
	/* order-sensitive, so a lost, duplicated or reordered message shows */
	return (total ^ msg) * 0x100000001b3ULL + 0x9e3779b97f4a7c15ULL;
}

/* env.c */
struct bench_env {
	char kernel[128];
	char kernel_version[160];
	char arch[32];
	char cpu_model[128];
	int ncpus;
	bool guest;
	bool emulated;		/* TCG or another pure emulator */
	char hypervisor[32];	/* cpuid signature, "" on bare metal */
	char dmi_vendor[64];
	char dmi_product[64];
	char clocksource[32];
	char hostname[64];
	char date[32];
	long pipe_max_size;
	char libzchan[64];
	char label[128];		/* --label */
	char loadavg[64];	/* /proc/loadavg when the sweep started */
};
void env_collect(struct bench_env *env);

/*
 * Where the pairs of a point run: one pair on two CPUs of its own (idle),
 * one pair on one CPU (same-core), 2 x nproc pairs at once on every CPU
 * (oversub), or a given number of pairs at once (pairs: the scale sweep).
 * Pairs beyond the first go round the CPUs this process may use, pair i's
 * producer on the i-th, its consumer on the next.
 */
enum bench_placement {
	PLACE_IDLE,
	PLACE_SAME_CORE,
	PLACE_OVERSUB,
	PLACE_PAIRS,
	PLACE_FAN,	/* a fan mode's N + 1 processes, round the CPUs */
};

#define BENCH_MAX_PAIRS		64
const char *placement_name(enum bench_placement place);
/* the most pairs any point of the sweep runs at once (iceoryx's mempools) */
extern unsigned int bench_max_pairs;
/* the CPUs this process may run on */
int bench_nproc(void);

/* Settings shared by every run of a sweep. */
struct bench_cfg {
	int cpu[2];		/* producer, consumer */
	bool same_core;
	unsigned int pairs;	/* producer/consumer pairs at once, each its own channel */
	double time_limit;	/* seconds per run */
	double stall_limit;	/* seconds without progress */
	unsigned int repeat;
	long messages;		/* 0 = by size */
	long warmup;		/* -1 = by message count */
	double scale;
	bool rt;		/* children run SCHED_FIFO */
	bool corrupt;
	bool debug_stall;	/* consumer stops half way (tests the watchdog) */
	bool verbose;
};

/* What one run (or the median of repeats) produced. */
enum run_status {
	RUN_OK,
	RUN_UNAVAILABLE,
	RUN_ERROR,
	RUN_CORRUPT,
	RUN_TIMEOUT,
	RUN_STALL,
};

struct run_result {
	enum run_status status;
	char why[256];
	uint64_t messages;	/* one-way messages timed */
	uint64_t round_trips;	/* pingpong only */
	double seconds;
	double bytes_per_sec;
	double msgs_per_sec;
	/*
	 * fan modes: the processes of each role, and each consumer's rate
	 * (the mean over the consumers; in fan-in, the one consumer's:
	 * msgs_per_sec itself)
	 */
	unsigned int producers, consumers;
	double consumer_msgs_per_sec, consumer_bytes_per_sec;
	double cpu_ns_per_msg[3];	/* producer, consumer, total */
	double syscalls_per_msg[3];	/* producer, consumer, total; <0 unknown */
	/* the kicks and sleeps zchan's library counted, likewise (zchan only) */
	double lib_syscalls_per_msg[3];
	double faults_per_msg;		/* page faults, both sides */
	char syscalls_source[16];
	struct hist_summary rtt;	/* pingpong only */
	double seconds_min, seconds_max;
	unsigned int runs;
	/*
	 * A channel's cost to set up and to keep, per pair (the mean over
	 * the pairs of the run); < 0: not known here.  setup_ns: create (in
	 * the parent) + open on both sides + the first message received;
	 * idle_rss_bytes: both ends' anonymous and shared-memory resident
	 * set after the first message, less before the open (a page both
	 * map counts twice);
	 * fds: descriptors each end holds for it; memfd_bytes: the memfd
	 * regions the producer maps;
	 * kernel_bytes: zchan.ko's page count (debugfs zchan/stats) after
	 * every pair's first message, less before.
	 */
	double setup_ns;
	double idle_rss_bytes;
	double fds[2];			/* producer, consumer */
	double memfd_bytes;
	double kernel_bytes;
};

long default_messages(const struct bench_cfg *cfg, enum bench_mode mode,
		      size_t size);
/*
 * The fewest messages a method with a pool, ring or queue of its own
 * (zchan, cma, iceoryx) keeps in flight at @size: BENCH_INFLIGHT, as long
 * as they fit BENCH_INFLIGHT_BYTES, never fewer than two.  With two, the
 * producer waits for the release of the message before last at every
 * loan: the ends run in lockstep instead of streaming.
 */
#define BENCH_INFLIGHT		8
#define BENCH_INFLIGHT_BYTES	((size_t)128 << 20)
unsigned int bench_inflight(size_t size);
/*
 * A handoff run with the default count lasts at least this long (x
 * --scale): a handoff costs the same at every size, so a count derived
 * from bytes leaves a zero-copy method 16 messages of 16 MiB, a few
 * microseconds in which the first message's wake-up is the rate.
 */
#define BENCH_HANDOFF_MIN_SECONDS	0.1
#define BENCH_HANDOFF_MAX_MESSAGES	(10L * 1000 * 1000)
long handoff_messages(const struct bench_cfg *cfg, long n, double seconds);
void run_point(const struct bench_cfg *cfg, const struct method *m,
	       enum bench_mode mode, size_t size, long messages,
	       struct run_result *res);
void median_of(struct run_result *runs, unsigned int n,
	       struct run_result *out);
/* fan.c: one run of a fan mode, @ends producers (fan-in) or consumers */
void run_fan_point(const struct bench_cfg *cfg, const struct method *m,
		   enum bench_mode mode, size_t size, unsigned int ends,
		   long messages, struct run_result *res);
/* the most ends a fan mode takes (-N) */
#define BENCH_MAX_FAN		64
/* "lanes" / "shared": how @m runs @mode, NULL where it does not */
const char *fan_shape_name(const struct method *m, enum bench_mode mode);

/* output.c */
struct point {
	const struct method *m;
	enum bench_placement place;
	unsigned int pairs;
	enum bench_mode mode;
	size_t size;
	long messages;		/* per run, once sized */
	struct run_result res;
};
void out_table(FILE *f, const struct bench_env *env, const struct bench_cfg *cfg,
	       const struct point *p, size_t n);
void out_json(FILE *f, const struct bench_env *env, const struct bench_cfg *cfg,
	      const struct point *p, size_t n);
void out_csv(FILE *f, const struct bench_env *env, const struct point *p,
	     size_t n);
int out_plot(const char *png, const struct bench_env *env,
	     const struct point *p, size_t n);
const char *status_name(enum run_status s);
void fmt_size(char *buf, size_t len, size_t size);

/* time helpers */
uint64_t now_ns(void);

#endif
