// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * cma: one copy with process_vm_readv(2) ("cross-memory attach"), the way
 * MPI moves a message between two processes of one host (Open MPI's
 * smsc/cma, UCX's cma transport): the producer builds the message in its
 * own memory and posts its address; the consumer, notified, copies it
 * straight out of the producer's address space into its own buffer and
 * acknowledges; the producer reuses a buffer once it is acknowledged.
 *
 * The descriptors travel through a ring in shared memory (what MPI's
 * shared-memory FIFOs carry), with the same waiting as shm-flag: spin in
 * busy mode, else futex, entering the kernel only when the other side
 * sleeps.  The producer has a ring of buffers as deep as zchan's default
 * pool (4 MiB, at most 256 messages) and at least bench_inflight() deep,
 * as zchan's pool, so it never waits for an acknowledgement it does not
 * need.
 *
 * process_vm_readv needs ptrace access to the producer: the producer
 * allows it with PR_SET_PTRACER (what Yama's ptrace_scope 1 asks for,
 * and what Open MPI does); ptrace_scope 2 and 3, a kernel without
 * CONFIG_CROSS_MEMORY_ATTACH or a seccomp filter make it unavailable,
 * which the probe finds out by trying it between two processes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "bench.h"

#define CMA_MAX_SLOTS 256
#define CMA_POOL (4UL << 20)

/* Shared by both sides: the descriptor ring and its two counters. */
struct cma_ctl {
	/* written by the producer */
	_Atomic uint32_t posted;	/* messages posted */
	_Atomic uint32_t posted_sleepers;
	_Atomic int32_t producer_pid;
	char pad1[64 - 12];
	/* written by the consumer */
	_Atomic uint32_t acked;		/* messages copied out */
	_Atomic uint32_t acked_sleepers;
	char pad2[64 - 8];
	uint64_t addr[CMA_MAX_SLOTS];	/* where message i lies in the producer */
};

struct cma_priv {
	struct cma_ctl *ctl;		/* shared */
	uint32_t nslots;
	size_t slot_len;
	void *buf;			/* producer: the ring; consumer: one buffer */
	size_t buf_len;
	uint32_t next;			/* next message to post / to copy */
	pid_t peer;			/* consumer: the producer, once known */
};

static size_t round_up(size_t v, size_t to)
{
	return (v + to - 1) / to * to;
}

static int cma_create(struct chan *c)
{
	struct cma_priv *p = calloc(1, sizeof(*p));

	if (!p) {
		chan_error(c, "out of memory");
		return -1;
	}
	c->priv = p;
	p->ctl = mmap(NULL, sizeof(*p->ctl), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p->ctl == MAP_FAILED) {
		chan_error(c, "mmap: %s", strerror(errno));
		free(p);
		c->priv = NULL;
		return -1;
	}
	/* small messages on their own cache lines, large ones on pages */
	p->slot_len = round_up(c->msg_size, c->msg_size < 4096 ? 64 : 4096);
	p->nslots = (uint32_t)(CMA_POOL / p->slot_len);
	if (p->nslots < bench_inflight(c->msg_size))
		p->nslots = bench_inflight(c->msg_size);
	if (p->nslots > CMA_MAX_SLOTS)
		p->nslots = CMA_MAX_SLOTS;
	return 0;
}

static int cma_open(struct chan *c, bool sender)
{
	struct cma_priv *p = c->priv;

	c->sender = sender;
	if (sender) {
		/* Yama ptrace_scope 1: let the consumer (not our child) read us */
		prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
		atomic_store(&p->ctl->producer_pid, (int32_t)getpid());
	}
	p->buf_len = sender ? p->slot_len * p->nslots : p->slot_len;
	p->buf = mmap(NULL, p->buf_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->buf == MAP_FAILED) {
		p->buf = NULL;
		chan_error(c, "mmap %zu bytes: %s", p->buf_len, strerror(errno));
		return -1;
	}
	return 0;
}

/* A free buffer of the ring: wait until the oldest one is acknowledged. */
static void *cma_loan(struct chan *c)
{
	struct cma_priv *p = c->priv;
	struct cma_ctl *ctl = p->ctl;
	uint32_t acked;

	while (p->next - (acked = atomic_load_explicit(&ctl->acked,
				memory_order_acquire)) >= p->nslots)
		word_wait(c, &ctl->acked, &ctl->acked_sleepers, acked);
	return (char *)p->buf + (size_t)(p->next % p->nslots) * p->slot_len;
}

/* Post the buffer's address, then the count that makes it visible. */
static int cma_send(struct chan *c, void *buf)
{
	struct cma_priv *p = c->priv;

	p->ctl->addr[p->next % p->nslots] = (uint64_t)(uintptr_t)buf;
	p->next++;
	word_set(c, &p->ctl->posted, &p->ctl->posted_sleepers, p->next);
	return 0;
}

/* Like a send's completion in MPI: the receiver acknowledged it all. */
static int cma_flush(struct chan *c)
{
	struct cma_priv *p = c->priv;
	uint32_t acked;

	while ((acked = atomic_load_explicit(&p->ctl->acked,
					     memory_order_acquire)) != p->next)
		word_wait(c, &p->ctl->acked, &p->ctl->acked_sleepers, acked);
	return 0;
}

static int copy_from(struct chan *c, pid_t pid, uint64_t addr, void *dst)
{
	struct iovec local = { .iov_base = dst, .iov_len = c->msg_size };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr,
				.iov_len = c->msg_size };

	while (local.iov_len) {
		ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

		SYSCOUNT(c);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			chan_error(c, "process_vm_readv from pid %d: %s", (int)pid,
				   n < 0 ? strerror(errno) : "nothing read");
			return -1;
		}
		local.iov_base = (char *)local.iov_base + n;
		local.iov_len -= (size_t)n;
		remote.iov_base = (char *)remote.iov_base + n;
		remote.iov_len -= (size_t)n;
		chan_progress(c, (uint64_t)n);
	}
	return 0;
}

