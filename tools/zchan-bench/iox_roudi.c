// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * iceoryx's daemon, RouDi, for the length of a sweep.  iceoryx 2.0 moves
 * messages through mempools that RouDi creates at start-up from a TOML
 * file, one pool per chunk size; a loan larger than every pool fails.  So
 * zchan-bench writes a configuration with a pool for exactly each message
 * size of the sweep (count: the subscriber queue plus the chunks a
 * publisher and a subscriber hold, iox_chunks()), starts iox-roudi with it
 * and stops it after the sweep - also when the sweep fails or zchan-bench
 * is interrupted (finish() runs from the signal handlers), or killed
 * (RouDi gets SIGTERM through PR_SET_PDEATHSIG).  RouDi removes its
 * /dev/shm segments and /tmp sockets when it stops on SIGTERM; if it has
 * to be killed, zchan-bench removes them.
 *
 * iceoryx 2.0 allows one RouDi per machine (its names in /dev/shm and /tmp
 * are fixed): a second zchan-bench waits for the first one's RouDi, and an
 * iox-roudi started by someone else makes the method unavailable, with
 * RouDi's own words as the reason.
 *
 * ZCHAN_BENCH_IOX_ROUDI names the daemon (default: iox-roudi in PATH).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "bench.h"

#define ROUDI_LOCK "/tmp/zchan-bench-iceoryx.lock"
#define ROUDI_READY "RouDi is ready for clients"
#define ROUDI_START_TIMEOUT_MS 30000
#define ROUDI_STOP_TIMEOUT_MS 10000
#define LOCK_TIMEOUT_MS 600000
/* iceoryx 2.0's MAX_NUMBER_OF_MEMPOOLS */
#define IOX_MAX_MEMPOOLS 32

/*
 * Everything stop() needs, prepared by start(), so that stop() only makes
 * async-signal-safe calls.
 */
static struct {
	pid_t pid;		/* 0: no RouDi of ours */
	pid_t owner;		/* the zchan-bench that started it */
	int lock_fd;
	char dir[PATH_MAX];
	char config[PATH_MAX];
	char log[PATH_MAX];
	char segment[PATH_MAX];	/* /dev/shm/<user segment>, from the log */
} roudi = { .lock_fd = -1 };

/* RouDi's own files, removed only when it could not remove them itself */
static const char *const roudi_files[] = {
	"/dev/shm/iceoryx_mgmt", "/tmp/roudi", "/tmp/roudi.lock",
	"/tmp/iox-unique-roudi.lock",
};

unsigned int iox_queue_capacity(size_t size)
{
	/*
	 * 32 MiB of queue and at least bench_inflight() messages (as
	 * zchan's pool), at most 256 (iceoryx's MAX_SUBSCRIBER_QUEUE_CAPACITY)
	 */
	size_t q = (32UL << 20) / (size ? size : 1);

	if (q < bench_inflight(size))
		q = bench_inflight(size);
	return q > 256 ? 256 : (unsigned int)q;
}

unsigned int iox_chunks(size_t size)
{
	/*
	 * A full queue, the chunk the subscriber holds and the one the
	 * publisher loans; the rest covers pingpong's two channels; as many
	 * times as pairs run at once.
	 */
	return (iox_queue_capacity(size) + 6) * bench_max_pairs;
}

/* iceoryx's chunk payloads are multiples of 8 bytes */
size_t iox_payload(size_t size)
{
	return (size + 7) / 8 * 8;
}

const char *iox_roudi_path(char *buf, size_t len)
{
	const char *env = getenv("ZCHAN_BENCH_IOX_ROUDI");
	const char *path = getenv("PATH");
	char *dirs, *d, *save = NULL;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return access(buf, X_OK) ? NULL : buf;
	}
	snprintf(buf, len, "iox-roudi");
	dirs = strdup(path && *path ? path : "/usr/bin:/bin");
	if (!dirs)
		return NULL;
	for (d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, len, "%s/iox-roudi", d);
		if (!access(buf, X_OK)) {
			free(dirs);
			return buf;
		}
	}
	free(dirs);
	snprintf(buf, len, "iox-roudi");
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

