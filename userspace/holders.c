// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * memfd backend: which processes hold an end (its holders), so that it
 * closes the way a kernel end does.
 *
 * An end stays open while it has a holder.  Each holder writes one word,
 * (start time << 22) | pid, into the holders table of its end's memfd
 * page (struct zchan_memfd_end) and counts itself in @state;
 * zchan_close() takes it out again, and the last one to leave sets
 * ZCHAN_HOLDERS_CLOSED in the same compare-and-swap, so no process can
 * start holding an end that is being closed.  A process that dies leaves its word:
 * the peer watches every word's process with a pidfd (in its epoll fd, so
 * a death wakes it) and counts the end gone once none of them lives.  A
 * child that merely inherited the descriptors never writes a word, so it
 * neither keeps the end open nor ends it.
 *
 * The start time tells a recycled pid from the process that wrote it.  When
 * the two ends live in different pid namespaces, or pidfds are missing,
 * the peer falls back to the liveness socket (the end is gone when every
 * process holding it is).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zchan_int.h"

#define HOLDER_PID_BITS	22	/* PID_MAX_LIMIT is 1 << 22 */
#define HOLDER_PID_MASK	((1ULL << HOLDER_PID_BITS) - 1)

#define cas(p, old, new) \
	__atomic_compare_exchange_n((p), (old), (new), false, \
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)

/*
 * Field 22 of /proc/PID/stat, the start time in clock ticks; 0 if unknown.
 * Adds the system calls it made to *@calls.
 */
static uint64_t proc_start_time(pid_t pid, unsigned int *calls)
{
	char path[64], buf[512], *p;
	unsigned long long start = 0;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = __sys_open(path, O_RDONLY | O_CLOEXEC);
	*calls += 1;
	if (fd < 0)
		return 0;
	n = __sys_read(fd, buf, sizeof(buf) - 1);
	__sys_close(fd);
	*calls += 2;
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');		/* the name may hold spaces */
	for (field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p)
		start = __zchan_keep_errno(strtoull(p + 1, NULL, 10));
	return start & (~0ULL >> HOLDER_PID_BITS);
}

/*
 * The inode of our pid namespace, asked once per process: a process never
 * changes its own (a child that unshare(CLONE_NEWPID) puts in another has
 * another pid).
 */
uint64_t __zchan_holders_pidns(void)
{
	static uint64_t cached_ns;
	static pid_t cached_pid;
	pid_t pid = getpid();
	struct stat st;
	uint64_t ns;

	if (__atomic_load_n(&cached_pid, __ATOMIC_ACQUIRE) == pid)
		return __atomic_load_n(&cached_ns, __ATOMIC_RELAXED);
	ns = __sys_stat("/proc/self/ns/pid", &st) ? 0 : (uint64_t)st.st_ino;
	__atomic_store_n(&cached_ns, ns, __ATOMIC_RELAXED);
	__atomic_store_n(&cached_pid, pid, __ATOMIC_RELEASE);
	return ns;
}

/* Is the process that wrote @entry gone (a recycled pid counts as gone)? */
static bool entry_dead(uint64_t entry)
{
	pid_t pid = (pid_t)(entry & HOLDER_PID_MASK);
	uint64_t start = entry >> HOLDER_PID_BITS;
	unsigned int calls = 0;

	if (__sys_kill(pid, 0) == -ESRCH)
		return true;
	return start && proc_start_time(pid, &calls) != start;
}

/* Count one more holder, unless the end is closed. */
static bool holders_get(struct zchan_memfd_end *end)
{
	uint64_t s = __atomic_load_n(&end->state, __ATOMIC_SEQ_CST);

	do {
		if (s & ZCHAN_HOLDERS_CLOSED)
			return false;
	} while (!cas(&end->state, &s, s + 1));
	return true;
}

/* Count one holder less; true if it was the last and the end is now closed. */
static bool holders_put(struct zchan_memfd_end *end)
{
	uint64_t s = __atomic_load_n(&end->state, __ATOMIC_SEQ_CST), n;

	do {
		if (s & ZCHAN_HOLDERS_CLOSED)
			return false;
		n = (s & ~ZCHAN_HOLDERS_CLOSED) - 1;
		if (!n)
			n = ZCHAN_HOLDERS_CLOSED;
	} while (!cas(&end->state, &s, n));
	return n == ZCHAN_HOLDERS_CLOSED;
}

/*
 * This process's holders[] word, read from /proc once per process (every
 * end of every channel writes it; a forked child has another pid).
 */
