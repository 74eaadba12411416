// SPDX-License-Identifier: GPL-2.0
/*
 * zchan-top: zchan channels by activity, refreshed every interval.
 *
 * Rates come from debugfs zchan/chanstat (the counters the module sees in
 * both rings), a fan-in channel's lanes from zchan/ends, holders (and
 * their lanes) from /proc/PID/fdinfo, wait percentiles from BPF
 * programs on the zchan_wait_begin/zchan_wait_end tracepoints.
 */
#include <argp.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "obs.h"
#include "zchan_top.h"
#include "zchan_top.skel.h"

enum sort_key {
	SORT_MSGS, SORT_BYTES, SORT_BACKLOG, SORT_WAITS, SORT_KICKS, SORT_P99,
	SORT_ID,
};

static const char *const sort_names[] = {
	"msgs", "bytes", "backlog", "waits", "kicks", "p99", "id",
};

static struct env {
	double interval;
	long count;		/* refreshes, 0: until interrupted */
	pid_t pid;
	int rows;
	enum sort_key sort;
	bool noclear;
} env = {
	.interval = 1,
	.rows = 20,
};

const char *argp_program_version = "zchan-top 1.0";
const char argp_program_doc[] =
"Show zchan channels by activity, refreshed every interval.\n"
"\n"
"One row per channel of zchan.ko: its name (or id), the processes holding\n"
"the producer and consumer ends, messages/s and bytes/s published, backlog\n"
"(published, not yet released), waits/s and kicks/s, and the 50th and 99th\n"
"percentile of wait times (arm to wake; log2 bucket upper bounds).\n"
"bytes/s is messages/s times the mean length of the last messages (up to\n"
"1024): the kernel sees descriptors, not each commit.\n"
"A fan-in channel (several producer ends) has a sub-row per producer end:\n"
"its lane and state, the process holding it, its messages/s and backlog.\n"
"\n"
"Channels of libzchan's memfd backend (used when zchan.ko is not loaded)\n"
"are not visible to the kernel and never shown.  Needs root, zchan.ko,\n"
"debugfs and tracefs mounted.\n"
"\n"
"USAGE: zchan-top [-h] [-i INTERVAL] [-n COUNT] [-p PID] [-s KEY] [-r ROWS]\n"
"                 [-C] [--json]\n"
"\n"
"EXAMPLES:\n"
"    zchan-top                # refresh every second until Ctrl-C\n"
"    zchan-top -i 5 -n 3      # three refreshes, 5 seconds apart\n"
"    zchan-top -p 1234        # only channels process 1234 holds\n"
"    zchan-top -s p99 -r 5    # the five channels with the slowest waits\n"
"    zchan-top -n 1 --json    # one sample as JSON\n";

static const struct argp_option opts[] = {
	{ "interval", 'i', "INTERVAL", 0, "Seconds between refreshes (default 1)", 0 },
	{ "count", 'n', "COUNT", 0, "Refresh COUNT times, then exit (default: until Ctrl-C)", 0 },
	{ "pid", 'p', "PID", 0, "Only channels process PID holds", 0 },
	{ "sort", 's', "KEY", 0, "Sort by msgs (default), bytes, backlog, waits, kicks, p99 or id", 0 },
	{ "rows", 'r', "ROWS", 0, "Show at most ROWS channels (default 20)", 0 },
	{ "noclear", 'C', NULL, 0, "Do not clear the screen between refreshes", 0 },
	{},
};

