// SPDX-License-Identifier: GPL-2.0
/*
 * zchan-top and zchan-lat: environment checks, chanstat, fdinfo, record
 * layout check and histograms (see obs.h).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "obs.h"

struct obs_opts obs_opts;
volatile sig_atomic_t obs_exiting;

#define OBS_OPT_JSON	1000

static const struct argp_option obs_common_options[] = {
	{ "json", OBS_OPT_JSON, NULL, 0, "JSON output: one object per line", 0 },
	{ "verbose", 'v', NULL, 0, "Show libbpf's messages", 0 },
	{ NULL, 'h', NULL, OPTION_HIDDEN, "Show the full help", 0 },
	{},
};

static error_t obs_common_parse(int key, char *arg, struct argp_state *state)
{
	switch (key) {
	case OBS_OPT_JSON:
		obs_opts.json = true;
		break;
	case 'v':
		obs_opts.verbose = true;
		break;
	case 'h':
		argp_state_help(state, stderr, ARGP_HELP_STD_HELP);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static const struct argp obs_common_argp = {
	.options = obs_common_options,
	.parser = obs_common_parse,
};

int obs_parse_args(int argc, char **argv, const struct argp_option *options,
		   argp_parser_t parser, const char *doc)
{
	static const struct argp_child children[] = {
		{ &obs_common_argp, 0, NULL, 0 },
		{},
	};
	const struct argp argp = {
		.options = options,
		.parser = parser,
		.doc = doc,
		.children = children,
	};

	argp_err_exit_status = OBS_EXIT_USAGE;
	return argp_parse(&argp, argc, argv, 0, NULL, NULL) ? OBS_EXIT_USAGE : 0;
}

bool obs_parse_interval(const char *arg, double *secs)
{
	char *end;

	errno = 0;
	*secs = strtod(arg, &end);
	return !errno && end != arg && !*end && *secs >= 0.1 && *secs <= 86400;
}

static int obs_libbpf_print(enum libbpf_print_level level, const char *fmt,
			    va_list args)
{
	if (level != LIBBPF_WARN && !obs_opts.verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static void obs_signal(int sig)
{
	obs_exiting = 1;
}

void obs_start(void)
{
	libbpf_set_print(obs_libbpf_print);
	signal(SIGINT, obs_signal);
	signal(SIGTERM, obs_signal);
}

static const char *const obs_tracefs_dirs[] = {
	"/sys/kernel/tracing",
	"/sys/kernel/debug/tracing",
};

/* The events/zchan directory of a mounted tracefs, or NULL. */
static const char *obs_zchan_events(bool *have_tracefs)
{
	static char path[128];
	size_t i;

	*have_tracefs = false;
	for (i = 0; i < sizeof(obs_tracefs_dirs) / sizeof(obs_tracefs_dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/events", obs_tracefs_dirs[i]);
		if (access(path, F_OK))
			continue;
		*have_tracefs = true;
		snprintf(path, sizeof(path), "%s/events/zchan", obs_tracefs_dirs[i]);
		if (!access(path, F_OK))
			return path;
	}
	return NULL;
}

/* Offset and size of @field in events/zchan/@event/format, or -1. */
static int obs_field(const char *events, const char *event, const char *field,
		     int *size)
{
	char path[256], line[512], want[80];
	int off = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/format", events, event);
	f = fopen(path, "r");
	if (!f)
		return -1;
	snprintf(want, sizeof(want), " %s;", field);
	while (fgets(line, sizeof(line), f)) {
		char *decl = strstr(line, "field:"), *semi, *o, *s;

		if (!decl || !(semi = strchr(decl, ';')))
			continue;
		/* "field:u64 id;" - the name is the last word before ';' */
		*semi = '\0';
		decl = strrchr(decl, ' ');
		if (!decl || strcmp(decl + 1, field))
			continue;
		o = strstr(semi + 1, "offset:");
		s = strstr(semi + 1, "size:");
		if (o && s) {
			off = atoi(o + 7);
			*size = atoi(s + 5);
		}
		break;
	}
	fclose(f);
	return off;
}

struct obs_field_spec {
	const char *event, *field;
	size_t off, size;
};

#define OBS_FIELD(ev, type, fld) \
	{ ev, #fld, offsetof(struct type, fld), sizeof(((struct type *)0)->fld) }

static const struct obs_field_spec obs_fields[] = {
	OBS_FIELD("zchan_wait_begin", zchan_tp_wait_begin, id),
	OBS_FIELD("zchan_wait_begin", zchan_tp_wait_begin, cookie),
	OBS_FIELD("zchan_wait_begin", zchan_tp_wait_begin, role),
	OBS_FIELD("zchan_wait_begin", zchan_tp_wait_begin, kind),
	OBS_FIELD("zchan_wait_end", zchan_tp_wait_end, id),
	OBS_FIELD("zchan_wait_end", zchan_tp_wait_end, cookie),
	OBS_FIELD("zchan_wait_end", zchan_tp_wait_end, role),
	OBS_FIELD("zchan_wait_end", zchan_tp_wait_end, kind),
	OBS_FIELD("zchan_wait_end", zchan_tp_wait_end, reason),
	OBS_FIELD("zchan_kick", zchan_tp_kick, id),
	OBS_FIELD("zchan_kick", zchan_tp_kick, role),
	OBS_FIELD("zchan_kick", zchan_tp_kick, armed),
};

/* The records must be laid out as zchan_tp.h says. */
static int obs_check_formats(const char *prog, const char *events)
{
	size_t i;

	for (i = 0; i < sizeof(obs_fields) / sizeof(obs_fields[0]); i++) {
		const struct obs_field_spec *s = &obs_fields[i];
		int size = 0, off = obs_field(events, s->event, s->field, &size);

		if (off < 0) {
			fprintf(stderr, "%s: %s/%s/format has no field '%s': zchan.ko is older or newer than this tool\n",
				prog, events, s->event, s->field);
			return OBS_EXIT_ERROR;
		}
		if ((size_t)off != s->off || (size_t)size != s->size) {
			fprintf(stderr, "%s: %s/%s/format: field '%s' at offset %d size %d, this tool expects %zu and %zu: rebuild it with this zchan.ko\n",
				prog, events, s->event, s->field, off, size,
				s->off, s->size);
			return OBS_EXIT_ERROR;
		}
	}
	return 0;
}

int obs_check_env(const char *prog, bool need_bpf)
{
	const char *events;
	bool have_tracefs;

	if (geteuid() != 0) {
		fprintf(stderr, "%s: must be run as root (it reads debugfs%s)\n",
			prog, need_bpf ? " and loads BPF programs" : "");
		return OBS_EXIT_ERROR;
	}
	if (access("/sys/module/zchan", F_OK)) {
		fprintf(stderr, "%s: zchan.ko is not loaded (modprobe zchan); channels of libzchan's memfd backend are never visible to the kernel\n",
			prog);
		return OBS_EXIT_ERROR;
	}
	if (access(OBS_CHANSTAT, R_OK)) {
		if (access("/sys/kernel/debug/zchan", F_OK))
			fprintf(stderr, "%s: debugfs is not mounted (mount -t debugfs none /sys/kernel/debug)\n",
				prog);
		else
			fprintf(stderr, "%s: %s: %s (a zchan.ko older than this tool?)\n",
				prog, OBS_CHANSTAT, strerror(errno));
		return OBS_EXIT_ERROR;
	}
	if (!need_bpf)
		return 0;
	events = obs_zchan_events(&have_tracefs);
	if (!events) {
		if (have_tracefs)
			fprintf(stderr, "%s: zchan.ko has no tracepoints (events/zchan): it is older than this tool\n",
				prog);
		else
			fprintf(stderr, "%s: tracefs is not mounted (mount -t tracefs none /sys/kernel/tracing)\n",
				prog);
		return OBS_EXIT_ERROR;
	}
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACEPOINT, NULL) != 1) {
		fprintf(stderr, "%s: this kernel cannot run BPF tracepoint programs (it needs CONFIG_BPF_SYSCALL and CONFIG_BPF_EVENTS)\n",
			prog);
		return OBS_EXIT_ERROR;
	}
	return obs_check_formats(prog, events);
}

