// SPDX-License-Identifier: MIT OR LGPL-2.1
/* Table, JSON, CSV and gnuplot output of a finished sweep. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "../lib/json.h"

const char *status_name(enum run_status s)
{
	static const char *const names[] = {
		[RUN_OK] = "ok",
		[RUN_UNAVAILABLE] = "unavailable",
		[RUN_ERROR] = "error",
		[RUN_CORRUPT] = "corrupt",
		[RUN_TIMEOUT] = "timeout",
		[RUN_STALL] = "stall",
	};

	return names[s];
}

void fmt_size(char *buf, size_t len, size_t size)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB" };
	unsigned int u = 0;

	while (u < 3 && size >= 1024 && size % 1024 == 0) {
		size /= 1024;
		u++;
	}
	snprintf(buf, len, "%zu %s", size, unit[u]);
}

static void fmt_rate(char *buf, size_t len, double v, const char *suffix)
{
	static const char *const unit[] = { "", "K", "M", "G", "T" };
	unsigned int u = 0;

	while (u < 4 && v >= 1000.0) {
		v /= 1000.0;
		u++;
	}
	snprintf(buf, len, "%.*f %s%s", v < 10 ? 2 : v < 100 ? 1 : 0, v,
		 unit[u], suffix);
}

static void fmt_ns(char *buf, size_t len, double ns)
{
	if (ns < 1000)
		snprintf(buf, len, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.1f us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.2f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", ns / 1e9);
}

static void env_line(FILE *f, const struct bench_env *env)
{
	fprintf(f, "# zchan-bench %s: %s, %d CPUs, Linux %s, %s%s%s%s\n",
		ZCHAN_BENCH_VERSION, env->cpu_model, env->ncpus, env->kernel,
		env->emulated ? "EMULATED guest (numbers are relative only)" :
		env->guest ? "virtual machine" : "bare metal",
		env->hypervisor[0] ? " [" : "", env->hypervisor,
		env->hypervisor[0] ? "]" : "");
	fprintf(f, "# load average at start: %s\n", env->loadavg);
}

static const struct run_result *find_pipe(const struct point *p, size_t n,
					  const struct point *q)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i].mode == q->mode && p[i].size == q->size &&
		    p[i].place == q->place && p[i].pairs == q->pairs &&
		    !strcmp(p[i].m->name, "pipe") && p[i].res.status == RUN_OK)
			return &p[i].res;
	return NULL;
}

/*
 * How a method fans (the table's "how"): N 1:1 channels the consumer
 * polls, a copy per consumer down N 1:1 channels, or one channel with N
 * ends of the role (iceoryx: one service).
 */
static const char *fan_how(const struct method *m, enum bench_mode mode)
{
	const char *shape = fan_shape_name(m, mode);

	if (!shape)
		return "-";
	if (!strcmp(shape, "shared"))
		return "one channel";
	return mode == MODE_FANIN ? "N 1:1, polled" : "copy per consumer";
}

/* Where a section's pairs ran, for its heading. */
static void fmt_where(char *buf, size_t len, const struct bench_cfg *cfg,
		      const struct point *p)
{
	if (p->place == PLACE_FAN)
		snprintf(buf, len, "N = %u, %s, %u processes round %d CPUs%s",
			 p->pairs, p->mode == MODE_FANIN ?
			 "N producers into one consumer" :
			 "one producer to N consumers", p->pairs + 1,
			 bench_nproc(), (int)p->pairs + 1 > bench_nproc() ?
			 " (oversubscribed)" : "");
	else if (p->place == PLACE_SAME_CORE || (p->pairs <= 1 && cfg->same_core))
		snprintf(buf, len, "same core: both on CPU %d", cfg->cpu[0]);
	else if (p->pairs > 1)
		snprintf(buf, len, "%s: %u pairs at once round the CPUs, rates summed",
			 placement_name(p->place), p->pairs);
	else
		snprintf(buf, len, "CPU %d -> CPU %d", cfg->cpu[0], cfg->cpu[1]);
}

static void fmt_bytes(char *buf, size_t len, double v)
{
	if (v < 0)
		snprintf(buf, len, "-");
	else if (v < 10 * 1024)
		snprintf(buf, len, "%.0f B", v);
	else if (v < 10 * 1048576.0)
		snprintf(buf, len, "%.0f KiB", v / 1024);
	else
		snprintf(buf, len, "%.0f MiB", v / 1048576.0);
}

