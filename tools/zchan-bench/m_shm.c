// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * shm-flag: what people build by hand when pipes are too slow - one shared
 * buffer and a "ready" flag.  The producer waits until the flag says empty,
 * writes the message in place and sets it full; the consumer waits for
 * full, reads in place and sets it empty.  Waiting sleeps on the flag with
 * a futex (or spins, in busy mode), and a waker only enters the kernel when
 * someone announced it sleeps.  No ring, no lifetime, no peer-death
 * notice: exactly the single-buffer design of the multiprocessing Array +
 * Value recipes, done with care.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "bench.h"

struct shm_hdr {
	_Atomic uint32_t full;		/* the futex word: 0 empty, 1 full */
	_Atomic uint32_t sleepers;	/* how many wait in FUTEX_WAIT */
	char pad[4096 - 8];
};

static size_t shm_len(const struct chan *c)
{
	return sizeof(struct shm_hdr) + (c->msg_size + 4095) / 4096 * 4096;
}

static int shm_create(struct chan *c)
{
	void *p = mmap(NULL, shm_len(c), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		chan_error(c, "mmap %zu bytes: %s", shm_len(c), strerror(errno));
		return -1;
	}
	c->priv = p;
	return 0;
}

static int shm_open_end(struct chan *c, bool sender)
{
	c->sender = sender;
	return 0;
}

/* the flag is 0 or 1: wait until it is want */
static void wait_for(struct chan *c, struct shm_hdr *h, uint32_t want)
{
	while (atomic_load_explicit(&h->full, memory_order_acquire) != want)
		word_wait(c, &h->full, &h->sleepers, !want);
}

static void set_and_wake(struct chan *c, struct shm_hdr *h, uint32_t v)
{
	word_set(c, &h->full, &h->sleepers, v);
}

static void *shm_loan(struct chan *c)
{
	struct shm_hdr *h = c->priv;

	wait_for(c, h, 0);
	return h + 1;
}

static int shm_send(struct chan *c, void *buf)
{
	(void)buf;
	set_and_wake(c, c->priv, 1);
	return 0;
}

static const void *shm_recv(struct chan *c)
{
	struct shm_hdr *h = c->priv;

	wait_for(c, h, 1);
	return h + 1;
}

static void shm_release(struct chan *c, const void *buf)
{
	(void)buf;
	set_and_wake(c, c->priv, 0);
}

static void shm_destroy(struct chan *c)
{
	if (c->priv)
		munmap(c->priv, shm_len(c));
	c->priv = NULL;
}

const struct method method_shm_flag = {
	.name = "shm-flag",
	.desc = "one shared buffer + ready flag + futex, built by hand",
	.zero_copy = true,
	.probe = method_always_available,
	.create = shm_create,
	.open = shm_open_end,
	.loan = shm_loan,
	.send = shm_send,
	.recv = shm_recv,
	.release = shm_release,
	.destroy = shm_destroy,
	/* fan-in would wait on N flags at once: not built by hand here */
	.fan_out = FAN_LANES,
};