static long parse_long(const char *arg, long min, long max, struct argp_state *state)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max)
		argp_error(state, "invalid number: %s", arg);
	return v;
}

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	size_t i;

	switch (key) {
	case 'i':
		if (!obs_parse_interval(arg, &env.interval))
			argp_error(state, "invalid interval: %s (0.1 to 86400 seconds)", arg);
		break;
	case 'n':
		env.count = parse_long(arg, 1, 1000000000, state);
		break;
	case 'p':
		env.pid = (pid_t)parse_long(arg, 1, 1 << 30, state);
		break;
	case 'r':
		env.rows = (int)parse_long(arg, 1, 100000, state);
		break;
	case 's':
		for (i = 0; i < sizeof(sort_names) / sizeof(sort_names[0]); i++)
			if (!strcmp(arg, sort_names[i]))
				break;
		if (i == sizeof(sort_names) / sizeof(sort_names[0]))
			argp_error(state, "unknown sort key: %s", arg);
		env.sort = (enum sort_key)i;
		break;
	case 'C':
		env.noclear = true;
		break;
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument: %s", arg);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/*
 * The producer ends of debugfs zchan/ends (none from a zchan.ko without
 * it) at this sample and the previous one, for the lanes' sub-rows.
 */
static struct obs_end *ends, *prev_ends;
#define ANY_LANE	(-2)	/* holders of every lane and of none (-1) */
static int nends, nprev_ends;

/* One row: a channel and what changed since the previous sample. */
struct row {
	struct obs_chan c;
	double msgs, bytes, waits, kicks;	/* per second */
	uint64_t p50, p99;			/* us, 0: no wait */
	uint64_t nwaits;			/* waits timed by BPF */
};

static const struct obs_chan *find_chan(const struct obs_chan *chans, int n,
					uint64_t id)
{
	int i;

	for (i = 0; i < n; i++)
		if (chans[i].id == id)
			return &chans[i];
	return NULL;
}

static bool held_by(const struct obs_holder *h, int nh, uint64_t id, pid_t pid)
{
	int i;

	for (i = 0; i < nh; i++)
		if (h[i].id == id && h[i].pid == pid)
			return true;
	return false;
}

static const struct obs_end *find_end(const struct obs_end *e, int n,
				      uint64_t id, unsigned int lane)
{
	int i;

	for (i = 0; i < n; i++)
		if (e[i].id == id && e[i].lane == lane)
			return &e[i];
	return NULL;
}

/*
 * A channel of several producer ends (fan-in): zchan/ends lists a lane
 * above 0 for it, or an fdinfo names a lane.  1:1 channels get no lanes.
 */
static bool has_lanes(uint64_t id, const struct obs_holder *h, int nh)
{
	int i;

	for (i = 0; i < nends; i++)
		if (ends[i].id == id && ends[i].lane > 0)
			return true;
	for (i = 0; i < nh; i++)
		if (h[i].id == id && h[i].lane >= 0)
			return true;
	return false;
}

/* Messages/s published on lane @e since the previous sample. */
static double lane_rate(const struct obs_end *e, double secs)
{
	const struct obs_end *p = find_end(prev_ends, nprev_ends, e->id, e->lane);

	if (!p || secs <= 0)
		return 0;
	return (uint32_t)(e->published - p->published) / secs;
}

/* Take the per-channel wait histograms into the rows. */
static int read_hists(int fd, struct row *rows, int nrows)
{
	struct obs_keyed_hist *h;
	int n, i, j;

	n = obs_take_hists(fd, &h);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		for (j = 0; j < nrows; j++) {
			if (rows[j].c.id != h[i].key.id)
				continue;
			rows[j].nwaits = obs_hist_total(&h[i].hist);
			rows[j].p50 = obs_hist_percentile(&h[i].hist, 50);
			rows[j].p99 = obs_hist_percentile(&h[i].hist, 99);
		}
	}
	free(h);
	return 0;
}

static double sort_value(const struct row *r)
{
	switch (env.sort) {
	case SORT_MSGS:
		return r->msgs;
	case SORT_BYTES:
		return r->bytes;
	case SORT_BACKLOG:
		return r->c.backlog;
	case SORT_WAITS:
		return r->waits;
	case SORT_KICKS:
		return r->kicks;
	case SORT_P99:
		return (double)r->p99;
	case SORT_ID:
		return -(double)r->c.id;
	}
	return 0;
}

