// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan_fork_generation(): the fork generation use.c keeps, for callers
 * that hold per-process state next to their handles (a language binding's
 * locks) and must see the same forks the library sees.
 */
#include "zchan_int.h"

ZCHAN_EXPORT
unsigned int zchan_fork_generation(void)
{
	struct zchan probe;

	/* watches forks from now on (once), and reads the generation */
	zchan_use_init(&probe);
	return probe.use_gen;
}
