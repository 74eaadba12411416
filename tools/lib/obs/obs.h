/* SPDX-License-Identifier: GPL-2.0 */
/*
 * User-space helpers shared by zchan-top and zchan-lat: checking that the
 * tools can run here (and saying why not), debugfs zchan/chanstat and
 * zchan/ends, who holds which channel and lane (fdinfo), the tracepoint
 * record layout check and log2 histograms.
 */
#ifndef ZCHAN_OBS_H
#define ZCHAN_OBS_H

#include <argp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "../json.h"
#include "zchan_tp.h"

#define OBS_CHANSTAT	"/sys/kernel/debug/zchan/chanstat"
#define OBS_ENDS	"/sys/kernel/debug/zchan/ends"
#define OBS_NAME_MAX	64
#define OBS_COMM_MAX	16

/* Exit statuses of both tools. */
#define OBS_EXIT_OK	0
#define OBS_EXIT_ERROR	1	/* cannot run here: see the message */
#define OBS_EXIT_USAGE	2

/* One line of zchan/chanstat. */
struct obs_chan {
	uint64_t id;
	char name[OBS_NAME_MAX];	/* "-" if anonymous */
	bool prod_open, cons_open;
	uint32_t ring_entries;
	uint64_t pool_size;
	uint32_t published, taken, released, backlog;
	uint64_t queued_bytes, kicks, waits;
	uint32_t recent_msgs;
	uint64_t recent_bytes;
};

/* A process holding an end of a channel (from /proc/PID/fdinfo). */
struct obs_holder {
	uint64_t id;
	int role;			/* ZCHAN_TP_PRODUCER or _CONSUMER */
	int lane;			/* a fan-in producer's lane, else -1 */
	pid_t pid;
	char comm[OBS_COMM_MAX];
};

/* One producer end (lane) of debugfs zchan/ends, with its lane's words. */
struct obs_end {
	uint64_t id;
	unsigned int lane;
	char state[8];			/* open, gone or free */
	uint32_t published, taken, released;
};

/* Options both tools take (--json, -v, -h), set by obs_parse_args(). */
struct obs_opts {
	bool json;
	bool verbose;
};

extern struct obs_opts obs_opts;

/*
 * Parse the command line with the tool's own @options and @parser and the
 * common ones; 0, or OBS_EXIT_USAGE (argp exits with it on errors too).
 */
int obs_parse_args(int argc, char **argv, const struct argp_option *options,
		   argp_parser_t parser, const char *doc);

/* Set by SIGINT and SIGTERM once obs_start() has run. */
extern volatile sig_atomic_t obs_exiting;

/* Route libbpf's messages (warnings; all with -v), catch the signals. */
void obs_start(void);

/* An interval in seconds, 0.1 to 86400; false if @arg is not one. */
bool obs_parse_interval(const char *arg, double *secs);

/*
 * Check that @prog can run: root, zchan.ko loaded, debugfs zchan/chanstat
 * readable and, with @need_bpf, tracefs with the zchan events whose record
 * layout matches zchan_tp.h and a kernel that runs BPF tracepoint
 * programs.  Prints what is wrong and how to fix it; returns 0 or
 * OBS_EXIT_ERROR.
 */
int obs_check_env(const char *prog, bool need_bpf);

/* Read zchan/chanstat into a new array; returns the count or -errno. */
int obs_read_chanstat(struct obs_chan **chans);

/*
 * Read the producer ends of debugfs zchan/ends into a new array, sorted by
 * channel and lane; the count, or -errno (-ENOENT: a zchan.ko without it).
 */
int obs_read_ends(struct obs_end **ends);

/* Scan /proc for processes holding channel files; count or -errno. */
int obs_scan_holders(struct obs_holder **holders);

/* A histogram of the BPF map, with its key. */
struct obs_keyed_hist {
	struct zchan_hist_key key;
	struct zchan_hist hist;
};

/*
 * Take (read and delete) every histogram of the hists map @fd, sorted by
 * channel and role, into a new array; the count or -errno.
 */
int obs_take_hists(int fd, struct obs_keyed_hist **hists);

/* Log2 histogram of microseconds: total, percentile (upper bound of the
 * slot holding it, 0 if empty), and printing as text or JSON.
 */
uint64_t obs_hist_total(const struct zchan_hist *h);
uint64_t obs_hist_percentile(const struct zchan_hist *h, double pct);
void obs_hist_add(struct zchan_hist *sum, const struct zchan_hist *h);
void obs_print_hist(FILE *f, const struct zchan_hist *h, const char *unit,
		    unsigned int divisor);
void obs_json_hist(FILE *f, const struct zchan_hist *h, unsigned int divisor);

const char *obs_role_name(int role);

/* Seconds since an arbitrary point (CLOCK_MONOTONIC). */
double obs_now(void);

#endif /* ZCHAN_OBS_H */