static uint64_t own_entry(void)
{
	static uint64_t cached;
	pid_t pid = getpid();
	uint64_t entry = __atomic_load_n(&cached, __ATOMIC_RELAXED);
	unsigned int calls = 0;

	if ((entry & HOLDER_PID_MASK) == (uint64_t)pid)
		return entry;
	entry = (proc_start_time(pid, &calls) << HOLDER_PID_BITS) | (uint64_t)pid;
	__atomic_store_n(&cached, entry, __ATOMIC_RELAXED);
	return entry;
}

/*
 * This process starts holding @z's end: -EPIPE if the end was closed
 * already (by its last holder), -EUSERS if ZCHAN_MEMFD_HOLDERS live
 * processes hold it.
 */
int __zchan_holders_add(struct zchan *z)
{
	struct zchan_memfd_end *end = z->memfd.own_end;
	uint64_t entry = own_entry(), old;
	int i;

	if (!holders_get(end))
		return -EPIPE;
	for (i = 0; i < ZCHAN_MEMFD_HOLDERS; i++) {
		old = 0;
		if (cas(&end->holders[i], &old, entry))
			goto found;
	}
	/* Full: take the word of a process that died without closing. */
	for (i = 0; i < ZCHAN_MEMFD_HOLDERS; i++) {
		old = __atomic_load_n(&end->holders[i], __ATOMIC_SEQ_CST);
		if (old && entry_dead(old) && cas(&end->holders[i], &old, entry)) {
			holders_put(end);		/* it was counted, still is */
			goto found;
		}
	}
	if (holders_put(end))
		store_release(z->own_closed, 1);
	return -EUSERS;
found:
	z->memfd.holder_slot = i;
	z->memfd.holder_entry = entry;
	return 0;
}

/* This process stops holding the end; true if it was the last holder. */
bool __zchan_holders_remove(struct zchan *z)
{
	uint64_t old = z->memfd.holder_entry;

	if (z->memfd.holder_slot < 0)
		return false;
	cas(&z->memfd.own_end->holders[z->memfd.holder_slot], &old, 0);
	z->memfd.holder_slot = -1;
	return holders_put(z->memfd.own_end);
}

/* Stop polling watch @i's process: it died (its pidfd stays readable). */
static void watch_dead(struct zchan *z, unsigned int i)
{
	if (z->memfd.watch[i].pidfd < 0)
		return;
	__sys_epoll_ctl(z->fd, EPOLL_CTL_DEL, z->memfd.watch[i].pidfd, NULL);
	__sys_close(z->memfd.watch[i].pidfd);
	__zchan_count_syscalls(z, 2);
	z->memfd.watch[i].pidfd = -1;
}

static void unwatch(struct zchan *z, unsigned int i)
{
	watch_dead(z, i);
	z->memfd.watch[i] = z->memfd.watch[--z->memfd.nwatch];
}

/*
 * Closing the handle: only close our pidfds, no EPOLL_CTL_DEL; the epoll
 * fd may be shared with the process we forked from, and goes with them.
 */
void __zchan_holders_unwatch(struct zchan *z)
{
	while (z->memfd.nwatch) {
		int pidfd = z->memfd.watch[--z->memfd.nwatch].pidfd;

		if (pidfd >= 0)
			__sys_close(pidfd);
	}
}

/* pidfd_open() said ENOSYS once: do not ask for every word. */
static bool no_pidfds;

/*
 * Watch the process of a new holders[] word: false if it is already gone.
 * Its system calls count as the waits' (zchan_stats): a sleep makes them.
 */