static int write_config(const size_t *sizes, int nsizes, char *why, size_t len)
{
	size_t sorted[64], last = 0;
	int i, npools = 0;
	FILE *f;

	if (nsizes > 64)
		nsizes = 64;
	for (i = 0; i < nsizes; i++)
		sorted[i] = iox_payload(sizes[i]);
	qsort(sorted, (size_t)nsizes, sizeof(sorted[0]), cmp_size);
	f = fopen(roudi.config, "w");
	if (!f) {
		snprintf(why, len, "%s: %s", roudi.config, strerror(errno));
		return -1;
	}
	fprintf(f, "# written by zchan-bench: one mempool per message size\n"
		"[general]\nversion = 1\n\n[[segment]]\n");
	for (i = 0; i < nsizes; i++) {
		if (sorted[i] == last)
			continue;	/* pools must grow strictly */
		last = sorted[i];
		if (sorted[i] > UINT32_MAX - 4096 || ++npools > IOX_MAX_MEMPOOLS) {
			fclose(f);
			snprintf(why, len, sorted[i] > UINT32_MAX - 4096 ?
				 "iceoryx chunks are below 4 GiB" :
				 "more sizes than iceoryx's 32 mempools");
			return -1;
		}
		fprintf(f, "\n[[segment.mempool]]\nsize = %zu\ncount = %u\n",
			sorted[i], iox_chunks(sorted[i]));
	}
	if (fclose(f)) {
		snprintf(why, len, "%s: %s", roudi.config, strerror(errno));
		return -1;
	}
	return 0;
}

/* The last line RouDi logged, without its colours, as a reason. */
static void log_tail(char *why, size_t len, const char *prefix)
{
	char line[512], last[512] = "";
	FILE *f = fopen(roudi.log, "r");

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (line[0] != '\n')
				snprintf(last, sizeof(last), "%s", line);
		fclose(f);
	}
	/* strip ANSI colour sequences and the newline */
	{
		char *r = last, *w = last;

		while (*r) {
			if (*r == '\033') {
				while (*r && *r != 'm')
					r++;
				if (*r)
					r++;
				continue;
			}
			if (*r != '\n')
				*w++ = *r;
			r++;
		}
		*w = '\0';
	}
	snprintf(why, len, "%s%s%s", prefix, last[0] ? ": " : "", last);
}

/* Ready, dead, or still starting (1). */
static int roudi_state(void)
{
	char line[512];
	FILE *f = fopen(roudi.log, "r");
	int ready = 0;

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *seg = strstr(line, "in the shared memory [");

			if (strstr(line, ROUDI_READY))
				ready = 1;
			if (seg && !strstr(seg, "[iceoryx_mgmt]")) {
				seg += strlen("in the shared memory [");
				seg[strcspn(seg, "]")] = '\0';
				snprintf(roudi.segment, sizeof(roudi.segment),
					 "/dev/shm/%s", seg);
			}
		}
		fclose(f);
	}
	if (ready)
		return 0;
	return waitpid(roudi.pid, NULL, WNOHANG) == roudi.pid ? -1 : 1;
}