/*
 * What a channel costs to set up and to keep, from the points of the
 * sweep's first mode and size (one row per placement and method).
 */
static void out_setup_table(FILE *f, const struct point *p, size_t n)
{
	size_t i;
	char sz[32];

	/* the fan modes do not measure it */
	while (n && p[0].place == PLACE_FAN) {
		p++;
		n--;
	}
	if (!n)
		return;
	fmt_size(sz, sizeof(sz), p[0].size);
	fprintf(f, "\nchannel setup (create, open both ends, first message) and idle cost, %s %s, per pair\n",
		mode_name(p[0].mode), sz);
	fprintf(f, "%-10s %5s %-16s %10s %10s %7s %10s %10s\n", "placement",
		"pairs", "method", "setup", "rss", "fds p/c", "memfd", "zchan.ko");
	for (i = 0; i < n; i++) {
		const struct run_result *r = &p[i].res;
		char a[32], b[32], c[32], d[32], e[32];

		if (p[i].mode != p[0].mode || p[i].size != p[0].size ||
		    p[i].place == PLACE_FAN || r->status != RUN_OK)
			continue;
		if (r->setup_ns < 0)
			snprintf(a, sizeof(a), "-");
		else
			fmt_ns(a, sizeof(a), r->setup_ns);
		fmt_bytes(b, sizeof(b), r->idle_rss_bytes);
		if (r->fds[0] < 0 || r->fds[1] < 0)
			snprintf(c, sizeof(c), "-");
		else
			snprintf(c, sizeof(c), "%.3g/%.3g", r->fds[0], r->fds[1]);
		fmt_bytes(d, sizeof(d), r->memfd_bytes);
		fmt_bytes(e, sizeof(e), r->kernel_bytes);
		fprintf(f, "%-10s %5u %-16s %10s %10s %7s %10s %10s\n",
			placement_name(p[i].place), p[i].pairs, p[i].m->name,
			a, b, c, d, e);
	}
}