/* Index of each chanstat column we use, by name; -1 if absent. */
enum {
	COL_ID, COL_NAME, COL_PROD_OPEN, COL_CONS_OPEN, COL_RING_ENTRIES,
	COL_POOL_SIZE, COL_PUBLISHED, COL_TAKEN, COL_RELEASED, COL_BACKLOG,
	COL_QUEUED_BYTES, COL_KICKS, COL_WAITS, COL_RECENT_MSGS,
	COL_RECENT_BYTES, NR_COLS
};

static const char *const obs_col_names[NR_COLS] = {
	"id", "name", "prod_open", "cons_open", "ring_entries", "pool_size",
	"published", "taken", "released", "backlog", "queued_bytes", "kicks",
	"waits", "recent_msgs", "recent_bytes",
};

#define OBS_MAX_WORDS	64

static int obs_split(char *line, char **words)
{
	int n = 0;
	char *save, *w;

	for (w = strtok_r(line, " \n", &save); w && n < OBS_MAX_WORDS;
	     w = strtok_r(NULL, " \n", &save))
		words[n++] = w;
	return n;
}

static void obs_fill_chan(struct obs_chan *c, char **words, int nwords,
			  const int *col)
{
	uint64_t v[NR_COLS] = { 0 };
	int i;

	for (i = 0; i < NR_COLS; i++)
		if (i != COL_NAME && col[i] >= 0 && col[i] < nwords)
			v[i] = strtoull(words[col[i]], NULL, 10);
	memset(c, 0, sizeof(*c));
	c->id = v[COL_ID];
	if (col[COL_NAME] >= 0 && col[COL_NAME] < nwords)
		snprintf(c->name, sizeof(c->name), "%s", words[col[COL_NAME]]);
	c->prod_open = v[COL_PROD_OPEN];
	c->cons_open = v[COL_CONS_OPEN];
	c->ring_entries = v[COL_RING_ENTRIES];
	c->pool_size = v[COL_POOL_SIZE];
	c->published = v[COL_PUBLISHED];
	c->taken = v[COL_TAKEN];
	c->released = v[COL_RELEASED];
	c->backlog = v[COL_BACKLOG];
	c->queued_bytes = v[COL_QUEUED_BYTES];
	c->kicks = v[COL_KICKS];
	c->waits = v[COL_WAITS];
	c->recent_msgs = v[COL_RECENT_MSGS];
	c->recent_bytes = v[COL_RECENT_BYTES];
}

