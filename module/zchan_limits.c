// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: limits and accounting - the module parameters, what each user
 * owns (channels, pool bytes, pinned pages) and the global counters.
 *
 * Pool pages are in no process's RSS, so the OOM killer cannot find them:
 * every byte a channel holds is charged to its creator's fsuid here, and
 * the defaults leave a small machine room to breathe.
 */
#include <linux/hashtable.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "zchan_priv.h"
#include "zchan_trace.h"

unsigned int zchan_max_channels_per_user = 1024;
module_param_named(max_channels_per_user, zchan_max_channels_per_user,
		   uint, 0644);
MODULE_PARM_DESC(max_channels_per_user,
		 "Live channels one user may own (default 1024)");

/* 0 until zchan_limits_init(): then a share of RAM unless set at load. */
unsigned long zchan_max_pool_bytes;
module_param_named(max_pool_bytes, zchan_max_pool_bytes, ulong, 0644);
MODULE_PARM_DESC(max_pool_bytes,
		 "Largest data pool of a channel (default 1/8 of RAM, at most 1 GiB)");

unsigned long zchan_max_user_pool_bytes;
module_param_named(max_user_pool_bytes, zchan_max_user_pool_bytes, ulong,
		   0644);
MODULE_PARM_DESC(max_user_pool_bytes,
		 "Data pool bytes one user may own in all (default 1/4 of RAM, at most 4 GiB)");

unsigned long zchan_max_user_pinned_bytes;
module_param_named(max_user_pinned_bytes, zchan_max_user_pinned_bytes, ulong,
		   0644);
MODULE_PARM_DESC(max_user_pinned_bytes,
		 "Bytes of ZCHAN_IOC_SEND_PAGES transfers one user may have pinned (default 1/8 of RAM, at most 1 GiB)");

struct zchan_dev_stats zchan_stats;

/*
 * A 1 GiB pool in a 2 GiB guest had the OOM killer shoot unrelated
 * processes: the defaults are a share of RAM.
 */
void zchan_limits_init(void)
{
	unsigned long ram = totalram_pages() << PAGE_SHIFT;

	if (!zchan_max_pool_bytes)
		zchan_max_pool_bytes = min(ram / 8, 1UL << 30);
	if (!zchan_max_user_pool_bytes)
		zchan_max_user_pool_bytes = min(ram / 4, 4UL << 30);
	if (!zchan_max_user_pinned_bytes)
		zchan_max_user_pinned_bytes = min(ram / 8, 1UL << 30);
}

/**
 * struct zchan_user - what one user owns, for the limits
 * @node: entry in zchan_users
 * @uid: the user
 * @channels: live channels charged to @uid
 * @pool_bytes: their data pool bytes
 * @pinned_pages: pages their SEND_PAGES transfers hold pinned
 */
struct zchan_user {
	struct hlist_node node;
	kuid_t uid;
	unsigned int channels;
	u64 pool_bytes;
	u64 pinned_pages;
};

static DEFINE_SPINLOCK(zchan_users_lock);
static DEFINE_HASHTABLE(zchan_users, 6);

static struct zchan_user *zchan_user_find(kuid_t uid)
{
	struct zchan_user *u;

	hash_for_each_possible(zchan_users, u, node, __kuid_val(uid))
		if (uid_eq(u->uid, uid))
			return u;
	return NULL;
}

/**
 * zchan_user_charge - charge a channel of @bytes pool to @uid
 * @uid: the creator's fsuid
 * @bytes: the channel's pool size
 *
 * Return: the user's entry, to give to zchan_user_uncharge() and
 * zchan_user_pin(), or -ENOSPC (max_channels_per_user), -ENOMEM
 * (max_user_pool_bytes, or no memory).
 */
struct zchan_user *zchan_user_charge(kuid_t uid, u64 bytes)
{
	u64 pool_limit = READ_ONCE(zchan_max_user_pool_bytes);
	unsigned int chan_limit = READ_ONCE(zchan_max_channels_per_user);
	struct zchan_user *u, *new;
	int ret = 0;

	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		return ERR_PTR(-ENOMEM);

	spin_lock(&zchan_users_lock);
	u = zchan_user_find(uid);
	if (!u) {
		u = new;
		new = NULL;
		u->uid = uid;
		hash_add(zchan_users, &u->node, __kuid_val(uid));
	}
	if (u->channels >= chan_limit)
		ret = -ENOSPC;
	else if (bytes > pool_limit - min(u->pool_bytes, pool_limit))
		ret = -ENOMEM;
	if (ret) {
		if (ret == -ENOSPC)
			trace_zchan_limit(bytes, chan_limit,
					  ZCHAN_TRACE_LIMIT_CHANNELS);
		else
			trace_zchan_limit(bytes, pool_limit,
					  ZCHAN_TRACE_LIMIT_USER_POOL);
		if (!u->channels) {
			hash_del(&u->node);
			new = u;
		}
		u = ERR_PTR(ret);
	} else {
		u->channels++;
		u->pool_bytes += bytes;
	}
	spin_unlock(&zchan_users_lock);
	kfree(new);
	return u;
}

void zchan_user_uncharge(struct zchan_user *u, u64 bytes)
{
	bool last;

	spin_lock(&zchan_users_lock);
	u->channels--;
	u->pool_bytes -= bytes;
	last = !u->channels;
	if (last)
		hash_del(&u->node);
	spin_unlock(&zchan_users_lock);
	if (last)
		kfree(u);
}

/*
 * Charge @nr_pages pinned pages to @u (which a channel of @u's keeps
 * alive), or fail with -ENOBUFS past max_user_pinned_bytes.
 */
int zchan_user_pin(struct zchan_user *u, unsigned long nr_pages)
{
	u64 limit = READ_ONCE(zchan_max_user_pinned_bytes) >> PAGE_SHIFT;
	int ret = 0;

	spin_lock(&zchan_users_lock);
	if (nr_pages > limit - min(u->pinned_pages, limit))
		ret = -ENOBUFS;
	else
		u->pinned_pages += nr_pages;
	spin_unlock(&zchan_users_lock);
	return ret;
}

void zchan_user_unpin(struct zchan_user *u, unsigned long nr_pages)
{
	spin_lock(&zchan_users_lock);
	u->pinned_pages -= nr_pages;
	spin_unlock(&zchan_users_lock);
}

/*
 * Charge @bytes more pool (a fan-in channel's new lane) to @u, which a
 * channel of @u's keeps alive: -ENOMEM past max_user_pool_bytes.
 */
int zchan_user_grow(struct zchan_user *u, u64 bytes)
{
	u64 limit = READ_ONCE(zchan_max_user_pool_bytes);
	int ret = 0;

	spin_lock(&zchan_users_lock);
	if (bytes > limit - min(u->pool_bytes, limit))
		ret = -ENOMEM;
	else
		u->pool_bytes += bytes;
	spin_unlock(&zchan_users_lock);
	if (ret)
		trace_zchan_limit(bytes, limit, ZCHAN_TRACE_LIMIT_USER_POOL);
	return ret;
}

void zchan_user_shrink(struct zchan_user *u, u64 bytes)
{
	spin_lock(&zchan_users_lock);
	u->pool_bytes -= bytes;
	spin_unlock(&zchan_users_lock);
}
