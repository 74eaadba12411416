// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan-bench: measure zchan against pipe, vmsplice, socketpair, TCP,
 * hand-made shared memory, process_vm_readv (MPI's single copy) and
 * iceoryx, side by side, with the same messages.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

const struct method *const all_methods[] = {
	&method_pipe,
	&method_vmsplice,
	&method_socketpair,
	&method_tcp,
	&method_shm_flag,
	&method_cma,
#ifdef HAVE_ICEORYX
	&method_iceoryx,
#endif
#ifdef HAVE_LIBZCHAN
	&method_zchan,
	&method_zchan_copy,
	&method_zchan_memfd,
	&method_zchan_memfd_copy,
	&method_zchan_pages,
	&method_zchan_many,
	&method_zchan_memfd_many,
#endif
	NULL,
};

/* Methods this build knows of but could not compile, and why. */
#define NO_LIBZCHAN "built without libzchan"
#define NO_ICEORYX "built without iceoryx (libiceoryx-binding-c-dev not installed)"
static const struct {
	const char *name, *why;
} missing_methods[] = {
#ifndef HAVE_ICEORYX
	{ "iceoryx", NO_ICEORYX },
#endif
#ifndef HAVE_LIBZCHAN
	{ "zchan", NO_LIBZCHAN }, { "zchan-copy", NO_LIBZCHAN },
	{ "zchan-memfd", NO_LIBZCHAN }, { "zchan-memfd-copy", NO_LIBZCHAN },
	{ "zchan-pages", NO_LIBZCHAN }, { "zchan-many", NO_LIBZCHAN },
	{ "zchan-memfd-many", NO_LIBZCHAN },
#endif
	{ NULL, NULL },
};

const struct method *method_find(const char *name)
{
	unsigned int i;

	for (i = 0; all_methods[i]; i++)
		if (!strcmp(all_methods[i]->name, name))
			return all_methods[i];
	return NULL;
}

/* Why this build lacks a method it knows of; NULL if it is unknown. */
static const char *method_missing(const char *name)
{
	unsigned int i;

	for (i = 0; missing_methods[i].name; i++)
		if (!strcmp(missing_methods[i].name, name))
			return missing_methods[i].why;
	return NULL;
}

void method_list(FILE *f)
{
	unsigned int i;
	char why[200];

	for (i = 0; all_methods[i]; i++) {
		const struct method *m = all_methods[i];

		why[0] = '\0';
		if (m->probe(why, sizeof(why)))
			fprintf(f, "  %-12s %s\n  %-12s   (not available: %s)\n",
				m->name, m->desc, "", why);
		else
			fprintf(f, "  %-12s %s\n", m->name, m->desc);
	}
	for (i = 0; missing_methods[i].name; i++)
		fprintf(f, "  %-12s (not available: %s)\n",
			missing_methods[i].name, missing_methods[i].why);
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: zchan-bench [options]\n"
"\n"
"Moves the same messages between two pinned processes with each method and\n"
"reports throughput, round-trip latency percentiles, CPU time and syscalls\n"
"per message.  Every run is verified: stream checksums every byte (the\n"
"receiver's sum must match the sender's), the other modes check a sequence\n"
"stamp in every message.\n"
"\n"
"  -m, --methods LIST   comma-separated methods (default: all that can run)\n"
"  -M, --modes LIST     stream,handoff,pingpong,pingpong-busy (default:\n"
"                       these four), fanin, fanout (below)\n"
"  -s, --sizes LIST     message sizes, K/M/G suffixes (default:\n"
"                       64,256,1K,4K,...,64M: powers of 4)\n"
"  -n, --messages N     messages per run (default: by size, same for all\n"
"                       methods: 128 MiB per stream run, 32 MiB per pingpong,\n"
"                       at least 16, 4 in pingpong; in handoff about as\n"
"                       many as last 0.1 s x --scale, from an untimed run)\n"
"  -w, --warmup N       untimed messages before each run (default: n/10,\n"
"                       at least 8 MiB and one more than a pool holds,\n"
"                       2..1000 x --scale)\n"
"  -r, --repeat N       runs per point, the median is reported (default 3)\n"
"  -c, --cpus A,B       producer and consumer CPUs (default 0,1; 0 alone\n"
"                       on a one-CPU machine)\n"
"  -P, --placements LIST  where the pairs run, each a sweep of its own,\n"
"                       side by side (default: idle):\n"
"                         idle       one pair, on the CPUs of --cpus\n"
"                         same-core  one pair, both on the first of --cpus\n"
"                         oversub    2 x nproc pairs at once, round the CPUs\n"
"                         N          N pairs at once (1..64), likewise: the\n"
"                                    scale sweep, e.g. -P 1,2,4,8,16,32,64\n"
"                       Pairs at once share a run's messages, and the rates\n"
"                       are their sum.\n"
"  -N, --ends LIST      the fan modes' producers (fanin) or consumers\n"
"                       (fanout), each a sweep of its own (default 1,2,4,8;\n"
"                       1..64)\n"
"      --same-core      -P same-core\n"
"      --rt             run producer and consumer SCHED_FIFO (root): less\n"
"                       noise from other work on a busy machine\n"
"  -t, --time S         time limit per run in seconds (default 10)\n"
"      --stall S        report a stall after S seconds without progress\n"
"                       (default 5)\n"
"      --scale F        multiply the default message and warm-up counts by F\n"
"      --pipe-size N    pipe buffer for pipe and vmsplice (default 1M; 0 =\n"
"                       the kernel's 64K)\n"
"      --json[=FILE]    JSON instead of the table (FILE: as well as it)\n"
"      --csv[=FILE]     CSV instead of the table (FILE: as well as it)\n"
"      --plot FILE.png  gnuplot: throughput and RTT against size\n"
"      --label TEXT     free text recorded with the results\n"
"  -l, --list           list the methods and whether they can run here\n"
"  -q, --quiet          no progress line on stderr\n"
"  -v, --verbose        print each run as it finishes\n"
"  -h, --help           this help\n"
"\n"
"Debugging:\n"
"      --corrupt        flip one byte of one message in transit; the run\n"
"                       must fail verification and exit with status 3\n"
"      --debug-stall    the consumer stops half way; the watchdog must\n"
"                       report a stall after --stall seconds (status 1)\n"
"\n"
"Fan modes (-M fanin,fanout): N + 1 processes round the CPUs (more than\n"
"the CPUs is oversubscribed, and reported as it is), stream messages\n"
"(every byte written and summed, each producer's order checked), rates of\n"
"delivered messages in all and per consumer.  fanin: N producers into one\n"
"consumer - N 1:1 channels (pipes, sockets, zchan) polled by the consumer,\n"
"or one channel with N producers (iceoryx: one service; zchan-many,\n"
"zchan-memfd-many: max_producers = N).  fanout: one producer to N\n"
"consumers - iceoryx's N subscribers of one service, zchan-many's\n"
"ZCHAN_BROADCAST channel, or a copy per consumer down a 1:1 channel each\n"
"(pipe, shm-flag, zchan ...).  Placements do not apply; -n is per\n"
"producer (fanin) or consumer (fanout), the default splits a stream\n"
"run's messages between them.\n"
"\n"
"Exit status: 0 all runs verified (methods that cannot run here are listed\n"
"as not available), 1 a run failed, stalled or timed out, 2 usage error,\n"
"3 data verification failed.\n"
"\n"
"Examples:\n"
"  zchan-bench                                  full sweep, all methods\n"
"  zchan-bench -m pipe,zchan-memfd -M stream -s 1M,64M\n"
"  zchan-bench -M pingpong,pingpong-busy -s 64 -r 5 --json=out.json\n"
"  zchan-bench --same-core -m pipe,socketpair --csv > same-core.csv\n"
"  zchan-bench -P idle,same-core,oversub -M pingpong -s 64\n"
"  zchan-bench -P 1,2,4,8,16,32,64 -M handoff -s 64 -m pipe,zchan-memfd\n"
"  zchan-bench -m pipe,socketpair,zchan --plot bench.png\n"
"  zchan-bench -m zchan-memfd,iceoryx,cma -M handoff\n"
"  zchan-bench -m zchan-pages,zchan-copy -M stream,handoff -s 64K,16M\n"
"  zchan-bench -M fanin,fanout -s 4K,1M -N 1,2,4,8 \\\n"
"      -m pipe,shm-flag,iceoryx,zchan-memfd,zchan-memfd-many --json=fan.json\n"
"  zchan-bench -M fanin -N 8 -s 64K -m pipe,zchan-memfd -v\n"
"\n"
"The iceoryx method starts its daemon, iox-roudi, for the sweep (with a\n"
"mempool for each size) and stops it after; ZCHAN_BENCH_IOX_ROUDI names\n"
"the binary (default: iox-roudi in PATH).\n"
"\n"
"Methods:\n");
	method_list(f);
}