/* Wait for a posted message, copy it out of the producer, acknowledge. */
static const void *cma_recv(struct chan *c)
{
	struct cma_priv *p = c->priv;
	struct cma_ctl *ctl = p->ctl;

	while (atomic_load_explicit(&ctl->posted, memory_order_acquire) == p->next)
		word_wait(c, &ctl->posted, &ctl->posted_sleepers, p->next);
	if (!p->peer)
		p->peer = atomic_load(&ctl->producer_pid);
	if (copy_from(c, p->peer, ctl->addr[p->next % p->nslots], p->buf))
		return NULL;
	p->next++;
	word_set(c, &ctl->acked, &ctl->acked_sleepers, p->next);
	return p->buf;
}

static void cma_destroy(struct chan *c)
{
	struct cma_priv *p = c->priv;

	if (!p)
		return;
	if (p->buf)
		munmap(p->buf, p->buf_len);
	if (p->ctl)
		munmap(p->ctl, sizeof(*p->ctl));
	free(p);
	c->priv = NULL;
}

/*
 * Try it as the benchmark uses it: one child (the "producer") allows
 * ptrace access and waits, its sibling reads a word of its memory.
 */
static volatile uint64_t probe_word;

static int cma_probe(char *why, size_t len)
{
	int ready[2], done[2], status, err = 0;
	pid_t target, reader;
	char byte;

	if (pipe(ready)) {
		snprintf(why, len, "probe: pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe(done)) {
		snprintf(why, len, "probe: pipe: %s", strerror(errno));
		close(ready[0]);
		close(ready[1]);
		return -1;
	}
	fflush(NULL);
	target = fork();
	if (target == 0) {
		prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
		probe_word = 0x636d61;		/* "cma" */
		close(ready[0]);
		close(done[1]);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		/* until the reader is done (or the parent gone) */
		while (read(done[0], &byte, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(done[0]);
	if (target < 0 || read(ready[0], &byte, 1) != 1) {
		err = target < 0 ? errno : EIO;
		snprintf(why, len, "probe: %s", strerror(err));
		goto out;
	}
	reader = fork();
	if (reader == 0) {
		uint64_t v = 0;
		struct iovec l = { .iov_base = &v, .iov_len = sizeof(v) };
		struct iovec r = { .iov_base = (void *)&probe_word,
				   .iov_len = sizeof(v) };

		if (process_vm_readv(target, &l, 1, &r, 1, 0) != sizeof(v))
			_exit(errno ? errno & 0x7f : EIO);
		_exit(v == 0x636d61 ? 0 : EIO);
	}
	if (reader < 0) {
		err = errno;
		snprintf(why, len, "probe: fork: %s", strerror(err));
		goto out;
	}
	while (waitpid(reader, &status, 0) < 0 && errno == EINTR)
		;
	err = WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
	if (err == ENOSYS)
		snprintf(why, len, "process_vm_readv: %s (kernel without CONFIG_CROSS_MEMORY_ATTACH, or a seccomp filter)",
			 strerror(err));
	else if (err == EPERM)
		snprintf(why, len, "process_vm_readv: %s (ptrace access to the producer denied: Yama ptrace_scope %s)",
			 strerror(err), "2 or 3, or a security module");
	else if (err)
		snprintf(why, len, "process_vm_readv: %s", strerror(err));
out:
	close(ready[0]);
	close(done[1]);		/* lets the target exit */
	if (target > 0) {
		kill(target, SIGKILL);
		while (waitpid(target, NULL, 0) < 0 && errno == EINTR)
			;
	}
	return err ? -1 : 0;
}

const struct method method_cma = {
	.name = "cma",
	.desc = "process_vm_readv(2) single copy from the producer's buffer, as MPI does",
	.probe = cma_probe,
	.create = cma_create,
	.open = cma_open,
	.loan = cma_loan,
	.send = cma_send,
	.recv = cma_recv,
	.release = method_release_nothing,
	.flush = cma_flush,
	.destroy = cma_destroy,
};