int obs_read_chanstat(struct obs_chan **chans)
{
	int col[NR_COLS], n = 0, cap = 0, nwords, i, j;
	struct obs_chan *arr = NULL, *tmp;
	char line[1024], *words[OBS_MAX_WORDS];
	FILE *f;

	*chans = NULL;
	f = fopen(OBS_CHANSTAT, "r");
	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return -EIO;
	}
	nwords = obs_split(line, words);
	for (i = 0; i < NR_COLS; i++) {
		col[i] = -1;
		for (j = 0; j < nwords; j++)
			if (!strcmp(words[j], obs_col_names[i]))
				col[i] = j;
	}
	if (col[COL_ID] < 0) {
		fclose(f);
		return -EPROTO;
	}
	while (fgets(line, sizeof(line), f)) {
		nwords = obs_split(line, words);
		if (!nwords)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			tmp = realloc(arr, cap * sizeof(*arr));
			if (!tmp) {
				free(arr);
				fclose(f);
				return -ENOMEM;
			}
			arr = tmp;
		}
		obs_fill_chan(&arr[n++], words, nwords, col);
	}
	fclose(f);
	*chans = arr;
	return n;
}

static int obs_cmp_ends(const void *a, const void *b)
{
	const struct obs_end *ea = a, *eb = b;

	if (ea->id != eb->id)
		return ea->id < eb->id ? -1 : 1;
	return ea->lane < eb->lane ? -1 : ea->lane > eb->lane;
}

/* "id role lane state published taken released", the consumer's skipped. */
int obs_read_ends(struct obs_end **ends)
{
	char line[256], *words[OBS_MAX_WORDS];
	struct obs_end *arr = NULL, *tmp, *e;
	int n = 0, cap = 0, nwords;
	FILE *f;

	*ends = NULL;
	f = fopen(OBS_ENDS, "r");
	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return -EIO;
	}
	nwords = obs_split(line, words);
	if (nwords < 7 || strcmp(words[0], "id") || strcmp(words[1], "role") ||
	    strcmp(words[2], "lane") || strcmp(words[3], "state") ||
	    strcmp(words[4], "published") || strcmp(words[6], "released")) {
		fclose(f);
		return -EPROTO;
	}
	while (fgets(line, sizeof(line), f)) {
		nwords = obs_split(line, words);
		if (nwords < 7 || strcmp(words[1], "producer") ||
		    !isdigit((unsigned char)words[2][0]))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			tmp = realloc(arr, cap * sizeof(*arr));
			if (!tmp) {
				free(arr);
				fclose(f);
				return -ENOMEM;
			}
			arr = tmp;
		}
		e = &arr[n++];
		e->id = strtoull(words[0], NULL, 10);
		e->lane = (unsigned int)strtoul(words[2], NULL, 10);
		snprintf(e->state, sizeof(e->state), "%s", words[3]);
		e->published = (uint32_t)strtoul(words[4], NULL, 10);
		e->taken = (uint32_t)strtoul(words[5], NULL, 10);
		e->released = (uint32_t)strtoul(words[6], NULL, 10);
	}
	fclose(f);
	qsort(arr, n, sizeof(*arr), obs_cmp_ends);
	*ends = arr;
	return n;
}

