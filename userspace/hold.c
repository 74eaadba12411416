// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Which processes hold an end (its holders).  An end stays open while it
 * has a holder; zchan_close() lets go of it in this process; a copy
 * inherited through fork(2) and never used neither keeps the channel open
 * nor ends it.  The process that creates or receives an end holds it; a
 * forked child starts holding an inherited end at its first call on it
 * (__zchan_hold()).
 *
 * __zchan_fork_gen moves on in every child fork(2) makes (a pthread_atfork
 * handler): an end whose hold_gen differs was inherited.  The check is one
 * load and a compare on every call; the rest happens once per child:
 *
 *  - kernel backend: ZCHAN_IOC_USE tells the module (ZCHAN_FEAT_USE; an
 *    older module holds an end while any descriptor of it is open);
 *  - memfd backend: the child enters its end's table of holders
 *    (holders.c) and wakes the peer, which then watches it too;
 *  - both: the inherited private io_uring is the parent's (its rings are
 *    shared memory): the child gets its own.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zchan_int.h"

unsigned int __zchan_fork_gen;

static void forked(void)
{
	__atomic_add_fetch(&__zchan_fork_gen, 1, __ATOMIC_RELAXED);
}

static void watch_forks(void)
{
	pthread_atfork(NULL, NULL, forked);
}

/* The fork generation, with forks watched from the first call on. */
static unsigned int watched_fork_gen(void)
{
	static pthread_once_t forks_watched = PTHREAD_ONCE_INIT;

	pthread_once(&forks_watched, watch_forks);
	return __atomic_load_n(&__zchan_fork_gen, __ATOMIC_RELAXED);
}

/* A new handle is held by this process. */
void __zchan_hold_init(struct zchan *z)
{
	z->hold_gen = watched_fork_gen();
}

/*
 * A forked child's first call on an inherited end: -EPIPE if its last
 * holder closed it meanwhile, -EUSERS (memfd) if it has too many holders.
 */
int __zchan_hold_inherited(struct zchan *z)
{
	int ret = z->ops->hold(z);

	if (ret)
		return ret;
	__zchan_uring_reinit(z);
	z->hold_gen = __atomic_load_n(&__zchan_fork_gen, __ATOMIC_RELAXED);
	return 0;
}

/*
 * The fork generation, for callers that keep per-process state next to
 * their handles (a language binding's locks) and must see the same forks
 * the library sees.  Watches forks from now on (once).
 */
ZCHAN_EXPORT
unsigned int zchan_fork_generation(void)
{
	return watched_fork_gen();
}
