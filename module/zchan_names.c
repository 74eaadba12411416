// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: channel names and the list of live channels.
 *
 * A named channel is found by its name in its creator's IPC namespace;
 * every live channel is on zchan_channels, for debugfs, from the CREATE
 * that publishes it until both its ends are gone.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/hashtable.h>
#include <linux/ipc_namespace.h>
#include <linux/jhash.h>
#include <linux/nsproxy.h>
#include <linux/proc_ns.h>
#include <linux/sched.h>
#include <linux/string.h>

#include "zchan_priv.h"

/* Protects the name hash and zchan_channels; never held across user copies. */
DEFINE_MUTEX(zchan_lock);
LIST_HEAD(zchan_channels);
static DEFINE_HASHTABLE(zchan_names, 8);
static u64 zchan_next_id;

static void zchan_ns_put(struct ipc_namespace *ns)
{
	/*
	 * put_ipc_ns() is not exported; the namespace's own proc_ns
	 * operations drop the reference get_ipc_ns() took.
	 */
	if (IS_ENABLED(CONFIG_IPC_NS))
		ns->ns.ops->put(&ns->ns);
}

static u32 zchan_name_hash(struct ipc_namespace *ns, const char *name)
{
	return jhash(name, strlen(name), hash_ptr(ns, 32));
}

static struct zchan_channel *zchan_name_lookup(struct ipc_namespace *ns,
					       const char *name)
{
	struct zchan_channel *chan;

	lockdep_assert_held(&zchan_lock);
	hash_for_each_possible(zchan_names, chan, name_node,
			       zchan_name_hash(ns, name))
		if (chan->ns == ns && !strcmp(chan->name, name))
			return chan;
	return NULL;
}

/**
 * zchan_channel_link - publish a new channel: its name (if any) in the
 *	caller's IPC namespace, and the list of live channels
 * @chan: the channel
 *
 * Return: 0, or -EEXIST if the name is taken.
 */
int zchan_channel_link(struct zchan_channel *chan)
{
	struct ipc_namespace *ns = current->nsproxy->ipc_ns;

	mutex_lock(&zchan_lock);
	if (chan->name[0]) {
		if (zchan_name_lookup(ns, chan->name)) {
			mutex_unlock(&zchan_lock);
			return -EEXIST;
		}
		chan->ns = get_ipc_ns(ns);
		hash_add(zchan_names, &chan->name_node,
			 zchan_name_hash(ns, chan->name));
	}
	chan->id = ++zchan_next_id;
	list_add_tail(&chan->node, &zchan_channels);
	mutex_unlock(&zchan_lock);
	return 0;
}

/* Both ends of @chan are gone: take its name and list entry back. */
void zchan_channel_unlink(struct zchan_channel *chan)
{
	struct ipc_namespace *ns;

	mutex_lock(&zchan_lock);
	ns = chan->ns;
	if (ns) {
		hash_del(&chan->name_node);
		chan->ns = NULL;
	}
	list_del_init(&chan->node);
	mutex_unlock(&zchan_lock);
	if (ns)
		zchan_ns_put(ns);
}

/* Like ipcperms(): owner, then group, then other bits; CAP_IPC_OWNER wins. */
static bool zchan_may_attach(struct zchan_channel *chan)
{
	const struct cred *cred = current_cred();
	umode_t granted = chan->mode;
	umode_t want = 06;	/* the consumer reads the pool, writes its ring */

	if (uid_eq(cred->fsuid, chan->uid))
		granted >>= 6;
	else if (in_group_p(chan->gid))
		granted >>= 3;
	if (!(want & ~granted & 07))
		return true;
	return ns_capable(chan->ns->user_ns, CAP_IPC_OWNER);
}

/**
 * zchan_channel_find - the channel named @name in the caller's IPC
 *	namespace, if the caller may attach to it
 * @name: NUL-terminated name
 *
 * Return: the channel, with a reference, or -ENOENT, -EACCES.
 */
struct zchan_channel *zchan_channel_find(const char *name)
{
	struct ipc_namespace *ns = current->nsproxy->ipc_ns;
	struct zchan_channel *chan;

	mutex_lock(&zchan_lock);
	chan = zchan_name_lookup(ns, name);
	if (!chan)
		chan = ERR_PTR(-ENOENT);
	else if (!zchan_may_attach(chan))
		chan = ERR_PTR(-EACCES);
	else
		zchan_channel_get(chan);
	mutex_unlock(&zchan_lock);
	return chan;
}