/* Role, channel and lane (-1: none) of one fdinfo file, if a channel's. */
static bool obs_fdinfo(const char *path, int *role, uint64_t *id, int *lane)
{
	char line[256];
	bool have_id = false;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	*role = 0;
	*lane = -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "zchan-role:", 11)) {
			if (strstr(line, "producer"))
				*role = ZCHAN_TP_PRODUCER;
			else if (strstr(line, "consumer"))
				*role = ZCHAN_TP_CONSUMER;
		} else if (!strncmp(line, "zchan-id:", 9)) {
			*id = strtoull(line + 9, NULL, 10);
			have_id = true;
		} else if (!strncmp(line, "zchan-lane:", 11)) {
			*lane = atoi(line + 11);
		}
	}
	fclose(f);
	return have_id && *role;
}

/* Is /proc/@pid/fd/@fd a zchan file? (only those get their fdinfo read) */
static bool obs_is_zchan_fd(const char *pid, const char *fd)
{
	char path[PATH_MAX], target[128];
	ssize_t len;

	snprintf(path, sizeof(path), "/proc/%s/fd/%s", pid, fd);
	len = readlink(path, target, sizeof(target) - 1);
	if (len <= 0)
		return false;
	target[len] = '\0';
	return !strcmp(target, "/dev/zchan") || !strcmp(target, "anon_inode:[zchan]");
}

static void obs_comm(const char *pid, char *comm)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/comm", pid);
	comm[0] = '\0';
	f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(comm, OBS_COMM_MAX, f))
		comm[strcspn(comm, "\n")] = '\0';
	fclose(f);
}

static int obs_add_holder(struct obs_holder **arr, int *n, int *cap,
			  const struct obs_holder *h)
{
	struct obs_holder *tmp;
	int i;

	/* One entry per process and end, however many fds it has. */
	for (i = 0; i < *n; i++)
		if ((*arr)[i].pid == h->pid && (*arr)[i].id == h->id &&
		    (*arr)[i].role == h->role && (*arr)[i].lane == h->lane)
			return 0;
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		tmp = realloc(*arr, *cap * sizeof(**arr));
		if (!tmp)
			return -ENOMEM;
		*arr = tmp;
	}
	(*arr)[(*n)++] = *h;
	return 0;
}

