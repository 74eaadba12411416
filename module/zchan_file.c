// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: the private data of a channel file (/dev/zchan or a PEER_FD
 * file): which channel and which end it is, set once.
 */
#include <linux/slab.h>

#include "zchan_priv.h"

struct zchan_file *zchan_file_alloc(void)
{
	struct zchan_file *zf = kzalloc(sizeof(*zf), GFP_KERNEL_ACCOUNT);

	if (!zf)
		return NULL;
	mutex_init(&zf->lock);
	atomic_inc(&zchan_stats.files);
	return zf;
}

void zchan_file_free(struct zchan_file *zf)
{
	if (zf->chan) {
		zchan_hold_forget(zf->chan, zchan_role_end(zf->role));
		zchan_end_release(zf->chan, zchan_role_end(zf->role));
		zchan_channel_put(zf->chan);
	}
	mutex_destroy(&zf->lock);
	atomic_dec(&zchan_stats.files);
	kfree(zf);
}

/* Give @zf its role; the caller holds zf->lock and checked it had none. */
void zchan_file_set_role(struct zchan_file *zf, struct zchan_channel *chan,
			 unsigned int role)
{
	zf->chan = chan;
	/* Pairs with zchan_file_chan(): @chan is visible before @role. */
	smp_store_release(&zf->role, role);
}