void out_table(FILE *f, const struct bench_env *env, const struct bench_cfg *cfg,
	       const struct point *p, size_t n)
{
	enum bench_mode last_mode = MODE_COUNT;
	unsigned int last_pairs = 0;
	int last_place = -1;
	size_t last_size = 0, i;

	env_line(f, env);
	for (i = 0; i < n; i++) {
		const struct run_result *r = &p[i].res, *pipe;
		bool pp = mode_is_pingpong(p[i].mode);
		char sz[32], a[32], b[32], c[32], d[32], e[32], sys[32], vs[32];
		char where[96];

		if (p[i].mode != last_mode || (int)p[i].place != last_place ||
		    p[i].pairs != last_pairs) {
			fmt_where(where, sizeof(where), cfg, &p[i]);
			fprintf(f, "\n%s, %s%s, median of %u run%s\n",
				mode_name(p[i].mode), where,
				cfg->rt ? " (SCHED_FIFO)" : "",
				cfg->repeat, cfg->repeat > 1 ? "s" : "");
			if (mode_is_fan(p[i].mode))
				fprintf(f, "%-9s %-16s %-17s %12s %12s %12s %8s %11s %8s\n",
					"size", "method", "how", "throughput",
					"msgs/s", "per consumer", "vs pipe",
					"cpu/msg", "sys/msg");
			else if (pp)
				fprintf(f, "%-9s %-16s %10s %10s %10s %10s %8s %11s %8s\n",
					"size", "method", "rtt p50", "p99", "p99.9",
					"max", "vs pipe", "cpu/msg", "sys/msg");
			else if (p[i].mode == MODE_HANDOFF)
				fprintf(f, "%-9s %-16s %12s %8s %11s %8s\n",
					"size", "method", "msgs/s", "vs pipe",
					"cpu/msg", "sys/msg");
			else
				fprintf(f, "%-9s %-16s %12s %12s %8s %11s %8s\n",
					"size", "method", "throughput", "msgs/s",
					"vs pipe", "cpu/msg", "sys/msg");
			last_mode = p[i].mode;
			last_place = (int)p[i].place;
			last_pairs = p[i].pairs;
			last_size = 0;
		}
		fmt_size(sz, sizeof(sz), p[i].size);
		if (p[i].size == last_size)
			sz[0] = '\0';
		last_size = p[i].size;
		if (r->status != RUN_OK) {
			fprintf(f, "%-9s %-16s %s: %s\n", sz, p[i].m->name,
				r->status == RUN_UNAVAILABLE ? "not available" :
				status_name(r->status), r->why);
			continue;
		}
		pipe = find_pipe(p, n, &p[i]);
		fmt_ns(e, sizeof(e), r->cpu_ns_per_msg[2]);
		if (r->syscalls_per_msg[2] < 0)
			snprintf(sys, sizeof(sys), "?");
		else
			snprintf(sys, sizeof(sys), "%.3g", r->syscalls_per_msg[2]);
		vs[0] = '\0';
		if (pp) {
			if (pipe && r->rtt.p50)
				snprintf(vs, sizeof(vs), "%.2fx",
					 (double)r->rtt.p50 / (double)pipe->rtt.p50);
			fmt_ns(a, sizeof(a), (double)r->rtt.p50);
			fmt_ns(b, sizeof(b), (double)r->rtt.p99);
			fmt_ns(c, sizeof(c), (double)r->rtt.p999);
			fmt_ns(d, sizeof(d), (double)r->rtt.max);
			fprintf(f, "%-9s %-16s %10s %10s %10s %10s %8s %11s %8s\n",
				sz, p[i].m->name, a, b, c, d, vs, e, sys);
		} else {
			if (pipe)
				snprintf(vs, sizeof(vs), "%.2fx",
					 r->msgs_per_sec / pipe->msgs_per_sec);
			fmt_rate(a, sizeof(a), r->bytes_per_sec, "B/s");
			fmt_rate(b, sizeof(b), r->msgs_per_sec, "");
			/*
			 * handoff passes the message, it does not move its
			 * bytes: a rate of messages, not of bytes
			 */
			if (mode_is_fan(p[i].mode)) {
				fmt_rate(c, sizeof(c), r->consumer_msgs_per_sec, "");
				fprintf(f, "%-9s %-16s %-17s %12s %12s %12s %8s %11s %8s\n",
					sz, p[i].m->name, fan_how(p[i].m, p[i].mode), a, b,
					c, vs, e, sys);
			} else if (p[i].mode == MODE_HANDOFF)
				fprintf(f, "%-9s %-16s %12s %8s %11s %8s\n",
					sz, p[i].m->name, b, vs, e, sys);
			else
				fprintf(f, "%-9s %-16s %12s %12s %8s %11s %8s\n",
					sz, p[i].m->name, a, b, vs, e, sys);
		}
	}
	out_setup_table(f, p, n);
}

/* ---- JSON ---------------------------------------------------------- */

static void json_num(FILE *f, double v, bool ok)
{
	if (!ok || !isfinite(v))
		fputs("null", f);
	else if (v == floor(v) && fabs(v) < 1e15)
		fprintf(f, "%.0f", v);
	else
		fprintf(f, "%.6g", v);
}

static void json_env(FILE *f, const struct bench_env *env, const char *ind)
{
	const struct { const char *key, *val; } strs[] = {
		{ "kernel", env->kernel },
		{ "kernel_version", env->kernel_version },
		{ "arch", env->arch },
		{ "cpu", env->cpu_model },
		{ "hypervisor", env->hypervisor },
		{ "dmi_vendor", env->dmi_vendor },
		{ "dmi_product", env->dmi_product },
		{ "clocksource", env->clocksource },
		{ "hostname", env->hostname },
		{ "date", env->date },
		{ "libzchan", env->libzchan },
		{ "loadavg", env->loadavg },
		{ "label", env->label },
		{ "tool_version", ZCHAN_BENCH_VERSION },
	};
	size_t i;

	fprintf(f, "{\n%s  \"ncpus\": %d,\n%s  \"guest\": %s,\n"
		"%s  \"emulated\": %s,\n%s  \"pipe_max_size\": %ld",
		ind, env->ncpus, ind, env->guest ? "true" : "false",
		ind, env->emulated ? "true" : "false", ind, env->pipe_max_size);
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		fprintf(f, ",\n%s  \"%s\": ", ind, strs[i].key);
		json_write_str(f, strs[i].val);
	}
	fprintf(f, "\n%s}", ind);
}

