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
		zchan_hold_forget(zf->chan, zf->end);
		zchan_end_release(zf->chan, zf->end);
		zchan_channel_put(zf->chan);
	}
	mutex_destroy(&zf->lock);
	atomic_dec(&zchan_stats.files);
	kfree(zf);
}

/*
 * Make @zf the file of @end of @chan; the caller holds zf->lock and
 * checked it had no role (or owns @zf alone: a new PEER_FD file).
 */
void zchan_file_set_role(struct zchan_file *zf, struct zchan_channel *chan,
			 struct zchan_end *end)
{
	zf->chan = chan;
	zf->end = end;
	/* Pairs with zchan_file_chan(): @chan is visible before @role. */
	smp_store_release(&zf->role, end->id == ZCHAN_END_PROD ?
			  ZCHAN_ROLE_PRODUCER : ZCHAN_ROLE_CONSUMER);
}
