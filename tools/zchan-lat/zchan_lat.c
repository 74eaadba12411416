// SPDX-License-Identifier: GPL-2.0
/*
 * zchan-lat: log2 histograms of zchan wait latency (arm to wake) per role,
 * and of the consumer's kick-to-wake time, in the manner of runqlat.
 */
#include <argp.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "obs.h"
#include "zchan_lat.h"
#include "zchan_lat.skel.h"

static struct env {
	const char *channel;	/* -c NAME */
	pid_t pid;
	bool per_channel;
	bool milliseconds;
	bool timestamp;
	double interval;	/* 0: until Ctrl-C */
	long count;		/* 0: until Ctrl-C */
} env;

const char *argp_program_version = "zchan-lat 1.0";
const char argp_program_doc[] =
"Summarize zchan wait latency as log2 histograms.\n"
"\n"
"A wait lasts from the moment an end announces it will sleep (ZCHAN_IOC_WAIT,\n"
"or a queued io_uring WAIT) to its wake-up: one histogram per role\n"
"(producer: waiting for room, consumer: waiting for a message).  The\n"
"kick-to-wake histogram times the consumer's ZCHAN_IOC_WAIT from the\n"
"producer's kick (sent right after its commit) to the consumer running\n"
"again; io_uring waits end when the kick completes them, so they are not\n"
"in it.  poll/epoll sleeps are not seen.\n"
"\n"
"Channels of libzchan's memfd backend (used when zchan.ko is not loaded)\n"
"are not visible to the kernel and never counted.  Needs root, zchan.ko,\n"
"debugfs and tracefs mounted.\n"
"\n"
"USAGE: zchan-lat [-h] [-c NAME] [-p PID] [-C] [-m] [-T] [--json]\n"
"                 [interval] [count]\n"
"\n"
"EXAMPLES:\n"
"    zchan-lat              # all channels, until Ctrl-C\n"
"    zchan-lat 1 10         # print 1-second summaries, 10 times\n"
"    zchan-lat -m 5         # 5-second summaries in milliseconds\n"
"    zchan-lat -c frames    # only the channel(s) named frames\n"
"    zchan-lat -p 185       # only waits of process 185\n"
"    zchan-lat -C 2 1       # one histogram per channel and role\n"
"    zchan-lat --json 1 3   # three summaries as JSON, one per line\n";

static const struct argp_option opts[] = {
	{ "channel", 'c', "NAME", 0, "Only channels named NAME", 0 },
	{ "pid", 'p', "PID", 0, "Only waits of process PID", 0 },
	{ "per-channel", 'C', NULL, 0, "A histogram per channel", 0 },
	{ "milliseconds", 'm', NULL, 0, "Milliseconds (default: microseconds)", 0 },
	{ "timestamp", 'T', NULL, 0, "Print a timestamp with each summary", 0 },
	{},
};

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	char *end;
	long v;

	switch (key) {
	case 'c':
		if (!*arg || strlen(arg) >= OBS_NAME_MAX)
			argp_error(state, "invalid channel name: '%s'", arg);
		env.channel = arg;
		break;
	case 'p':
		errno = 0;
		v = strtol(arg, &end, 10);
		if (errno || end == arg || *end || v <= 0 || v > (1 << 30))
			argp_error(state, "invalid PID: %s", arg);
		env.pid = (pid_t)v;
		break;
	case 'C':
		env.per_channel = true;
		break;
	case 'm':
		env.milliseconds = true;
		break;
	case 'T':
		env.timestamp = true;
		break;
	case ARGP_KEY_ARG:
		errno = 0;
		if (state->arg_num == 0) {
			if (!obs_parse_interval(arg, &env.interval))
				argp_error(state, "invalid interval: %s (0.1 to 86400 seconds)", arg);
		} else if (state->arg_num == 1) {
			env.count = strtol(arg, &end, 10);
			if (errno || end == arg || *end || env.count <= 0)
				argp_error(state, "invalid count: %s", arg);
		} else {
			argp_error(state, "unexpected argument: %s", arg);
		}
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* -c: put the ids of the channels named env.channel into the ids map. */
static int refresh_ids(int ids_fd)
{
	struct obs_chan *chans;
	const __u8 one = 1;
	int n, i, found = 0;

	n = obs_read_chanstat(&chans);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		if (strcmp(chans[i].name, env.channel))
			continue;
		bpf_map_update_elem(ids_fd, &chans[i].id, &one, BPF_ANY);
		found++;
	}
	free(chans);
	return found;
}

static const char *name_of(const struct obs_chan *chans, int n, uint64_t id)
{
	int i;

	for (i = 0; i < n; i++)
		if (chans[i].id == id)
			return chans[i].name;
	return "?";	/* closed since */
}

