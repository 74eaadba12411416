// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * Waiting on a word of shared memory, the way hand-made shared-memory
 * transports do: spin on it in busy mode, otherwise sleep in FUTEX_WAIT.
 * A waiter announces itself in *sleepers before its last look at the word,
 * and a writer looks at *sleepers after its store (both sequentially
 * consistent), so either the waiter sees the new value or the writer sees
 * the waiter and wakes it: no lost wakeup, and no syscall when nobody
 * sleeps.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdatomic.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include "bench.h"

/* Return once *word differs from seen (or, blocking, a spurious wakeup). */
void word_wait(struct chan *c, _Atomic uint32_t *word,
	       _Atomic uint32_t *sleepers, uint32_t seen)
{
	if (c->spin) {
		while (atomic_load_explicit(word, memory_order_acquire) == seen)
			bench_cpu_relax();
		return;
	}
	atomic_fetch_add(sleepers, 1);
	if (atomic_load(word) == seen) {
		syscall(SYS_futex, word, FUTEX_WAIT, seen, NULL, NULL, 0);
		SYSCOUNT(c);
	}
	atomic_fetch_sub(sleepers, 1);
}

void word_set(struct chan *c, _Atomic uint32_t *word,
	      _Atomic uint32_t *sleepers, uint32_t v)
{
	atomic_store(word, v);
	if (atomic_load(sleepers)) {
		syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
		SYSCOUNT(c);
	}
}