static int cmp_rows(const void *a, const void *b)
{
	double va = sort_value(a), vb = sort_value(b);
	const struct row *ra = a, *rb = b;

	if (va != vb)
		return va < vb ? 1 : -1;
	return ra->c.id < rb->c.id ? -1 : ra->c.id > rb->c.id;
}

/*
 * "pid(comm)" of the first holder of @role (of lane @lane unless ANY_LANE), "+N"
 * more; "-" if none.
 */
static void holder_text(char *buf, size_t len, const struct obs_holder *h,
			int nh, uint64_t id, int role, int lane)
{
	int i, n = 0;

	snprintf(buf, len, "-");
	for (i = 0; i < nh; i++) {
		if (h[i].id != id || h[i].role != role ||
		    (lane != ANY_LANE && h[i].lane != lane))
			continue;
		if (!n++)
			snprintf(buf, len, "%d(%s)", (int)h[i].pid, h[i].comm);
	}
	if (n > 1) {
		size_t used = strlen(buf);

		snprintf(buf + used, len - used, "+%d", n - 1);
	}
}

/* One sub-row per lane of a fan-in channel, under the channel's row. */
static void print_lanes(const struct row *r, const struct obs_holder *h,
			int nh, double secs)
{
	char lane[24], prod[40];
	int i;

	if (!has_lanes(r->c.id, h, nh))
		return;
	for (i = 0; i < nends; i++) {
		const struct obs_end *e = &ends[i];

		if (e->id != r->c.id)
			continue;
		snprintf(lane, sizeof(lane), " lane %u %s", e->lane, e->state);
		holder_text(prod, sizeof(prod), h, nh, e->id, ZCHAN_TP_PRODUCER,
			    (int)e->lane);
		printf("%-6s %-16.16s %-22.22s %-22s %9.0f %10s %7u %8s %8s %7s %7s\n",
		       "", lane, prod, "", lane_rate(e, secs), "-",
		       e->published - e->released, "-", "-", "-", "-");
	}
}

static void print_table(const struct row *rows, int nrows,
			const struct obs_holder *h, int nh, double secs)
{
	char tbuf[16], prod[40], cons[40];
	time_t t = time(NULL);
	int i;

	if (!env.noclear && isatty(STDOUT_FILENO))
		fputs("\033[H\033[2J", stdout);
	strftime(tbuf, sizeof(tbuf), "%H:%M:%S", localtime(&t));
	printf("%s  channels: %d  (kernel backend only; memfd channels are not visible)\n",
	       tbuf, nrows);
	printf("%-6s %-16s %-22s %-22s %9s %10s %7s %8s %8s %7s %7s\n", "ID",
	       "NAME", "PRODUCER", "CONSUMER", "MSGS/s", "BYTES/s",
	       "BACKLOG", "WAITS/s", "KICKS/s", "P50us", "P99us");
	for (i = 0; i < nrows && i < env.rows; i++) {
		const struct row *r = &rows[i];

		holder_text(prod, sizeof(prod), h, nh, r->c.id, ZCHAN_TP_PRODUCER, ANY_LANE);
		holder_text(cons, sizeof(cons), h, nh, r->c.id, ZCHAN_TP_CONSUMER, ANY_LANE);
		printf("%-6llu %-16.16s %-22.22s %-22.22s %9.0f %10.0f %7u %8.0f %8.0f ",
		       (unsigned long long)r->c.id, r->c.name, prod, cons,
		       r->msgs, r->bytes, r->c.backlog, r->waits, r->kicks);
		if (r->nwaits)
			printf("%7llu %7llu\n", (unsigned long long)r->p50,
			       (unsigned long long)r->p99);
		else
			printf("%7s %7s\n", "-", "-");
		print_lanes(r, h, nh, secs);
	}
	fflush(stdout);
}