void out_json(FILE *f, const struct bench_env *env, const struct bench_cfg *cfg,
	      const struct point *p, size_t n)
{
	size_t i;

	fputs("{\n  \"env\": ", f);
	json_env(f, env, "  ");
	fprintf(f, ",\n  \"config\": {\"cpus\": [%d, %d], \"same_core\": %s, "
		"\"repeat\": %u, \"time_limit_s\": %g, \"scale\": %g, "
		"\"pipe_size\": %ld, \"sched\": \"%s\", \"corrupt\": %s},\n",
		cfg->cpu[0], cfg->same_core ? cfg->cpu[0] : cfg->cpu[1],
		cfg->same_core ? "true" : "false", cfg->repeat,
		cfg->time_limit, cfg->scale, bench_pipe_size,
		cfg->rt ? "fifo" : "other", cfg->corrupt ? "true" : "false");
	fputs("  \"results\": [", f);
	for (i = 0; i < n; i++) {
		const struct run_result *r = &p[i].res;
		bool ok = r->status == RUN_OK;
		bool pp = ok && mode_is_pingpong(p[i].mode);
		bool sys = ok && r->syscalls_per_msg[2] >= 0;

		fputs(i ? ",\n    {" : "\n    {", f);
		fputs("\"method\": ", f);
		json_write_str(f, p[i].m->name);
		fputs(", \"placement\": ", f);
		json_write_str(f, placement_name(p[i].place));
		fprintf(f, ", \"pairs\": %u", p[i].pairs);
		fputs(", \"mode\": ", f);
		json_write_str(f, mode_name(p[i].mode));
		fprintf(f, ", \"msg_size\": %zu, \"status\": ", p[i].size);
		json_write_str(f, status_name(r->status));
		fputs(", \"why\": ", f);
		json_write_str(f, r->why);
		fprintf(f, ", \"zero_copy\": %s", p[i].m->zero_copy ? "true" : "false");
		{
			bool fan = mode_is_fan(p[i].mode);
			const char *shape = fan ? fan_shape_name(p[i].m, p[i].mode) : NULL;

			fputs(",\n     \"fan_shape\": ", f);
			if (shape)
				json_write_str(f, shape);
			else
				fputs("null", f);
			fputs(", \"ends\": ", f);
			json_num(f, p[i].pairs, fan);
			fputs(", \"producers\": ", f);
			json_num(f, r->producers, fan && ok);
			fputs(", \"consumers\": ", f);
			json_num(f, r->consumers, fan && ok);
			fputs(", \"consumer_msgs_per_sec\": ", f);
			json_num(f, r->consumer_msgs_per_sec, fan && ok);
			fputs(", \"consumer_bytes_per_sec\": ", f);
			json_num(f, round(r->consumer_bytes_per_sec), fan && ok);
		}
		fputs(",\n     \"messages\": ", f);
		json_num(f, (double)r->messages, ok);
		fputs(", \"round_trips\": ", f);
		json_num(f, (double)r->round_trips, pp);
		fprintf(f, ", \"runs\": %u", r->runs);
		fputs(", \"seconds\": ", f);
		json_num(f, r->seconds, ok);
		fputs(", \"seconds_min\": ", f);
		json_num(f, r->seconds_min, ok);
		fputs(", \"seconds_max\": ", f);
		json_num(f, r->seconds_max, ok);
		fputs(",\n     \"bytes_per_sec\": ", f);
		json_num(f, round(r->bytes_per_sec), ok);
		fputs(", \"msgs_per_sec\": ", f);
		json_num(f, r->msgs_per_sec, ok);
		fputs(",\n     \"rtt_p50_ns\": ", f);
		json_num(f, (double)r->rtt.p50, pp);
		fputs(", \"rtt_p90_ns\": ", f);
		json_num(f, (double)r->rtt.p90, pp);
		fputs(", \"rtt_p99_ns\": ", f);
		json_num(f, (double)r->rtt.p99, pp);
		fputs(", \"rtt_p999_ns\": ", f);
		json_num(f, (double)r->rtt.p999, pp);
		fputs(", \"rtt_max_ns\": ", f);
		json_num(f, (double)r->rtt.max, pp);
		fputs(", \"rtt_min_ns\": ", f);
		json_num(f, (double)r->rtt.min, pp);
		fputs(", \"rtt_mean_ns\": ", f);
		json_num(f, round(r->rtt.mean), pp);
		fputs(",\n     \"cpu_ns_per_msg\": ", f);
		json_num(f, round(r->cpu_ns_per_msg[2]), ok);
		fputs(", \"producer_cpu_ns_per_msg\": ", f);
		json_num(f, round(r->cpu_ns_per_msg[0]), ok);
		fputs(", \"consumer_cpu_ns_per_msg\": ", f);
		json_num(f, round(r->cpu_ns_per_msg[1]), ok);
		fputs(",\n     \"syscalls_per_msg\": ", f);
		json_num(f, r->syscalls_per_msg[2], sys);
		fputs(", \"producer_syscalls_per_msg\": ", f);
		json_num(f, r->syscalls_per_msg[0], sys);
		fputs(", \"consumer_syscalls_per_msg\": ", f);
		json_num(f, r->syscalls_per_msg[1], sys);
		fputs(",\n     \"lib_syscalls_per_msg\": ", f);
		json_num(f, r->lib_syscalls_per_msg[2], ok && r->lib_syscalls_per_msg[2] >= 0);
		fputs(", \"producer_lib_syscalls_per_msg\": ", f);
		json_num(f, r->lib_syscalls_per_msg[0], ok && r->lib_syscalls_per_msg[0] >= 0);
		fputs(", \"consumer_lib_syscalls_per_msg\": ", f);
		json_num(f, r->lib_syscalls_per_msg[1], ok && r->lib_syscalls_per_msg[1] >= 0);
		fputs(", \"faults_per_msg\": ", f);
		json_num(f, r->faults_per_msg, ok);
		fputs(", \"syscalls_source\": ", f);
		json_write_str(f, ok ? r->syscalls_source : "none");
		fputs(",\n     \"setup_ns\": ", f);
		json_num(f, round(r->setup_ns), ok && r->setup_ns >= 0);
		fputs(", \"idle_rss_bytes\": ", f);
		json_num(f, round(r->idle_rss_bytes), ok && r->idle_rss_bytes >= 0);
		fputs(", \"producer_fds\": ", f);
		json_num(f, r->fds[0], ok && r->fds[0] >= 0);
		fputs(", \"consumer_fds\": ", f);
		json_num(f, r->fds[1], ok && r->fds[1] >= 0);
		fputs(", \"memfd_bytes\": ", f);
		json_num(f, round(r->memfd_bytes), ok && r->memfd_bytes >= 0);
		fputs(", \"kernel_bytes\": ", f);
		json_num(f, round(r->kernel_bytes), ok && r->kernel_bytes >= 0);
		fputs(",\n     \"env\": ", f);
		json_env(f, env, "     ");
		fputs("}", f);
	}
	fputs("\n  ]\n}\n", f);
}