static int bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "zchan-bench: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n\n");
	usage(stderr);
	return 2;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end += *end == 'i' ? 1 : 0;
	if (*end == 'B')
		end++;
	if (*end || v < 8 || v > (1ULL << 32))
		return -1;
	*out = (size_t)v;
	return 0;
}

static int parse_double(const char *s, double *out, double min)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno || end == s || *end || *out < min ? -1 : 0;
}

static int parse_long(const char *s, long *out, long min)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return errno || end == s || *end || *out < min ? -1 : 0;
}

/* Split a comma list in place; returns the number of items. */
static int split(char *s, char **items, int max)
{
	int n = 0;
	char *tok, *save = NULL;

	for (tok = strtok_r(s, ",", &save); tok && n < max;
	     tok = strtok_r(NULL, ",", &save))
		items[n++] = tok;
	return tok ? -1 : n;
}

static int cpu_usable(int cpu)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 0;
	return cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET(cpu, &set);
}

enum {
	OPT_SAME_CORE = 256, OPT_STALL, OPT_SCALE, OPT_PIPE_SIZE, OPT_JSON,
	OPT_CSV, OPT_PLOT, OPT_LABEL, OPT_CORRUPT, OPT_DEBUG_STALL, OPT_RT,
};

/* -N: the fan modes' ends, by default */
static const char default_ends[] = "1,2,4,8";