/* The holders of @role (of lane @lane unless ANY_LANE); "lane" if they have one. */
static void json_holders(const struct obs_holder *h, int nh, uint64_t id,
			 int role, int lane)
{
	bool comma = false;
	int i;

	putchar('[');
	for (i = 0; i < nh; i++) {
		if (h[i].id != id || h[i].role != role ||
		    (lane != ANY_LANE && h[i].lane != lane))
			continue;
		printf("%s{\"pid\":%d,\"comm\":", comma ? "," : "", (int)h[i].pid);
		json_write_str(stdout, h[i].comm);
		if (h[i].lane >= 0)
			printf(",\"lane\":%d", h[i].lane);
		putchar('}');
		comma = true;
	}
	putchar(']');
}

/* ,"lanes":[...] of a fan-in channel: each producer end's counters. */
static void json_lanes(const struct row *r, const struct obs_holder *h,
		       int nh, double secs)
{
	bool comma = false;
	int i;

	if (!has_lanes(r->c.id, h, nh))
		return;
	printf(",\"lanes\":[");
	for (i = 0; i < nends; i++) {
		const struct obs_end *e = &ends[i];

		if (e->id != r->c.id)
			continue;
		printf("%s{\"lane\":%u,\"state\":", comma ? "," : "", e->lane);
		json_write_str(stdout, e->state);
		printf(",\"producers\":");
		json_holders(h, nh, e->id, ZCHAN_TP_PRODUCER, (int)e->lane);
		printf(",\"msgs_per_sec\":%.1f,\"published\":%u,\"taken\":%u,\"released\":%u,\"backlog\":%u}",
		       lane_rate(e, secs), e->published, e->taken, e->released,
		       e->published - e->released);
		comma = true;
	}
	putchar(']');
}

static void print_json(const struct row *rows, int nrows,
		       const struct obs_holder *h, int nh, double secs)
{
	int i;

	printf("{\"time\":%lld,\"interval\":%g,\"channels\":[",
	       (long long)time(NULL), env.interval);
	for (i = 0; i < nrows && i < env.rows; i++) {
		const struct row *r = &rows[i];

		printf("%s{\"id\":%llu,\"name\":", i ? "," : "",
		       (unsigned long long)r->c.id);
		json_write_str(stdout, strcmp(r->c.name, "-") ? r->c.name : "");
		printf(",\"producer_open\":%s,\"consumer_open\":%s,\"producers\":",
		       r->c.prod_open ? "true" : "false",
		       r->c.cons_open ? "true" : "false");
		json_holders(h, nh, r->c.id, ZCHAN_TP_PRODUCER, ANY_LANE);
		printf(",\"consumers\":");
		json_holders(h, nh, r->c.id, ZCHAN_TP_CONSUMER, ANY_LANE);
		json_lanes(r, h, nh, secs);
		printf(",\"msgs_per_sec\":%.1f,\"bytes_per_sec\":%.0f,\"backlog\":%u,\"queued_bytes\":%llu,\"waits_per_sec\":%.1f,\"kicks_per_sec\":%.1f,\"published\":%u,\"released\":%u,\"waits_timed\":%llu,",
		       r->msgs, r->bytes, r->c.backlog,
		       (unsigned long long)r->c.queued_bytes, r->waits, r->kicks,
		       r->c.published, r->c.released,
		       (unsigned long long)r->nwaits);
		if (r->nwaits)
			printf("\"wait_p50_us\":%llu,\"wait_p99_us\":%llu}",
			       (unsigned long long)r->p50, (unsigned long long)r->p99);
		else
			printf("\"wait_p50_us\":null,\"wait_p99_us\":null}");
	}
	printf("]}\n");
	fflush(stdout);
}