/* ---- CSV ----------------------------------------------------------- */

static void csv_num(FILE *f, double v, bool ok)
{
	if (ok && isfinite(v))
		fprintf(f, ",%.6g", v);
	else
		fputs(",", f);
}

void out_csv(FILE *f, const struct bench_env *env, const struct point *p,
	     size_t n)
{
	size_t i;

	fputs("method,mode,msg_size,status,messages,seconds,bytes_per_sec,"
	      "msgs_per_sec,rtt_p50_ns,rtt_p99_ns,rtt_p999_ns,rtt_max_ns,"
	      "cpu_ns_per_msg,producer_cpu_ns_per_msg,consumer_cpu_ns_per_msg,"
	      "syscalls_per_msg,faults_per_msg,kernel,guest,emulated,"
	      "placement,pairs,setup_ns,idle_rss_bytes,producer_fds,consumer_fds,"
	      "memfd_bytes,kernel_bytes,fan_shape,consumer_msgs_per_sec,"
	      "consumer_bytes_per_sec\n", f);
	for (i = 0; i < n; i++) {
		const struct run_result *r = &p[i].res;
		bool ok = r->status == RUN_OK;
		bool pp = ok && mode_is_pingpong(p[i].mode);
		bool fan;

		fprintf(f, "%s,%s,%zu,%s", p[i].m->name, mode_name(p[i].mode),
			p[i].size, status_name(r->status));
		csv_num(f, (double)r->messages, ok);
		csv_num(f, r->seconds, ok);
		csv_num(f, r->bytes_per_sec, ok);
		csv_num(f, r->msgs_per_sec, ok);
		csv_num(f, (double)r->rtt.p50, pp);
		csv_num(f, (double)r->rtt.p99, pp);
		csv_num(f, (double)r->rtt.p999, pp);
		csv_num(f, (double)r->rtt.max, pp);
		csv_num(f, r->cpu_ns_per_msg[2], ok);
		csv_num(f, r->cpu_ns_per_msg[0], ok);
		csv_num(f, r->cpu_ns_per_msg[1], ok);
		csv_num(f, r->syscalls_per_msg[2], ok && r->syscalls_per_msg[2] >= 0);
		csv_num(f, r->faults_per_msg, ok);
		fprintf(f, ",%s,%s,%s,%s,%u", env->kernel,
			env->guest ? "true" : "false",
			env->emulated ? "true" : "false",
			placement_name(p[i].place), p[i].pairs);
		csv_num(f, r->setup_ns, ok && r->setup_ns >= 0);
		csv_num(f, r->idle_rss_bytes, ok && r->idle_rss_bytes >= 0);
		csv_num(f, r->fds[0], ok && r->fds[0] >= 0);
		csv_num(f, r->fds[1], ok && r->fds[1] >= 0);
		csv_num(f, r->memfd_bytes, ok && r->memfd_bytes >= 0);
		csv_num(f, r->kernel_bytes, ok && r->kernel_bytes >= 0);
		fan = mode_is_fan(p[i].mode);
		fprintf(f, ",%s", fan && fan_shape_name(p[i].m, p[i].mode) ?
			fan_shape_name(p[i].m, p[i].mode) : "");
		csv_num(f, r->consumer_msgs_per_sec, fan && ok);
		csv_num(f, r->consumer_bytes_per_sec, fan && ok);
		fputc('\n', f);
	}
}