/* One RouDi per machine: wait for another zchan-bench's to finish. */
static int take_lock(char *why, size_t len)
{
	long waited = 0;

	roudi.lock_fd = open(ROUDI_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (roudi.lock_fd < 0)
		roudi.lock_fd = open(ROUDI_LOCK, O_RDONLY | O_CLOEXEC);
	if (roudi.lock_fd < 0) {
		snprintf(why, len, "%s: %s", ROUDI_LOCK, strerror(errno));
		return -1;
	}
	while (flock(roudi.lock_fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK || waited >= LOCK_TIMEOUT_MS) {
			snprintf(why, len, "%s: %s", ROUDI_LOCK, errno == EWOULDBLOCK ?
				 "another zchan-bench keeps its iox-roudi running" :
				 strerror(errno));
			close(roudi.lock_fd);
			roudi.lock_fd = -1;
			return -1;
		}
		if (!waited)
			fprintf(stderr, "zchan-bench: iceoryx: waiting for another zchan-bench's iox-roudi (%s)\n",
				ROUDI_LOCK);
		sleep_ms(200);
		waited += 200;
	}
	return 0;
}

static void exec_roudi(const char *bin, pid_t parent)
{
	int fd;

	/* if zchan-bench dies, RouDi stops and cleans up */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
	fd = open(roudi.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		_exit(127);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, STDIN_FILENO);
	/* its own process group: a ^C reaches zchan-bench, which stops it */
	setpgid(0, 0);
	/* -k 2: on shutdown, SIGKILL apps 2 s after SIGTERM (default 45) */
	execl(bin, bin, "-c", roudi.config, "-l", "info", "-k", "2",
	      (char *)NULL);
	dprintf(STDERR_FILENO, "exec %s: %s\n", bin, strerror(errno));
	_exit(127);
}

int iox_roudi_start(const size_t *sizes, int nsizes, char *why, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	char bin[PATH_MAX];
	long waited;
	pid_t self = getpid();
	int st;

	if (roudi.pid)
		return 0;
	if (!iox_roudi_path(bin, sizeof(bin))) {
		snprintf(why, len, "%s not found (Debian package iceoryx)", bin);
		return -1;
	}
	if (take_lock(why, len))
		return -1;
	snprintf(roudi.dir, sizeof(roudi.dir), "%s/zchan-bench-iox.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(roudi.dir)) {
		snprintf(why, len, "mkdtemp %s: %s", roudi.dir, strerror(errno));
		roudi.dir[0] = '\0';
		goto err_unlock;
	}
	snprintf(roudi.config, sizeof(roudi.config), "%s/roudi.toml", roudi.dir);
	snprintf(roudi.log, sizeof(roudi.log), "%s/roudi.log", roudi.dir);
	if (write_config(sizes, nsizes, why, len))
		goto err_files;

	fflush(NULL);
	roudi.owner = self;
	roudi.pid = fork();
	if (roudi.pid < 0) {
		snprintf(why, len, "fork: %s", strerror(errno));
		roudi.pid = 0;
		goto err_files;
	}
	if (!roudi.pid)
		exec_roudi(bin, self);
	for (waited = 0; (st = roudi_state()) > 0; waited += 20) {
		if (waited >= ROUDI_START_TIMEOUT_MS) {
			log_tail(why, len, "iox-roudi not ready after 30 s");
			iox_roudi_stop();
			return -1;
		}
		sleep_ms(20);
	}
	if (st < 0) {
		log_tail(why, len, "iox-roudi exited");
		/* reaped by roudi_state(); what it found (another RouDi) is not ours */
		roudi.pid = 0;
		goto err_files;
	}
	return 0;

err_files:
	unlink(roudi.config);
	unlink(roudi.log);
	if (roudi.dir[0])
		rmdir(roudi.dir);
err_unlock:
	close(roudi.lock_fd);
	roudi.lock_fd = -1;
	return -1;
}

/* Async-signal-safe: called from the signal handlers too. */
void iox_roudi_stop(void)
{
	struct timespec tick = { 0, 10000000L };
	pid_t pid = roudi.pid;
	int waited, status = 0, clean;
	size_t i;

	if (!pid || getpid() != roudi.owner)
		return;
	kill(pid, SIGTERM);
	for (waited = 0; waitpid(pid, &status, WNOHANG) == 0; waited += 10) {
		if (waited >= ROUDI_STOP_TIMEOUT_MS) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		nanosleep(&tick, NULL);
	}
	roudi.pid = 0;
	/*
	 * RouDi 2.0 aborts in its shutdown when an application it knows of
	 * is already dead (kill(2) gives ESRCH: POSH__ROUDI_PROCESS_SHUTDOWN_
	 * FAILED) - as after a failed run whose children the watchdog killed.
	 * Whenever it did not exit by itself, what it leaves is ours to remove.
	 */
	clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!clean) {
		for (i = 0; i < sizeof(roudi_files) / sizeof(roudi_files[0]); i++)
			unlink(roudi_files[i]);
		if (roudi.segment[0])
			unlink(roudi.segment);
	}
	unlink(roudi.config);
	unlink(roudi.log);
	rmdir(roudi.dir);
	if (roudi.lock_fd >= 0)
		close(roudi.lock_fd);
	roudi.lock_fd = -1;
}