/* One refresh: rows for the channels in @cur, rates against @prev. */
static int refresh(int hist_fd, const struct obs_chan *prev, int nprev,
		   const struct obs_chan *cur, int ncur, double secs)
{
	struct obs_holder *h = NULL;
	struct row *rows;
	int nh, nrows = 0, i;

	nh = obs_scan_holders(&h);
	if (nh < 0) {
		fprintf(stderr, "zchan-top: scanning /proc: %s\n", strerror(-nh));
		return nh;
	}
	rows = calloc(ncur ? ncur : 1, sizeof(*rows));
	if (!rows) {
		free(h);
		return -ENOMEM;
	}
	for (i = 0; i < ncur; i++) {
		const struct obs_chan *c = &cur[i], *p = find_chan(prev, nprev, c->id);
		struct row *r;

		if (env.pid && !held_by(h, nh, c->id, env.pid))
			continue;
		r = &rows[nrows++];
		r->c = *c;
		if (p && secs > 0) {
			r->msgs = (uint32_t)(c->published - p->published) / secs;
			r->waits = (c->waits - p->waits) / secs;
			r->kicks = (c->kicks - p->kicks) / secs;
		}
		if (c->recent_msgs)
			r->bytes = r->msgs * ((double)c->recent_bytes / c->recent_msgs);
	}
	if (read_hists(hist_fd, rows, nrows)) {
		free(rows);
		free(h);
		return -ENOMEM;
	}
	qsort(rows, nrows, sizeof(*rows), cmp_rows);
	if (obs_opts.json)
		print_json(rows, nrows, h, nh, secs);
	else
		print_table(rows, nrows, h, nh, secs);
	free(rows);
	free(h);
	return 0;
}

/*
 * A new sample of zchan/ends, the last one kept as the previous; none
 * (no lane sub-rows) if it cannot be read.
 */
static void read_ends(void)
{
	free(prev_ends);
	prev_ends = ends;
	nprev_ends = nends;
	nends = obs_read_ends(&ends);
	if (nends < 0)
		nends = 0;
}

static void sleep_interval(double secs)
{
	struct timespec ts = {
		.tv_sec = (time_t)secs,
		.tv_nsec = (long)((secs - (time_t)secs) * 1e9),
	};

	/* A signal cuts it short: obs_exiting is then set. */
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	struct obs_chan *prev = NULL, *cur = NULL;
	struct zchan_top_bpf *obj;
	int nprev = 0, ncur, err;
	double t_prev, t_cur;
	long done = 0;

	err = obs_parse_args(argc, argv, opts, parse_arg, argp_program_doc);
	if (err)
		return err;
	err = obs_check_env("zchan-top", true);
	if (err)
		return err;
	obs_start();

	obj = zchan_top_bpf__open_and_load();
	if (!obj) {
		fprintf(stderr, "zchan-top: loading the BPF programs failed: %s\n",
			strerror(errno));
		return OBS_EXIT_ERROR;
	}
	err = zchan_top_bpf__attach(obj);
	if (err) {
		fprintf(stderr, "zchan-top: attaching to the zchan tracepoints failed: %s\n",
			strerror(-err));
		err = OBS_EXIT_ERROR;
		goto out;
	}

	nprev = obs_read_chanstat(&prev);
	if (nprev < 0) {
		fprintf(stderr, "zchan-top: %s: %s\n", OBS_CHANSTAT, strerror(-nprev));
		err = OBS_EXIT_ERROR;
		goto out;
	}
	read_ends();
	t_prev = obs_now();
	while (!obs_exiting) {
		sleep_interval(env.interval);
		ncur = obs_read_chanstat(&cur);
		read_ends();
		t_cur = obs_now();
		if (ncur < 0) {
			fprintf(stderr, "zchan-top: %s: %s\n", OBS_CHANSTAT, strerror(-ncur));
			err = OBS_EXIT_ERROR;
			break;
		}
		if (refresh(bpf_map__fd(obj->maps.hists), prev, nprev, cur, ncur,
			    t_cur - t_prev)) {
			free(cur);
			err = OBS_EXIT_ERROR;
			break;
		}
		free(prev);
		prev = cur;
		nprev = ncur;
		t_prev = t_cur;
		if (env.count && ++done >= env.count)
			break;
	}
out:
	free(prev);
	free(prev_ends);
	free(ends);
	zchan_top_bpf__destroy(obj);
	return err;
}