/* ---- gnuplot ------------------------------------------------------- */

/*
 * A panel: the points of one placement and mode against size, or, for
 * the scale sweep (PLACE_PAIRS) and the fan modes (PLACE_FAN), of one
 * mode and size against the pairs or ends.
 */
struct panel {
	enum bench_placement place;
	unsigned int pairs;		/* not PLACE_PAIRS */
	enum bench_mode mode;
	size_t size;			/* PLACE_PAIRS */
};

static bool by_pairs(enum bench_placement place)
{
	return place == PLACE_PAIRS || place == PLACE_FAN;
}

static bool in_panel(const struct panel *pn, const struct point *p)
{
	if (p->place != pn->place || p->mode != pn->mode || p->res.status != RUN_OK)
		return false;
	return by_pairs(pn->place) ? p->size == pn->size : p->pairs == pn->pairs;
}

static int find_panels(const struct point *p, size_t n, struct panel *pn,
		       int max)
{
	int np = 0, k;
	size_t i;

	for (i = 0; i < n; i++) {
		struct panel c = { p[i].place, p[i].pairs, p[i].mode, p[i].size };

		if (p[i].res.status != RUN_OK)
			continue;
		if (by_pairs(c.place))
			c.pairs = 0;
		else
			c.size = 0;
		for (k = 0; k < np; k++)
			if (in_panel(&pn[k], &p[i]))
				break;
		if (k == np && np < max)
			pn[np++] = c;
	}
	return np;
}

