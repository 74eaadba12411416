// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan-bench: measure zchan against pipe, vmsplice, socketpair, TCP and
 * hand-made shared memory, side by side, with the same messages.
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
#ifdef HAVE_LIBZCHAN
	&method_zchan,
	&method_zchan_copy,
	&method_zchan_memfd,
	&method_zchan_memfd_copy,
#endif
	NULL,
};

/* Methods this build knows of but could not compile, and why. */
static const char *const missing_methods[] = {
#ifndef HAVE_LIBZCHAN
	"zchan", "zchan-copy", "zchan-memfd", "zchan-memfd-copy",
#endif
	NULL,
};

const struct method *method_find(const char *name)
{
	unsigned int i;

	for (i = 0; all_methods[i]; i++)
		if (!strcmp(all_methods[i]->name, name))
			return all_methods[i];
	return NULL;
}

static bool method_missing(const char *name)
{
	unsigned int i;

	for (i = 0; missing_methods[i]; i++)
		if (!strcmp(missing_methods[i], name))
			return true;
	return false;
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
	for (i = 0; missing_methods[i]; i++)
		fprintf(f, "  %-12s (not available: built without libzchan)\n",
			missing_methods[i]);
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
"  -M, --modes LIST     stream,handoff,pingpong,pingpong-busy (default: all)\n"
"  -s, --sizes LIST     message sizes, K/M/G suffixes (default:\n"
"                       64,256,1K,4K,...,64M: powers of 4)\n"
"  -n, --messages N     messages per run (default: by size, same for all\n"
"                       methods: 128 MiB per stream run, 32 MiB per pingpong)\n"
"  -w, --warmup N       untimed messages before each run (default: n/10,\n"
"                       at least 8 MiB worth, 2..1000 x --scale)\n"
"  -r, --repeat N       runs per point, the median is reported (default 3)\n"
"  -c, --cpus A,B       producer and consumer CPUs (default 0,1; 0 alone\n"
"                       on a one-CPU machine)\n"
"      --same-core      run both on the first CPU of --cpus\n"
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
"Exit status: 0 all runs verified (methods that cannot run here are listed\n"
"as not available), 1 a run failed, stalled or timed out, 2 usage error,\n"
"3 data verification failed.\n"
"\n"
"Examples:\n"
"  zchan-bench                                  full sweep, all methods\n"
"  zchan-bench -m pipe,zchan-memfd -M stream -s 1M,64M\n"
"  zchan-bench -M pingpong,pingpong-busy -s 64 -r 5 --json=out.json\n"
"  zchan-bench --same-core -m pipe,socketpair --csv > same-core.csv\n"
"  zchan-bench -m pipe,socketpair,zchan --plot bench.png\n"
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

static const struct option long_opts[] = {
	{ "methods", required_argument, NULL, 'm' },
	{ "modes", required_argument, NULL, 'M' },
	{ "sizes", required_argument, NULL, 's' },
	{ "messages", required_argument, NULL, 'n' },
	{ "warmup", required_argument, NULL, 'w' },
	{ "repeat", required_argument, NULL, 'r' },
	{ "cpus", required_argument, NULL, 'c' },
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

int main(int argc, char **argv)
{
	struct bench_cfg cfg = {
		.cpu = { 0, 1 }, .time_limit = 10, .stall_limit = 5,
		.repeat = 3, .warmup = -1, .scale = 1.0,
	};
	const struct method *methods[MAX_ITEMS];
	char method_why[MAX_ITEMS][200];
	bool method_ok[MAX_ITEMS];
	enum bench_mode modes[MODE_COUNT];
	size_t sizes[MAX_ITEMS];
	int nmethods = 0, nmodes = 0, nsizes = 0;
	char *method_arg = NULL, *mode_arg = NULL, *size_arg = NULL;
	const char *json_path = NULL, *csv_path = NULL, *plot_path = NULL;
	bool json_stdout = false, csv_stdout = false, quiet = false;
	bool progress = isatty(STDERR_FILENO);
	char label[128] = "";
	struct bench_env env;
	struct point *pts;
	struct run_result *runs;
	size_t npts = 0, total, done = 0;
	int opt, i, j, k, rc = 0;
	bool cpus_given = false;
	unsigned int rep;
	long l;

	bench_pipe_size = 1 << 20;
	while ((opt = getopt_long(argc, argv, "m:M:s:n:w:r:c:t:lqvh", long_opts,
				  NULL)) != -1) {
		switch (opt) {
		case 'm': method_arg = optarg; break;
		case 'M': mode_arg = optarg; break;
		case 's': size_arg = optarg; break;
		case 'n':
			if (parse_long(optarg, &cfg.messages, 1))
				return bad_usage("bad --messages '%s'", optarg);
			break;
		case 'w':
			if (parse_long(optarg, &cfg.warmup, 0))
				return bad_usage("bad --warmup '%s'", optarg);
			break;
		case 'r':
			if (parse_long(optarg, &l, 1) || l > 64)
				return bad_usage("bad --repeat '%s' (1..64)", optarg);
			cfg.repeat = (unsigned int)l;
			break;
		case 'c': {
			char *end;

			cpus_given = true;
			cfg.cpu[0] = (int)strtol(optarg, &end, 10);
			if (end == optarg || (*end && *end != ','))
				return bad_usage("bad --cpus '%s' (want A,B)", optarg);
			cfg.cpu[1] = cfg.cpu[0];
			if (*end == ',') {
				char *s = end + 1;

				cfg.cpu[1] = (int)strtol(s, &end, 10);
				if (end == s || *end)
					return bad_usage("bad --cpus '%s' (want A,B)", optarg);
			}
			break;
		}
		case OPT_SAME_CORE: cfg.same_core = true; break;
		case OPT_RT: cfg.rt = true; break;
		case 't':
			if (parse_double(optarg, &cfg.time_limit, 0.1))
				return bad_usage("bad --time '%s'", optarg);
			break;
		case OPT_STALL:
			if (parse_double(optarg, &cfg.stall_limit, 0.1))
				return bad_usage("bad --stall '%s'", optarg);
			break;
		case OPT_SCALE:
			if (parse_double(optarg, &cfg.scale, 1e-6))
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
				json_path = optarg;
			else
				json_stdout = true;
			break;
		case OPT_CSV:
			if (optarg)
				csv_path = optarg;
			else
				csv_stdout = true;
			break;
		case OPT_PLOT: plot_path = optarg; break;
		case OPT_LABEL: snprintf(label, sizeof(label), "%s", optarg); break;
		case OPT_CORRUPT: cfg.corrupt = true; break;
		case OPT_DEBUG_STALL: cfg.debug_stall = true; break;
		case 'l': method_list(stdout); return 0;
		case 'q': quiet = true; break;
		case 'v': cfg.verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	if (json_stdout && csv_stdout)
		return bad_usage("%s", "--json and --csv cannot both go to stdout");
	if (quiet)
		progress = false;

	/* methods */
	if (method_arg && strcmp(method_arg, "all")) {
		char *items[MAX_ITEMS];
		int n = split(method_arg, items, MAX_ITEMS);

		if (n <= 0)
			return bad_usage("bad --methods '%s'", method_arg);
		for (i = 0; i < n; i++) {
			methods[nmethods] = method_find(items[i]);
			if (!methods[nmethods]) {
				if (method_missing(items[i])) {
					fprintf(stderr, "zchan-bench: %s: not available: "
						"built without libzchan\n", items[i]);
					continue;
				}
				return bad_usage("unknown method '%s' (see --list)",
						 items[i]);
			}
			nmethods++;
		}
	} else {
		for (i = 0; all_methods[i]; i++)
			methods[nmethods++] = all_methods[i];
	}
	for (i = 0; i < nmethods; i++) {
		method_why[i][0] = '\0';
		method_ok[i] = !methods[i]->probe(method_why[i],
						  sizeof(method_why[i]));
		if (!method_ok[i] && !quiet)
			fprintf(stderr, "zchan-bench: %s: not available: %s\n",
				methods[i]->name, method_why[i]);
	}

	/* modes */
	if (mode_arg) {
		char *items[MAX_ITEMS];
		int n = split(mode_arg, items, MAX_ITEMS);

		if (n <= 0)
			return bad_usage("bad --modes '%s'", mode_arg);
		for (i = 0; i < n; i++) {
			enum bench_mode m;

			for (m = 0; m < MODE_COUNT; m++)
				if (!strcmp(items[i], mode_name(m)))
					break;
			if (m == MODE_COUNT)
				return bad_usage("unknown mode '%s'", items[i]);
			if (nmodes < MODE_COUNT)
				modes[nmodes++] = m;
		}
	} else {
		for (i = 0; i < MODE_COUNT; i++)
			modes[nmodes++] = (enum bench_mode)i;
	}

	/* sizes */
	if (size_arg) {
		char *items[MAX_ITEMS];
		int n = split(size_arg, items, MAX_ITEMS);

		if (n <= 0)
			return bad_usage("bad --sizes '%s'", size_arg);
		for (i = 0; i < n; i++)
			if (parse_size(items[i], &sizes[nsizes++]))
				return bad_usage("bad size '%s' (8 bytes .. 4G, K/M/G suffixes)",
						 items[i]);
	} else {
		size_t s;

		for (s = 64; s <= 64UL << 20; s *= 4)
			sizes[nsizes++] = s;
	}

	/* The default cross-core pair on a one-CPU machine: say so, go on. */
	if (!cpus_given && !cfg.same_core && cpu_usable(cfg.cpu[0]) &&
	    !cpu_usable(cfg.cpu[1])) {
		fprintf(stderr, "zchan-bench: CPU %d not available: both sides on CPU %d (same core)\n",
			cfg.cpu[1], cfg.cpu[0]);
		cfg.same_core = true;
	}
	if (!cpu_usable(cfg.cpu[0]) || (!cfg.same_core && !cpu_usable(cfg.cpu[1])))
		return bad_usage("--cpus %s: not CPUs this process may run on",
				 cfg.same_core ? "(first)" : "A,B");
	if (!cfg.same_core && cfg.cpu[0] == cfg.cpu[1])
		cfg.same_core = true;

	if (cfg.rt) {
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
	signal(SIGPIPE, SIG_IGN);
	env_collect(&env);
	syscall_counting_init(env.emulated);
	snprintf(env.label, sizeof(env.label), "%s", label);

	total = (size_t)nmodes * (size_t)nsizes * (size_t)nmethods;
	pts = calloc(total, sizeof(*pts));
	runs = calloc((size_t)nmethods * cfg.repeat, sizeof(*runs));
	if (!pts || !runs) {
		perror("zchan-bench");
		return 1;
	}

	/*
	 * Repeats are interleaved across methods (A B C, A B C, ...) so a
	 * drift in the machine's state hurts every method alike.
	 */
	for (i = 0; i < nmodes; i++) {
		for (j = 0; j < nsizes; j++) {
			size_t base = npts;

			for (k = 0; k < nmethods; k++) {
				struct point *p = &pts[npts++];

				p->m = methods[k];
				p->mode = modes[i];
				p->size = sizes[j];
				if (!method_ok[k]) {
					p->res.status = RUN_UNAVAILABLE;
					snprintf(p->res.why, sizeof(p->res.why), "%s",
						 method_why[k]);
				} else if (cfg.same_core &&
					   modes[i] == MODE_PINGPONG_BUSY) {
					p->res.status = RUN_UNAVAILABLE;
					snprintf(p->res.why, sizeof(p->res.why),
						 "both sides spinning on one CPU only measure the scheduler");
				}
			}
			for (rep = 0; rep < cfg.repeat; rep++) {
				for (k = 0; k < nmethods; k++) {
					struct point *p = &pts[base + k];
					char sz[32];

					if (p->res.status != RUN_OK)
						continue;
					fmt_size(sz, sizeof(sz), p->size);
					if (progress)
						fprintf(stderr, "\r\033[K[%zu/%zu] %s %s %s run %u/%u",
							done + (size_t)k + 1, total,
							mode_name(p->mode), sz, p->m->name,
							rep + 1, cfg.repeat);
					run_point(&cfg, p->m, p->mode, p->size,
						  &runs[k * cfg.repeat + rep]);
					if (cfg.verbose)
						fprintf(stderr, "%s%s %s %s run %u: %s %.6fs %s\n",
							progress ? "\r\033[K" : "",
							mode_name(p->mode), sz, p->m->name,
							rep + 1, status_name(runs[k * cfg.repeat + rep].status),
							runs[k * cfg.repeat + rep].seconds, runs[k * cfg.repeat + rep].why);
					if (runs[k * cfg.repeat + rep].status != RUN_OK) {
						/* a failed run decides the point: stop repeating it */
						p->res = runs[k * cfg.repeat + rep];
					}
				}
			}
			for (k = 0; k < nmethods; k++) {
				struct point *p = &pts[base + k];

				if (p->res.status == RUN_OK)
					median_of(&runs[k * cfg.repeat], cfg.repeat, &p->res);
			}
			done += (size_t)nmethods;
		}
	}
	if (progress)
		fprintf(stderr, "\r\033[K");

	for (k = 0; k < (int)npts; k++) {
		enum run_status st = pts[k].res.status;

		if (st == RUN_CORRUPT) {
			fprintf(stderr, "zchan-bench: %s %s %zu bytes: %s\n",
				pts[k].m->name, mode_name(pts[k].mode), pts[k].size,
				pts[k].res.why);
			rc = 3;
		} else if (st != RUN_OK && st != RUN_UNAVAILABLE) {
			fprintf(stderr, "zchan-bench: %s %s %zu bytes: %s: %s\n",
				pts[k].m->name, mode_name(pts[k].mode), pts[k].size,
				status_name(st), pts[k].res.why);
			if (!rc)
				rc = 1;
		}
	}

	if (json_stdout)
		out_json(stdout, &env, &cfg, pts, npts);
	else if (csv_stdout)
		out_csv(stdout, &env, pts, npts);
	else
		out_table(stdout, &env, &cfg, pts, npts);
	fflush(stdout);
	if (json_path && write_file(json_path, &env, &cfg, pts, npts, true) && !rc)
		rc = 1;
	if (csv_path && write_file(csv_path, &env, &cfg, pts, npts, false) && !rc)
		rc = 1;
	if (plot_path && out_plot(plot_path, &env, pts, npts) && !rc)
		rc = 1;
	free(runs);
	free(pts);
	return rc;
}