static bool watch(struct zchan *z, uint64_t entry)
{
	pid_t pid = (pid_t)(entry & HOLDER_PID_MASK);
	uint64_t start = entry >> HOLDER_PID_BITS;
	unsigned int calls = 1;
	struct epoll_event ev;
	bool ret = true;
	int pidfd;

	if (__atomic_load_n(&no_pidfds, __ATOMIC_RELAXED))
		return true;
	pidfd = __sys_pidfd_open(pid, 0);
	if (pidfd < 0) {
		__zchan_count_syscalls(z, calls);
		if (pidfd == -ENOSYS)	/* before 5.3, or valgrind */
			__atomic_store_n(&no_pidfds, true, __ATOMIC_RELAXED);
		return pidfd != -ESRCH;	/* no pidfds: the socket tells */
	}
	/* the pidfd is now this very process: is it the one that wrote? */
	if (start && proc_start_time(pid, &calls) != start) {
		ret = false;
		goto close;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;		/* readable once the process exits */
	ev.data.fd = pidfd;
	if (z->memfd.nwatch == ZCHAN_MEMFD_HOLDERS)
		goto close;
	calls++;
	if (__sys_epoll_ctl(z->fd, EPOLL_CTL_ADD, pidfd, &ev) < 0)
		goto close;
	z->memfd.watch[z->memfd.nwatch].entry = entry;
	z->memfd.watch[z->memfd.nwatch].pidfd = pidfd;
	z->memfd.watch[z->memfd.nwatch].seen = true;
	z->memfd.nwatch++;
	__zchan_count_syscalls(z, calls);
	return true;
close:
	__sys_close(pidfd);
	__zchan_count_syscalls(z, calls + 1);
	return ret;
}

/*
 * Bring the watch list up to date with the peer end's table of holders and
 * fill @pfd with one entry per watched process; returns how many.  *@any:
 * the table names a holder; *@live: one is alive but has no pidfd to ask.
 * The table may be hostile: garbage words only make us watch other
 * processes.
 */
static unsigned int watch_peer_holders(struct zchan *z, struct pollfd *pfd,
				     bool *any, bool *live)
{
	unsigned int i, w;
	uint64_t e;

	for (w = 0; w < z->memfd.nwatch; w++)
		z->memfd.watch[w].seen = false;
	for (i = 0; i < ZCHAN_MEMFD_HOLDERS; i++) {
		e = __atomic_load_n(&z->memfd.peer_end->holders[i], __ATOMIC_ACQUIRE);
		if (!e)
			continue;
		*any = true;
		for (w = 0; w < z->memfd.nwatch; w++)
			if (z->memfd.watch[w].entry == e)
				break;
		if (w < z->memfd.nwatch)
			z->memfd.watch[w].seen = true;
		else if (watch(z, e) && (z->memfd.nwatch == 0 ||
					 z->memfd.watch[z->memfd.nwatch - 1].entry != e))
			*live = true;	/* alive, but no pidfd to ask */
	}
	for (w = 0; w < z->memfd.nwatch;) {
		if (!z->memfd.watch[w].seen) {
			unwatch(z, w);	/* closed its use, or replaced */
			continue;
		}
		pfd[w].fd = z->memfd.watch[w].pidfd;	/* poll() skips -1 */
		pfd[w].events = POLLIN;
		pfd[w].revents = 0;
		w++;
	}
	return z->memfd.nwatch;
}

/* Other pids than ours can't be watched: the socket tells. */
static bool peer_watchable(const struct zchan *z)
{
	return z->memfd.peer_end && z->memfd.own_end && z->memfd.own_end->pidns &&
	       load_once(&z->memfd.peer_end->pidns) == z->memfd.own_end->pidns;
}

/*
 * Watch every process the peer end's table names, asking none of them:
 * enough before a sleep, whose epoll fd holds the pidfds and the socket
 * and so wakes up when the peer goes.  System calls only when the table
 * changed (pidfd_open, epoll_ctl).  Returns how many it watches.
 */
unsigned int __zchan_holders_watch(struct zchan *z)
{
	struct pollfd pfd[ZCHAN_MEMFD_HOLDERS];
	bool any = false, live = false;

	return peer_watchable(z) ? watch_peer_holders(z, pfd, &any, &live) : 0;
}

/*
 * Is the peer gone: has its liveness socket @sock (if >= 0) hung up, or
 * has every process that holds the peer end died without closing it?  One
 * poll() for both, after a sleep that was not a kick.  A process found
 * dead while another lives leaves the sleeps' epoll set: its pidfd would
 * wake every one of them.  A syscall or more: slow paths only.
 */
bool __zchan_holders_gone(struct zchan *z, int sock)
{
	struct pollfd pfd[ZCHAN_MEMFD_HOLDERS + 1];
	bool any = false, live = false, watchable = peer_watchable(z), gone;
	unsigned int w, n = 0, npoll;

	if (watchable)
		n = watch_peer_holders(z, pfd, &any, &live);
	npoll = n;
	if (sock >= 0) {
		pfd[npoll].fd = sock;
		pfd[npoll].events = POLLRDHUP;
		pfd[npoll].revents = 0;
		npoll++;
	}
	if (npoll) {
		__zchan_count_syscalls(z, 1);
		if (__sys_poll(pfd, npoll, 0) < 0)
			return false;
	}
	if (sock >= 0 &&
	    (pfd[n].revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)))
		return true;
	if (!watchable)
		return false;
	gone = any && !live;
	for (w = 0; w < n; w++) {
		if (pfd[w].revents & (POLLIN | POLLHUP | POLLERR))
			watch_dead(z, w);
		else if (z->memfd.watch[w].pidfd >= 0)
			gone = false;
	}
	return gone;
}