static void print_summary(const struct obs_keyed_hist *h, int n)
{
	const char *unit = env.milliseconds ? "msecs" : "usecs";
	unsigned int div = env.milliseconds ? 1000 : 1;
	struct obs_chan *chans = NULL;
	char tbuf[16];
	time_t t = time(NULL);
	int nchans = 0, i;

	if (env.per_channel) {
		nchans = obs_read_chanstat(&chans);
		if (nchans < 0)
			nchans = 0;
	}
	if (obs_opts.json) {
		printf("{\"time\":%lld,\"unit\":\"%s\",\"histograms\":[",
		       (long long)t, unit);
		for (i = 0; i < n; i++) {
			printf("%s{\"role\":\"%s\",", i ? "," : "",
			       obs_role_name(h[i].key.role));
			if (env.per_channel) {
				printf("\"channel_id\":%llu,\"channel\":",
				       (unsigned long long)h[i].key.id);
				json_write_str(stdout, name_of(chans, nchans, h[i].key.id));
				putchar(',');
			}
			printf("\"hist\":");
			obs_json_hist(stdout, &h[i].hist, div);
			putchar('}');
		}
		printf("]}\n");
	} else {
		if (env.timestamp) {
			strftime(tbuf, sizeof(tbuf), "%H:%M:%S", localtime(&t));
			printf("%s\n", tbuf);
		}
		if (!n)
			printf("no zchan waits\n");
		for (i = 0; i < n; i++) {
			if (env.per_channel)
				printf("\nchannel = %s (id %llu), role = %s\n",
				       name_of(chans, nchans, h[i].key.id),
				       (unsigned long long)h[i].key.id,
				       obs_role_name(h[i].key.role));
			else
				printf("\nrole = %s\n", obs_role_name(h[i].key.role));
			obs_print_hist(stdout, &h[i].hist, unit, div);
		}
		printf("\n");
	}
	fflush(stdout);
	free(chans);
}

int main(int argc, char **argv)
{
	struct zchan_lat_bpf *obj;
	struct obs_keyed_hist *hists;
	double next_print, next_ids = 0, now;
	long printed = 0;
	int err, n;

	err = obs_parse_args(argc, argv, opts, parse_arg, argp_program_doc);
	if (err)
		return err;
	err = obs_check_env("zchan-lat", true);
	if (err)
		return err;
	if (env.pid && kill(env.pid, 0) && errno == ESRCH) {
		fprintf(stderr, "zchan-lat: no process %d\n", (int)env.pid);
		return OBS_EXIT_ERROR;
	}
	obs_start();

	obj = zchan_lat_bpf__open();
	if (!obj) {
		fprintf(stderr, "zchan-lat: opening the BPF object failed: %s\n",
			strerror(errno));
		return OBS_EXIT_ERROR;
	}
	obj->rodata->targ_tgid = env.pid;
	obj->rodata->filter_ids = !!env.channel;
	obj->rodata->per_channel = env.per_channel;
	err = zchan_lat_bpf__load(obj);
	if (err) {
		fprintf(stderr, "zchan-lat: loading the BPF programs failed: %s\n",
			strerror(-err));
		err = OBS_EXIT_ERROR;
		goto out;
	}
	err = zchan_lat_bpf__attach(obj);
	if (err) {
		fprintf(stderr, "zchan-lat: attaching to the zchan tracepoints failed: %s\n",
			strerror(-err));
		err = OBS_EXIT_ERROR;
		goto out;
	}
	if (env.channel && refresh_ids(bpf_map__fd(obj->maps.ids)) == 0)
		fprintf(stderr, "zchan-lat: no channel named %s yet; waiting for one\n",
			env.channel);
	if (!obs_opts.json)
		fprintf(stderr, "Tracing zchan waits... Hit Ctrl-C to end.\n");

	next_print = env.interval ? obs_now() + env.interval : 0;
	while (!obs_exiting) {
		/* Wake up often enough for -c to see new channels. */
		usleep(100000);
		now = obs_now();
		if (env.channel && now >= next_ids) {
			refresh_ids(bpf_map__fd(obj->maps.ids));
			next_ids = now + 0.5;
		}
		if (!env.interval || now < next_print)
			continue;
		next_print += env.interval;
		n = obs_take_hists(bpf_map__fd(obj->maps.hists), &hists);
		if (n < 0) {
			err = OBS_EXIT_ERROR;
			goto out;
		}
		print_summary(hists, n);
		free(hists);
		if (env.count && ++printed >= env.count)
			break;
	}
	if (!env.interval || obs_exiting) {
		n = obs_take_hists(bpf_map__fd(obj->maps.hists), &hists);
		if (n >= 0) {
			print_summary(hists, n);
			free(hists);
		}
	}
	err = 0;
out:
	zchan_lat_bpf__destroy(obj);
	return err;
}