static const struct option long_opts[] = {
	{ "methods", required_argument, NULL, 'm' },
	{ "modes", required_argument, NULL, 'M' },
	{ "sizes", required_argument, NULL, 's' },
	{ "messages", required_argument, NULL, 'n' },
	{ "warmup", required_argument, NULL, 'w' },
	{ "repeat", required_argument, NULL, 'r' },
	{ "cpus", required_argument, NULL, 'c' },
	{ "placements", required_argument, NULL, 'P' },
	{ "ends", required_argument, NULL, 'N' },
	{ "same-core", no_argument, NULL, OPT_SAME_CORE },
	{ "rt", no_argument, NULL, OPT_RT },
	{ "time", required_argument, NULL, 't' },
	{ "stall", required_argument, NULL, OPT_STALL },
	{ "scale", required_argument, NULL, OPT_SCALE },
	{ "pipe-size", required_argument, NULL, OPT_PIPE_SIZE },
	{ "json", optional_argument, NULL, OPT_JSON },
	{ "csv", optional_argument, NULL, OPT_CSV },
	{ "plot", required_argument, NULL, OPT_PLOT },
	{ "label", required_argument, NULL, OPT_LABEL },
	{ "corrupt", no_argument, NULL, OPT_CORRUPT },
	{ "debug-stall", no_argument, NULL, OPT_DEBUG_STALL },
	{ "list", no_argument, NULL, 'l' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

#define MAX_ITEMS 64

static int write_file(const char *path, const struct bench_env *env,
		      const struct bench_cfg *cfg, const struct point *pts,
		      size_t n, bool json)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		fprintf(stderr, "zchan-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (json)
		out_json(f, env, cfg, pts, n);
	else
		out_csv(f, env, pts, n);
	if (fclose(f)) {
		fprintf(stderr, "zchan-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* What the command line asked for, before it is checked against the host. */
struct options {
	struct bench_cfg cfg;
	char *method_arg, *mode_arg, *size_arg, *place_arg, *ends_arg;
	const char *json_path, *csv_path, *plot_path;
	bool json_stdout, csv_stdout, quiet, progress, cpus_given;
	char label[128];
};

/* The points to run: methods (and whether each can run here), modes, sizes. */
struct selection {
	const struct method *methods[MAX_ITEMS];
	char method_why[MAX_ITEMS][200];
	bool method_ok[MAX_ITEMS];
	struct method not_built[MAX_ITEMS];	/* asked for, not in this build */
	enum bench_mode modes[MODE_COUNT];
	size_t sizes[MAX_ITEMS];
	enum bench_placement places[MAX_ITEMS];
	unsigned int pairs[MAX_ITEMS];
	unsigned int ends[MAX_ITEMS];	/* -N, the fan modes' */
	int nmethods, nmodes, nsizes, nplaces, nends;
};

/* Not a usage error: -h, -l and bad usage all end the program early. */
#define OPTS_CONTINUE (-1)

static int parse_cpus(const char *arg, int cpu[2])
{
	char *end;

	cpu[0] = (int)strtol(arg, &end, 10);
	if (end == arg || (*end && *end != ','))
		return -1;
	cpu[1] = cpu[0];
	if (*end == ',') {
		const char *s = end + 1;

		cpu[1] = (int)strtol(s, &end, 10);
		if (end == s || *end)
			return -1;
	}
	return 0;
}

/*
 * Fill o from argv.  Returns OPTS_CONTINUE to go on, else the exit status
 * (0 after -h or -l, 2 after a usage error, already reported).
 */
static int parse_options(int argc, char **argv, struct options *o)
{
	struct bench_cfg *cfg = &o->cfg;
	int opt;
	long l;

	while ((opt = getopt_long(argc, argv, "m:M:s:n:w:r:c:P:N:t:lqvh", long_opts,
				  NULL)) != -1) {
		switch (opt) {
		case 'm': o->method_arg = optarg; break;
		case 'M': o->mode_arg = optarg; break;
		case 's': o->size_arg = optarg; break;
		case 'n':
			if (parse_long(optarg, &cfg->messages, 1))
				return bad_usage("bad --messages '%s'", optarg);
			break;
		case 'w':
			if (parse_long(optarg, &cfg->warmup, 0))
				return bad_usage("bad --warmup '%s'", optarg);
			break;
		case 'r':
			if (parse_long(optarg, &l, 1) || l > 64)
				return bad_usage("bad --repeat '%s' (1..64)", optarg);
			cfg->repeat = (unsigned int)l;
			break;
		case 'c':
			o->cpus_given = true;
			if (parse_cpus(optarg, cfg->cpu))
				return bad_usage("bad --cpus '%s' (want A,B)", optarg);
			break;
		case 'P': o->place_arg = optarg; break;
		case 'N': o->ends_arg = optarg; break;
		case OPT_SAME_CORE: o->place_arg = "same-core"; break;
		case OPT_RT: cfg->rt = true; break;
		case 't':
			if (parse_double(optarg, &cfg->time_limit, 0.1))
				return bad_usage("bad --time '%s'", optarg);
			break;
		case OPT_STALL:
			if (parse_double(optarg, &cfg->stall_limit, 0.1))
				return bad_usage("bad --stall '%s'", optarg);
			break;
		case OPT_SCALE:
			if (parse_double(optarg, &cfg->scale, 1e-6))
				return bad_usage("bad --scale '%s'", optarg);
			break;
		case OPT_PIPE_SIZE: {
			size_t v;

			if (!strcmp(optarg, "0"))
				bench_pipe_size = 0;
			else if (parse_size(optarg, &v))
				return bad_usage("bad --pipe-size '%s'", optarg);
			else
				bench_pipe_size = (long)v;
			break;
		}
		case OPT_JSON:
			if (optarg)
				o->json_path = optarg;
			else
				o->json_stdout = true;
			break;
		case OPT_CSV:
			if (optarg)
				o->csv_path = optarg;
			else
				o->csv_stdout = true;
			break;
		case OPT_PLOT: o->plot_path = optarg; break;
		case OPT_LABEL:
			snprintf(o->label, sizeof(o->label), "%s", optarg);
			break;
		case OPT_CORRUPT: cfg->corrupt = true; break;
		case OPT_DEBUG_STALL: cfg->debug_stall = true; break;
		case 'l': method_list(stdout); return 0;
		case 'q': o->quiet = true; break;
		case 'v': cfg->verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	if (o->json_stdout && o->csv_stdout)
		return bad_usage("%s", "--json and --csv cannot both go to stdout");
	if (o->quiet)
		o->progress = false;
	return OPTS_CONTINUE;
}

/*
 * --methods (default: all this build has), each probed on this host.  A
 * method this build lacks, asked for by name, is a row "not available"
 * with the reason.
 */
static int select_methods(char *arg, bool quiet, struct selection *sel)
{
	bool fan = false, one_to_one = false;
	int i;

	/* by default, the methods that run in the modes asked for */
	for (i = 0; i < sel->nmodes; i++) {
		fan = fan || mode_is_fan(sel->modes[i]);
		one_to_one = one_to_one || !mode_is_fan(sel->modes[i]);
	}

	if (arg && strcmp(arg, "all")) {
		char *items[MAX_ITEMS];
		int n = split(arg, items, MAX_ITEMS);

		if (n <= 0)
			return bad_usage("bad --methods '%s'", arg);
		for (i = 0; i < n; i++) {
			const struct method *m = method_find(items[i]);
			const char *why = method_missing(items[i]);

			if (!m && !why)
				return bad_usage("unknown method '%s' (see --list)",
						 items[i]);
			if (!m) {
				struct method *stub = &sel->not_built[sel->nmethods];

				stub->name = items[i];
				stub->desc = why;
				m = stub;
			}
			sel->methods[sel->nmethods++] = m;
		}
	} else {
		for (i = 0; all_methods[i]; i++) {
			const struct method *m = all_methods[i];

			if ((one_to_one && !m->fan_only) ||
			    (fan && (m->fan_in || m->fan_out)))
				sel->methods[sel->nmethods++] = m;
		}
	}
	for (i = 0; i < sel->nmethods; i++) {
		const struct method *m = sel->methods[i];
		char *why = sel->method_why[i];

		why[0] = '\0';
		if (m->probe)
			sel->method_ok[i] = !m->probe(why, sizeof(sel->method_why[i]));
		else
			snprintf(why, sizeof(sel->method_why[i]), "%s", m->desc);
		if (!sel->method_ok[i] && !quiet)
			fprintf(stderr, "zchan-bench: %s: not available: %s\n",
				m->name, why);
	}
	return OPTS_CONTINUE;
}

/* --modes (default: the 1:1 ones, in their natural order). */
static int select_modes(char *arg, struct selection *sel)
{
	int i;

	if (!arg) {
		for (i = 0; i < MODE_DEFAULT_COUNT; i++)
			sel->modes[sel->nmodes++] = (enum bench_mode)i;
		return OPTS_CONTINUE;
	}
	{
		char *items[MAX_ITEMS];
		int n = split(arg, items, MAX_ITEMS);

		if (n <= 0)
			return bad_usage("bad --modes '%s'", arg);
		for (i = 0; i < n; i++) {
			enum bench_mode m;

			for (m = 0; m < MODE_COUNT; m++)
				if (!strcmp(items[i], mode_name(m)))
					break;
			if (m == MODE_COUNT)
				return bad_usage("unknown mode '%s'", items[i]);
			if (sel->nmodes < MODE_COUNT)
				sel->modes[sel->nmodes++] = m;
		}
	}
	return OPTS_CONTINUE;
}

/* --sizes (default: 64 B to 64 MiB in powers of 4). */
static int select_sizes(char *arg, struct selection *sel)
{
	char *items[MAX_ITEMS];
	int i, n;

	if (!arg) {
		size_t s;

		for (s = 64; s <= 64UL << 20; s *= 4)
			sel->sizes[sel->nsizes++] = s;
		return OPTS_CONTINUE;
	}
	n = split(arg, items, MAX_ITEMS);
	if (n <= 0)
		return bad_usage("bad --sizes '%s'", arg);
	for (i = 0; i < n; i++)
		if (parse_size(items[i], &sel->sizes[sel->nsizes++]))
			return bad_usage("bad size '%s' (8 bytes .. 4G, K/M/G suffixes)",
					 items[i]);
	return OPTS_CONTINUE;
}

/* --placements (default: idle); oversub is 2 x nproc pairs. */
static int select_placements(char *arg, struct selection *sel)
{
	static char idle[] = "idle";
	char *items[MAX_ITEMS];
	int i, n = split(arg ? arg : idle, items, MAX_ITEMS);

	if (n <= 0)
		return bad_usage("bad --placements '%s'", arg);
	for (i = 0; i < n; i++) {
		enum bench_placement *place = &sel->places[sel->nplaces];
		unsigned int *pairs = &sel->pairs[sel->nplaces++];
		long l;

		*pairs = 1;
		if (!strcmp(items[i], "idle")) {
			*place = PLACE_IDLE;
		} else if (!strcmp(items[i], "same-core")) {
			*place = PLACE_SAME_CORE;
		} else if (!strcmp(items[i], "oversub")) {
			*place = PLACE_OVERSUB;
			*pairs = 2 * (unsigned int)bench_nproc();
			if (*pairs > BENCH_MAX_PAIRS)
				*pairs = BENCH_MAX_PAIRS;
		} else if (!parse_long(items[i], &l, 1) && l <= BENCH_MAX_PAIRS) {
			*place = PLACE_PAIRS;
			*pairs = (unsigned int)l;
		} else {
			return bad_usage("bad placement '%s' (idle, same-core, oversub or 1..64 pairs)",
					 items[i]);
		}
		if (*pairs > bench_max_pairs)
			bench_max_pairs = *pairs;
	}
	return OPTS_CONTINUE;
}

/* --ends (default 1,2,4,8): the fan modes' producers or consumers. */
static int select_ends(const char *arg, struct selection *sel)
{
	char buf[256], *items[MAX_ITEMS];
	int i, n;

	snprintf(buf, sizeof(buf), "%s", arg ? arg : default_ends);
	n = split(buf, items, MAX_ITEMS);
	if (n <= 0)
		return bad_usage("bad --ends '%s'", arg);
	for (i = 0; i < n; i++) {
		long l;

		if (parse_long(items[i], &l, 1) || l > BENCH_MAX_FAN)
			return bad_usage("bad --ends '%s' (1..64)", items[i]);
		sel->ends[sel->nends++] = (unsigned int)l;
	}
	for (i = 0; i < sel->nmodes; i++)
		if (mode_is_fan(sel->modes[i]))
			break;
	/* iceoryx's mempools: a fan run's ends hold chunks as pairs do */
	for (n = 0; i < sel->nmodes && n < sel->nends; n++)
		if (sel->ends[n] + 1 > bench_max_pairs)
			bench_max_pairs = sel->ends[n] + 1;
	return OPTS_CONTINUE;
}

static int select_points(struct options *o, struct selection *sel)
{
	int rc = select_modes(o->mode_arg, sel);

	if (rc == OPTS_CONTINUE)
		rc = select_methods(o->method_arg, o->quiet, sel);
	if (rc == OPTS_CONTINUE)
		rc = select_sizes(o->size_arg, sel);
	if (rc == OPTS_CONTINUE)
		rc = select_placements(o->place_arg, sel);
	if (rc == OPTS_CONTINUE)
		rc = select_ends(o->ends_arg, sel);
	return rc;
}

/* The CPUs and scheduling the children get, checked on this host. */
static int select_cpus(struct options *o)
{
	struct bench_cfg *cfg = &o->cfg;

	/* The default cross-core pair on a one-CPU machine: say so, go on. */
	if (!o->cpus_given && !cfg->same_core && cpu_usable(cfg->cpu[0]) &&
	    !cpu_usable(cfg->cpu[1])) {
		fprintf(stderr, "zchan-bench: CPU %d not available: both sides on CPU %d (same core)\n",
			cfg->cpu[1], cfg->cpu[0]);
		cfg->same_core = true;
	}
	if (!cpu_usable(cfg->cpu[0]) || (!cfg->same_core && !cpu_usable(cfg->cpu[1])))
		return bad_usage("--cpus %s: not CPUs this process may run on",
				 cfg->same_core ? "(first)" : "A,B");
	/* idle: one pair on CPUs of its own, unless there is only one */
	if (!cfg->same_core && cfg->cpu[0] == cfg->cpu[1])
		cfg->same_core = true;

	if (cfg->rt) {
		struct sched_param sp = { .sched_priority = 1 };

		/* try it here first, so a refusal is one clear message */
		if (sched_setscheduler(0, SCHED_FIFO, &sp)) {
			fprintf(stderr, "zchan-bench: --rt: SCHED_FIFO: %s\n",
				strerror(errno));
			return 2;
		}
		sp.sched_priority = 0;
		sched_setscheduler(0, SCHED_OTHER, &sp);
	}
	return OPTS_CONTINUE;
}

/* Methods that started something for the sweep (a daemon), to undo. */
static const struct method *prepared[MAX_ITEMS];
static volatile sig_atomic_t nprepared;

static void finish_methods(void)
{
	while (nprepared > 0)
		prepared[--nprepared]->finish();
}

/* ^C, kill: stop what the methods started, then die of the signal. */
static void on_fatal_signal(int sig)
{
	finish_methods();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_fatal_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa;
	unsigned int i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sigfillset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

/* Let the methods that need it set up for the sweep's sizes. */
static void prepare_methods(struct selection *sel, bool quiet)
{
	int k, i;

	for (k = 0; k < sel->nmethods; k++) {
		const struct method *m = sel->methods[k];

		if (!sel->method_ok[k] || !m->prepare)
			continue;
		for (i = 0; i < nprepared && prepared[i] != m; i++)
			;
		if (i < nprepared)
			continue;	/* named twice */
		if (m->prepare(sel->sizes, sel->nsizes, sel->method_why[k],
			       sizeof(sel->method_why[k]))) {
			sel->method_ok[k] = false;
			if (!quiet)
				fprintf(stderr, "zchan-bench: %s: not available: %s\n",
					m->name, sel->method_why[k]);
			continue;
		}
		prepared[nprepared] = m;
		nprepared = nprepared + 1;
	}
	/* the same method named twice: one verdict */
	for (k = 0; k < sel->nmethods; k++)
		for (i = 0; i < k; i++)
			if (sel->methods[i] == sel->methods[k] && !sel->method_ok[i]) {
				sel->method_ok[k] = false;
				memcpy(sel->method_why[k], sel->method_why[i],
				       sizeof(sel->method_why[k]));
			}
}

/* A point that will not run: the method cannot run here, or the mode, size. */
static bool point_declined(const struct bench_cfg *cfg,
			   const struct selection *sel, int k, struct point *p)
{
	const char *why;

	if (!sel->method_ok[k]) {
		p->res.status = RUN_UNAVAILABLE;
		snprintf(p->res.why, sizeof(p->res.why), "%s", sel->method_why[k]);
		return true;
	}
	if (mode_is_fan(p->mode)) {
		why = NULL;
		if (!fan_shape_name(p->m, p->mode))
			why = p->mode == MODE_FANIN ? "no fan-in in this benchmark" :
			      "no fan-out in this benchmark";
		else if (p->m->fan_declines)
			why = p->m->fan_declines(p->m, p->mode, cfg->pairs);
		if (!why)
			return false;
		p->res.status = RUN_UNAVAILABLE;
		snprintf(p->res.why, sizeof(p->res.why), "%s", why);
		return true;
	}
	if (p->m->fan_only) {
		p->res.status = RUN_UNAVAILABLE;
		snprintf(p->res.why, sizeof(p->res.why), "fan modes only");
		return true;
	}
	if (p->mode == MODE_PINGPONG_BUSY &&
	    (cfg->same_core || 2 * (int)cfg->pairs > bench_nproc())) {
		p->res.status = RUN_UNAVAILABLE;
		snprintf(p->res.why, sizeof(p->res.why),
			 "more sides spinning than CPUs only measure the scheduler");
		return true;
	}
	why = p->m->declines ? p->m->declines(p->size) : NULL;
	if (why) {
		p->res.status = RUN_UNAVAILABLE;
		snprintf(p->res.why, sizeof(p->res.why), "%s", why);
		return true;
	}
	return false;
}

/*
 * How many messages each run of @p moves: the default count, except in
 * handoff, where an untimed first run at that count measures how many
 * make a run last BENCH_HANDOFF_MIN_SECONDS.  A failed first run decides
 * the point.
 */
static void size_point(const struct bench_cfg *cfg, struct point *p,
		       struct run_result *pilot)
{
	if (mode_is_fan(p->mode)) {
		/* run_fan_point() splits a stream's between the ends */
		p->messages = cfg->messages;
		return;
	}
	p->messages = default_messages(cfg, p->mode, p->size);
	if (p->mode != MODE_HANDOFF || cfg->messages > 0)
		return;
	run_point(cfg, p->m, p->mode, p->size, p->messages, pilot);
	if (pilot->status != RUN_OK) {
		p->res = *pilot;
		return;
	}
	p->messages = handoff_messages(cfg, p->messages, pilot->seconds);
	if (cfg->verbose)
		fprintf(stderr, "handoff %zu B %s: %ld messages per run (%ld took %.6fs)\n",
			p->size, p->m->name, p->messages, pilot->messages,
			pilot->seconds);
}

/*
 * Run every method at one (mode, size), filling pts[0..nmethods).
 * Repeats are interleaved across methods (A B C, A B C, ...) so a drift
 * in the machine's state hurts every method alike.
 */
static void sweep_point(const struct bench_cfg *cfg, const struct selection *sel,
			enum bench_placement place, enum bench_mode mode,
			size_t size, struct point *pts, struct run_result *runs,
			bool progress, size_t done, size_t total)
{
	unsigned int rep;
	char where[32] = "";
	int k;

	if (place == PLACE_FAN)
		snprintf(where, sizeof(where), "x%u ", cfg->pairs);
	else if (cfg->pairs > 1)
		snprintf(where, sizeof(where), "%s x%u ",
			 placement_name(place), cfg->pairs);
	else if (place != PLACE_IDLE)
		snprintf(where, sizeof(where), "%s ", placement_name(place));
	for (k = 0; k < sel->nmethods; k++) {
		pts[k].m = sel->methods[k];
		pts[k].place = place;
		pts[k].pairs = cfg->pairs;
		pts[k].mode = mode;
		pts[k].size = size;
		if (!point_declined(cfg, sel, k, &pts[k]))
			size_point(cfg, &pts[k], &runs[k * cfg->repeat]);
	}
	for (rep = 0; rep < cfg->repeat; rep++) {
		for (k = 0; k < sel->nmethods; k++) {
			struct point *p = &pts[k];
			struct run_result *run = &runs[k * cfg->repeat + rep];
			char sz[32];

			if (p->res.status != RUN_OK)
				continue;
			fmt_size(sz, sizeof(sz), p->size);
			if (progress)
				fprintf(stderr, "\r\033[K[%zu/%zu] %s%s %s %s run %u/%u",
					done + (size_t)k + 1, total, where,
					mode_name(p->mode), sz, p->m->name,
					rep + 1, cfg->repeat);
			if (mode_is_fan(p->mode))
				run_fan_point(cfg, p->m, p->mode, p->size,
					      cfg->pairs, p->messages, run);
			else
				run_point(cfg, p->m, p->mode, p->size,
					  p->messages, run);
			if (cfg->verbose)
				fprintf(stderr, "%s%s%s %s %s run %u: %s %.6fs %s\n",
					progress ? "\r\033[K" : "", where,
					mode_name(p->mode), sz, p->m->name,
					rep + 1, status_name(run->status),
					run->seconds, run->why);
			/* a failed run decides the point: stop repeating it */
			if (run->status != RUN_OK)
				p->res = *run;
		}
	}
	for (k = 0; k < sel->nmethods; k++)
		if (pts[k].res.status == RUN_OK)
			median_of(&runs[k * cfg->repeat], cfg->repeat, &pts[k].res);
}

/*
 * Every placement, mode, size and method; returns the points (NULL: no
 * memory).
 */
static struct point *sweep(const struct bench_cfg *cfg,
			   const struct selection *sel, bool progress,
			   size_t *npts)
{
	size_t nfan = 0, total, done = 0;
	struct point *pts;
	struct run_result *runs = calloc((size_t)sel->nmethods * cfg->repeat,
					 sizeof(*runs));
	int h, i, j;

	/* the 1:1 modes in every placement, the fan modes at every -N */
	for (i = 0; i < sel->nmodes; i++)
		nfan += mode_is_fan(sel->modes[i]);
	total = ((size_t)sel->nplaces * (sel->nmodes - nfan) +
		 (size_t)sel->nends * nfan) *
		(size_t)sel->nsizes * (size_t)sel->nmethods;
	pts = calloc(total, sizeof(*pts));
	if (!pts || !runs) {
		free(pts);
		free(runs);
		return NULL;
	}
	for (h = 0; h < sel->nplaces; h++) {
		struct bench_cfg c = *cfg;

		/* idle keeps same_core on a one-CPU machine (select_cpus()) */
		c.same_core = cfg->same_core || sel->places[h] == PLACE_SAME_CORE;
		c.pairs = sel->pairs[h];
		for (i = 0; i < sel->nmodes; i++) {
			if (mode_is_fan(sel->modes[i]))
				continue;
			for (j = 0; j < sel->nsizes; j++) {
				sweep_point(&c, sel, sel->places[h],
					    sel->modes[i], sel->sizes[j],
					    &pts[done], runs, progress, done,
					    total);
				done += (size_t)sel->nmethods;
			}
		}
	}
	for (i = 0; i < sel->nmodes; i++) {
		if (!mode_is_fan(sel->modes[i]))
			continue;
		for (h = 0; h < sel->nends; h++) {
			struct bench_cfg c = *cfg;

			c.pairs = sel->ends[h];
			for (j = 0; j < sel->nsizes; j++) {
				sweep_point(&c, sel, PLACE_FAN, sel->modes[i],
					    sel->sizes[j], &pts[done], runs,
					    progress, done, total);
				done += (size_t)sel->nmethods;
			}
		}
	}
	if (progress)
		fprintf(stderr, "\r\033[K");
	free(runs);
	*npts = total;
	return pts;
}

/* Say what failed; the exit status: 3 corrupt, 1 other failure, else 0. */
static int report_failures(const struct point *pts, size_t npts)
{
	int rc = 0;
	size_t k;

	for (k = 0; k < npts; k++) {
		enum run_status st = pts[k].res.status;

		if (st == RUN_CORRUPT) {
			fprintf(stderr, "zchan-bench: %s %s %s x%u %zu bytes: %s\n",
				pts[k].m->name, placement_name(pts[k].place),
				mode_name(pts[k].mode), pts[k].pairs, pts[k].size,
				pts[k].res.why);
			rc = 3;
		} else if (st != RUN_OK && st != RUN_UNAVAILABLE) {
			fprintf(stderr, "zchan-bench: %s %s %s x%u %zu bytes: %s: %s\n",
				pts[k].m->name, placement_name(pts[k].place),
				mode_name(pts[k].mode), pts[k].pairs, pts[k].size,
				status_name(st), pts[k].res.why);
			if (!rc)
				rc = 1;
		}
	}
	return rc;
}

/* stdout gets one format; files each their own.  Returns -1 if one failed. */
static int write_outputs(const struct options *o, const struct bench_env *env,
			 const struct point *pts, size_t npts)
{
	const struct bench_cfg *cfg = &o->cfg;
	int rc = 0;

	if (o->json_stdout)
		out_json(stdout, env, cfg, pts, npts);
	else if (o->csv_stdout)
		out_csv(stdout, env, pts, npts);
	else
		out_table(stdout, env, cfg, pts, npts);
	fflush(stdout);
	if (o->json_path && write_file(o->json_path, env, cfg, pts, npts, true))
		rc = -1;
	if (o->csv_path && write_file(o->csv_path, env, cfg, pts, npts, false))
		rc = -1;
	if (o->plot_path && out_plot(o->plot_path, env, pts, npts))
		rc = -1;
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = {
		.cfg = {
			.cpu = { 0, 1 }, .time_limit = 10, .stall_limit = 5,
			.repeat = 3, .warmup = -1, .scale = 1.0, .pairs = 1,
		},
		.progress = isatty(STDERR_FILENO),
	};
	static struct selection sel;
	struct bench_env env;
	struct point *pts;
	size_t npts;
	int rc;

	bench_pipe_size = 1 << 20;
	rc = parse_options(argc, argv, &o);
	if (rc == OPTS_CONTINUE)
		rc = select_points(&o, &sel);
	if (rc == OPTS_CONTINUE)
		rc = select_cpus(&o);
	if (rc != OPTS_CONTINUE)
		return rc;

	signal(SIGPIPE, SIG_IGN);
	env_collect(&env);
	syscall_counting_init(env.emulated);
	snprintf(env.label, sizeof(env.label), "%s", o.label);

	catch_fatal_signals();
	prepare_methods(&sel, o.quiet);
	pts = sweep(&o.cfg, &sel, o.progress, &npts);
	finish_methods();
	if (!pts) {
		perror("zchan-bench");
		return 1;
	}
	rc = report_failures(pts, npts);
	if (write_outputs(&o, &env, pts, npts) && !rc)
		rc = 1;
	free(pts);
	return rc;
}