int obs_scan_holders(struct obs_holder **holders)
{
	struct obs_holder *arr = NULL, h;
	struct dirent *p, *fd;
	int n = 0, cap = 0;
	DIR *proc, *fds;
	char path[PATH_MAX];

	*holders = NULL;
	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while ((p = readdir(proc))) {
		if (!isdigit((unsigned char)p->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
		fds = opendir(path);
		if (!fds)
			continue;	/* gone, or a kernel thread */
		while ((fd = readdir(fds))) {
			if (fd->d_name[0] == '.' || !obs_is_zchan_fd(p->d_name, fd->d_name))
				continue;
			snprintf(path, sizeof(path), "/proc/%s/fdinfo/%s",
				 p->d_name, fd->d_name);
			memset(&h, 0, sizeof(h));
			if (!obs_fdinfo(path, &h.role, &h.id, &h.lane))
				continue;
			h.pid = atoi(p->d_name);
			obs_comm(p->d_name, h.comm);
			if (obs_add_holder(&arr, &n, &cap, &h)) {
				closedir(fds);
				closedir(proc);
				free(arr);
				return -ENOMEM;
			}
		}
		closedir(fds);
	}
	closedir(proc);
	*holders = arr;
	return n;
}

static int obs_cmp_hists(const void *a, const void *b)
{
	const struct zchan_hist_key *ka = &((const struct obs_keyed_hist *)a)->key;
	const struct zchan_hist_key *kb = &((const struct obs_keyed_hist *)b)->key;

	if (ka->id != kb->id)
		return ka->id < kb->id ? -1 : 1;
	return (int)ka->role - (int)kb->role;
}

/* Take (read and delete) every histogram of the map; count or -errno. */
int obs_take_hists(int fd, struct obs_keyed_hist **out)
{
	struct obs_keyed_hist *arr = NULL, *tmp;
	struct zchan_hist_key next;
	int n = 0, cap = 0;

	while (!bpf_map_get_next_key(fd, NULL, &next)) {
		if (n == cap) {
			cap = cap ? 2 * cap : 8;
			tmp = realloc(arr, cap * sizeof(*arr));
			if (!tmp) {
				free(arr);
				return -ENOMEM;
			}
			arr = tmp;
		}
		arr[n].key = next;
		if (!bpf_map_lookup_and_delete_elem(fd, &next, &arr[n].hist) ||
		    (!bpf_map_lookup_elem(fd, &next, &arr[n].hist) &&
		     !bpf_map_delete_elem(fd, &next)))
			n++;
		else
			break;
	}
	qsort(arr, n, sizeof(*arr), obs_cmp_hists);
	*out = arr;
	return n;
}

uint64_t obs_hist_total(const struct zchan_hist *h)
{
	uint64_t total = 0;
	int i;

	for (i = 0; i < ZCHAN_HIST_SLOTS; i++)
		total += h->slots[i];
	return total;
}

void obs_hist_add(struct zchan_hist *sum, const struct zchan_hist *h)
{
	int i;

	for (i = 0; i < ZCHAN_HIST_SLOTS; i++)
		sum->slots[i] += h->slots[i];
}

/* Slot i holds [2^(i-1), 2^i - 1] (slot 0: 0). */
static uint64_t obs_slot_low(int i)
{
	return i ? 1ULL << (i - 1) : 0;
}

static uint64_t obs_slot_high(int i)
{
	return i ? (1ULL << i) - 1 : 0;
}

uint64_t obs_hist_percentile(const struct zchan_hist *h, double pct)
{
	uint64_t total = obs_hist_total(h), seen = 0;
	double want = total * pct / 100.0;
	int i;

	if (!total)
		return 0;
	for (i = 0; i < ZCHAN_HIST_SLOTS; i++) {
		seen += h->slots[i];
		if (seen && seen >= want)
			return obs_slot_high(i);
	}
	return obs_slot_high(ZCHAN_HIST_SLOTS - 1);
}

/* Slots [first, last] that hold counts; false if none does. */
static bool obs_hist_range(const struct zchan_hist *h, int *first, int *last)
{
	int i;

	*first = -1;
	*last = -1;
	for (i = 0; i < ZCHAN_HIST_SLOTS; i++) {
		if (!h->slots[i])
			continue;
		if (*first < 0)
			*first = i;
		*last = i;
	}
	return *first >= 0;
}

/* As runqlat prints them: one row per slot, a bar scaled to the largest. */
void obs_print_hist(FILE *f, const struct zchan_hist *h, const char *unit,
		    unsigned int divisor)
{
	const int width = 40;
	uint32_t max = 0;
	int first, last, i, j, bar;

	if (!obs_hist_range(h, &first, &last)) {
		fprintf(f, "     (no waits)\n");
		return;
	}
	for (i = first; i <= last; i++)
		if (h->slots[i] > max)
			max = h->slots[i];
	fprintf(f, "%*s%-*s : count    distribution\n", 10, "", 16, unit);
	for (i = first; i <= last; i++) {
		fprintf(f, "%12llu -> %-12llu : %-8u |",
			(unsigned long long)(obs_slot_low(i) / divisor),
			(unsigned long long)(obs_slot_high(i) / divisor),
			h->slots[i]);
		bar = (int)((uint64_t)h->slots[i] * width / max);
		for (j = 0; j < width; j++)
			fputc(j < bar ? '*' : ' ', f);
		fputs("|\n", f);
	}
}

void obs_json_hist(FILE *f, const struct zchan_hist *h, unsigned int divisor)
{
	int first, last, i;
	bool comma = false;

	fprintf(f, "{\"total\":%llu,\"p50\":%llu,\"p99\":%llu,\"buckets\":[",
		(unsigned long long)obs_hist_total(h),
		(unsigned long long)(obs_hist_percentile(h, 50) / divisor),
		(unsigned long long)(obs_hist_percentile(h, 99) / divisor));
	if (obs_hist_range(h, &first, &last)) {
		for (i = first; i <= last; i++) {
			fprintf(f, "%s{\"low\":%llu,\"high\":%llu,\"count\":%u}",
				comma ? "," : "",
				(unsigned long long)(obs_slot_low(i) / divisor),
				(unsigned long long)(obs_slot_high(i) / divisor),
				h->slots[i]);
			comma = true;
		}
	}
	fputs("]}", f);
}

const char *obs_role_name(int role)
{
	switch (role) {
	case ZCHAN_TP_PRODUCER:
		return "producer";
	case ZCHAN_TP_CONSUMER:
		return "consumer";
	case ZCHAN_TP_WAKE:
		return "kick-to-wake";
	}
	return "all";
}

double obs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
