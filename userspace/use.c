// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Which processes use an end.  An end stays open while a process that uses
 * it holds it; zchan_close() ends this process's use; a copy inherited
 * through fork(2) and never used neither keeps the channel open nor ends
 * it.  The process that creates or receives an end uses it; a forked child
 * starts using an inherited end at its first call on it (zchan_use()).
 *
 * zchan_fork_gen moves on in every child fork(2) makes (a pthread_atfork
 * handler): an end whose use_gen differs was inherited.  The check is one
 * load and a compare on every call; the rest happens once per child:
 *
 *  - kernel backend: ZCHAN_IOC_USE tells the module (ZCHAN_FEAT_USE; an
 *    older module holds an end while any descriptor of it is open);
 *  - memfd backend: the child enters its end's users table (users.c) and
 *    wakes the peer, which then watches it too;
 *  - both: the inherited private io_uring is the parent's (its rings are
 *    shared memory): the child gets its own.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zchan_int.h"

unsigned int zchan_fork_gen;

static void forked(void)
{
	__atomic_add_fetch(&zchan_fork_gen, 1, __ATOMIC_RELAXED);
}

static void watch_forks(void)
{
	pthread_atfork(NULL, NULL, forked);
}

/* A new handle is used by this process. */
void zchan_use_init(struct zchan *z)
{
	static pthread_once_t forks_watched = PTHREAD_ONCE_INIT;

	pthread_once(&forks_watched, watch_forks);
	z->use_gen = __atomic_load_n(&zchan_fork_gen, __ATOMIC_RELAXED);
}

/*
 * A forked child's first call on an inherited end: -EPIPE if its last
 * user closed it meanwhile, -EUSERS (memfd) if too many processes use it.
 */
int zchan_adopt(struct zchan *z)
{
	int ret = z->ops->hold(z);

	if (ret)
		return ret;
	__zchan_uring_reinit(z);
	z->use_gen = __atomic_load_n(&zchan_fork_gen, __ATOMIC_RELAXED);
	return 0;
}