static void plot_panel(FILE *gp, const struct panel *pn, const struct point *p,
		       size_t n)
{
	bool pp = mode_is_pingpong(pn->mode), scale = pn->place == PLACE_PAIRS;
	bool fan = pn->place == PLACE_FAN;
	const struct method *seen[32];
	int nseen = 0, k;
	char where[64], sz[32];
	size_t i;

	for (i = 0; i < n; i++) {
		if (!in_panel(pn, &p[i]))
			continue;
		for (k = 0; k < nseen && seen[k] != p[i].m; k++)
			;
		if (k == nseen && nseen < 32)
			seen[nseen++] = p[i].m;
	}
	fmt_size(sz, sizeof(sz), pn->size);
	if (fan)
		snprintf(where, sizeof(where), "%s, %s", pn->mode == MODE_FANIN ?
			 "N producers, one consumer" : "one producer, N consumers",
			 sz);
	else if (scale)
		snprintf(where, sizeof(where), "pairs at once, %s", sz);
	else if (pn->pairs > 1)
		snprintf(where, sizeof(where), "%s, %u pairs",
			 placement_name(pn->place), pn->pairs);
	else
		snprintf(where, sizeof(where), "%s", placement_name(pn->place));
	fprintf(gp, "set title '%s (%s): %s'\n", mode_name(pn->mode), where,
		fan ? "throughput in all (higher is better)" :
		pp ? "round trip p50 (lower is better)" :
		pn->mode == MODE_HANDOFF || scale ?
		"messages per second (higher is better)" :
		"throughput (higher is better)");
	fprintf(gp, "set ylabel '%s'\n", pp ? "p50 RTT (us)" :
		pn->mode == MODE_HANDOFF || scale ? "M msgs/s" : "GB/s");
	if (fan)
		fputs("set xlabel 'N (ends of the many side)'\nset xtics (1, 2, 4, 8, 16, 32, 64)\n", gp);
	else if (scale)
		fputs("set xlabel 'channel pairs at once'\nset xtics auto\n", gp);
	else
		fputs("set xlabel 'message size (bytes)'\n"
		      "set xtics ('64' 64, '256' 256, '1K' 1024, '4K' 4096, "
		      "'16K' 16384, '64K' 65536, '256K' 262144, '1M' 1048576, "
		      "'4M' 4194304, '16M' 16777216, '64M' 67108864, "
		      "'256M' 268435456)\n", gp);
	fputs("plot ", gp);
	for (k = 0; k < nseen; k++)
		fprintf(gp, "%s'-' using 1:2 with linespoints lw 2 title '%s%s%s%s'",
			k ? ", " : "", seen[k]->name,
			fan ? " (" : "", fan ? fan_how(seen[k], pn->mode) : "",
			fan ? ")" : "");
	fputc('\n', gp);
	for (k = 0; k < nseen; k++) {
		for (i = 0; i < n; i++) {
			const struct run_result *r = &p[i].res;

			if (!in_panel(pn, &p[i]) || p[i].m != seen[k])
				continue;
			fprintf(gp, "%zu %g\n", scale || fan ? (size_t)p[i].pairs : p[i].size,
				pp ? (double)r->rtt.p50 / 1e3 :
				pn->mode == MODE_HANDOFF || scale ?
				r->msgs_per_sec / 1e6 : r->bytes_per_sec / 1e9);
		}
		fputs("e\n", gp);
	}
}

/*
 * One panel per placement and mode present: throughput (GB/s) against
 * size for stream, messages per second (millions) for handoff, p50 round
 * trip (us) for the pingpong modes; for the scale sweep, messages per
 * second against the pairs at once.  One line per method, both axes
 * logarithmic.
 */
int out_plot(const char *png, const struct bench_env *env,
	     const struct point *p, size_t n)
{
	struct panel pn[48];
	int panels = find_panels(p, n, pn, 48), rows, k;
	FILE *gp;

	if (!panels) {
		fprintf(stderr, "zchan-bench: nothing to plot\n");
		return -1;
	}
	rows = (panels + 1) / 2;
	gp = popen("gnuplot", "w");
	if (!gp) {
		fprintf(stderr, "zchan-bench: cannot run gnuplot: %s\n",
			strerror(errno));
		return -1;
	}
	fprintf(gp, "set terminal pngcairo size %d,%d font ',10' noenhanced\n",
		panels > 1 ? 1400 : 800, 80 + 460 * rows);
	fprintf(gp, "set output '%s'\n", png);
	fprintf(gp, "set multiplot layout %d,%d title \"zchan-bench: %s, %d CPUs, "
		"Linux %s%s\"\n", rows, panels > 1 ? 2 : 1, env->cpu_model,
		env->ncpus, env->kernel,
		env->emulated ? " - EMULATED guest (TCG): relative only" :
		env->guest ? " (virtual machine)" : "");
	fputs("set logscale xy\nset grid\nset key top left\n", gp);
	for (k = 0; k < panels; k++)
		plot_panel(gp, &pn[k], p, n);
	fputs("unset multiplot\n", gp);
	if (pclose(gp)) {
		fprintf(stderr, "zchan-bench: gnuplot failed writing %s\n", png);
		return -1;
	}
	return 0;
}
