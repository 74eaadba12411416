// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: channel objects - creation, names, permissions and lifetime.
 */
#include <linux/anon_inodes.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/hashtable.h>
#include <linux/ipc_namespace.h>
#include <linux/jhash.h>
#include <linux/mm.h>
#include <linux/nsproxy.h>
#include <linux/proc_ns.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "zchan_priv.h"
#include "zchan_trace.h"

/* Protects the name hash and zchan_channels; never held across user copies. */
DEFINE_MUTEX(zchan_lock);
LIST_HEAD(zchan_channels);
static DEFINE_HASHTABLE(zchan_names, 8);
static u64 zchan_next_id;

static void zchan_region_free(struct zchan_region *r)
{
	unsigned long i;

	for (i = 0; i < r->nr_pages; i++)
		__free_page(r->pages[i]);
	atomic64_sub(r->nr_pages, &zchan_stats.pages);
	kvfree(r->pages);
	r->pages = NULL;
	r->nr_pages = 0;
}

/*
 * Order-0 pages only: a large pool never needs a high-order allocation and
 * every page is an ordinary refcounted page that get_user_pages() can pin.
 */
static int zchan_region_alloc(struct zchan_region *r, size_t bytes)
{
	unsigned long nr = bytes >> PAGE_SHIFT;

	r->nr_pages = 0;
	r->pages = kvcalloc(nr, sizeof(*r->pages), GFP_KERNEL_ACCOUNT);
	if (!r->pages)
		return -ENOMEM;
	while (r->nr_pages < nr) {
		struct page *page;

		page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!page)
			goto err_free;
		r->pages[r->nr_pages++] = page;
		atomic64_inc(&zchan_stats.pages);
		if (!(r->nr_pages & 255)) {
			if (fatal_signal_pending(current))
				goto err_free;
			cond_resched();
		}
	}
	return 0;

err_free:
	zchan_region_free(r);
	return -ENOMEM;
}

static void zchan_ns_put(struct ipc_namespace *ns)
{
	/*
	 * put_ipc_ns() is not exported; the namespace's own proc_ns
	 * operations drop the reference get_ipc_ns() took.
	 */
	if (IS_ENABLED(CONFIG_IPC_NS))
		ns->ns.ops->put(&ns->ns);
}

void zchan_channel_get(struct zchan_channel *chan)
{
	refcount_inc(&chan->ref);
}

void zchan_channel_put(struct zchan_channel *chan)
{
	if (!refcount_dec_and_test(&chan->ref))
		return;
	zchan_pages_free(chan);
	zchan_region_free(&chan->pool);
	zchan_region_free(&chan->cons_ring);
	zchan_region_free(&chan->prod_ring);
	zchan_user_uncharge(chan->user, chan->layout.pool_size);
	atomic_dec(&zchan_stats.channels);
	kfree(chan);
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

static void zchan_fill_layout(struct zchan_layout *l, u64 pool_size,
			      u32 entries, u32 max_msg)
{
	memset(l, 0, sizeof(*l));
	l->pool_size = pool_size;
	l->ring_entries = entries;
	l->max_msg = max_msg;
	zchan_layout_set_words(l);
	l->prod_ring_off = ZCHAN_OFF_PROD_RING;
	l->prod_ring_size = PAGE_ALIGN(l->prod_descs +
				       (size_t)entries * sizeof(struct zchan_desc));
	l->cons_ring_off = ZCHAN_OFF_CONS_RING;
	l->cons_ring_size = PAGE_ALIGN(max(max(l->cons_head, l->cons_read),
					   max(l->cons_need_wakeup,
					       l->cons_closed)) + sizeof(u32));
	l->pool_off = ZCHAN_OFF_POOL;
	l->features = ZCHAN_FEATURES;
}

/*
 * Find the shared words through the layout's offsets, the one description
 * of the ring (zchan_layout_set_words() places them all in the rings'
 * first pages, ahead of the descriptors).
 */
static void zchan_find_words(struct zchan_channel *chan)
{
	const struct zchan_layout *l = &chan->layout;
	void *prod = page_address(chan->prod_ring.pages[0]);
	void *cons = page_address(chan->cons_ring.pages[0]);
	struct zchan_ring_words *w = &chan->w;

	w->tail = prod + l->prod_tail;
	w->head_seen = prod + l->prod_head_seen;
	w->alloc = prod + l->prod_alloc;
	w->need_wakeup[ZCHAN_END_PROD] = prod + l->prod_need_wakeup;
	w->closed[ZCHAN_END_PROD] = prod + l->prod_closed;
	w->head = cons + l->cons_head;
	w->read = cons + l->cons_read;
	w->need_wakeup[ZCHAN_END_CONS] = cons + l->cons_need_wakeup;
	w->closed[ZCHAN_END_CONS] = cons + l->cons_closed;
}

/*
 * Validate CREATE's geometry and fill in the defaults.  A pool too large is
 * -ENOMEM whatever else is asked; the default max_msg always fits.
 */
static int zchan_check_geometry(struct zchan_create *c, u64 *pool_size)
{
	u64 pool = c->pool_size ? c->pool_size : ZCHAN_DEFAULT_POOL_SIZE;
	u64 limit = READ_ONCE(zchan_max_pool_bytes);

	if (pool > min_t(u64, limit, ZCHAN_POOL_SIZE_MAX)) {
		trace_zchan_limit(pool, limit, ZCHAN_TRACE_LIMIT_POOL);
		return -ENOMEM;
	}
	pool = PAGE_ALIGN(pool);
	if (!c->ring_entries)
		c->ring_entries = ZCHAN_DEFAULT_RING_ENTRIES;
	if (!is_power_of_2(c->ring_entries) ||
	    c->ring_entries > ZCHAN_RING_ENTRIES_MAX)
		return -EINVAL;
	if (!c->max_msg)
		c->max_msg = min_t(u64, pool / 4, ZCHAN_MSG_MAX);
	if (c->max_msg > pool / 2 || c->max_msg > ZCHAN_MSG_MAX)
		return -EINVAL;
	*pool_size = pool;
	return 0;
}

static struct zchan_channel *zchan_channel_alloc(struct zchan_create *c,
						 u64 pool_size)
{
	const struct cred *cred = current_cred();
	struct zchan_channel *chan;
	struct zchan_user *user;
	int ret, e;

	user = zchan_user_charge(cred->fsuid, pool_size);
	if (IS_ERR(user))
		return ERR_CAST(user);

	ret = -ENOMEM;
	chan = kzalloc(sizeof(*chan), GFP_KERNEL_ACCOUNT);
	if (!chan)
		goto err_uncharge;
	refcount_set(&chan->ref, 1);
	spin_lock_init(&chan->lock);
	for (e = 0; e < ARRAY_SIZE(chan->ends); e++) {
		init_waitqueue_head(&chan->ends[e].wq);
		INIT_LIST_HEAD(&chan->ends[e].uring_waits);
		INIT_LIST_HEAD(&chan->ends[e].holders);
	}
	INIT_HLIST_NODE(&chan->name_node);
	INIT_LIST_HEAD(&chan->node);
	zchan_pages_init(chan);
	atomic64_set(&chan->kicks, 0);
	atomic64_set(&chan->waits, 0);
	zchan_fill_layout(&chan->layout, pool_size, c->ring_entries,
			  c->max_msg);
	chan->mode = c->mode;
	chan->publish_on_close = c->flags & ZCHAN_CREATE_PUBLISH_ON_CLOSE;
	chan->uid = cred->fsuid;
	chan->gid = cred->fsgid;
	chan->user = user;
	strscpy(chan->name, (const char *)c->name, sizeof(chan->name));

	if (zchan_region_alloc(&chan->prod_ring, chan->layout.prod_ring_size))
		goto err_free_chan;
	if (zchan_region_alloc(&chan->cons_ring, chan->layout.cons_ring_size))
		goto err_free_prod;
	if (zchan_region_alloc(&chan->pool, pool_size))
		goto err_free_cons;
	zchan_find_words(chan);
	chan->ends[ZCHAN_END_PROD].state = ZCHAN_END_OPEN;
	atomic_inc(&zchan_stats.channels);
	atomic64_inc(&zchan_stats.created);
	return chan;

err_free_cons:
	zchan_region_free(&chan->cons_ring);
err_free_prod:
	zchan_region_free(&chan->prod_ring);
err_free_chan:
	kfree(chan);
err_uncharge:
	zchan_user_uncharge(user, pool_size);
	return ERR_PTR(ret);
}

/* Publish a new channel: its name (if any) and the debugfs list. */
static int zchan_channel_link(struct zchan_channel *chan)
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

/* Give @zf its role; the caller holds zf->lock and checked it had none. */
static void zchan_file_set_role(struct zchan_file *zf,
				struct zchan_channel *chan, unsigned int role)
{
	zf->chan = chan;
	/* Pairs with zchan_file_chan(): @chan is visible before @role. */
	smp_store_release(&zf->role, role);
}

long zchan_ioctl_create(struct zchan_file *zf, struct zchan_create __user *arg)
{
	struct zchan_channel *chan;
	struct zchan_layout layout;
	struct zchan_create c;
	u64 pool_size;
	long ret;

	if (copy_from_user(&c, arg, sizeof(c)))
		return -EFAULT;
	if (c.flags & ~ZCHAN_CREATE_PUBLISH_ON_CLOSE || c.mode & ~0777 ||
	    !zchan_all_zero(c.reserved, sizeof(c.reserved)))
		return -EINVAL;
	if (strnlen((const char *)c.name, sizeof(c.name)) == sizeof(c.name))
		return -EINVAL;
	ret = zchan_check_geometry(&c, &pool_size);
	if (ret)
		return ret;

	mutex_lock(&zf->lock);
	ret = -EINVAL;
	if (zf->role != ZCHAN_ROLE_NONE)
		goto out_unlock;
	/* Report the layout first: no channel to undo if that faults. */
	zchan_fill_layout(&layout, pool_size, c.ring_entries, c.max_msg);
	ret = -EFAULT;
	if (copy_to_user(&arg->layout, &layout, sizeof(layout)))
		goto out_unlock;
	chan = zchan_channel_alloc(&c, pool_size);
	if (IS_ERR(chan)) {
		ret = PTR_ERR(chan);
		goto out_unlock;
	}
	ret = zchan_channel_link(chan);
	if (ret) {
		zchan_channel_put(chan);
		goto out_unlock;
	}
	zchan_file_set_role(zf, chan, ZCHAN_ROLE_PRODUCER);
	trace_zchan_create(chan);
out_unlock:
	mutex_unlock(&zf->lock);
	return ret;
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

/*
 * Take the consumer end of @chan (the caller holds a reference): -EBUSY if
 * it was ever taken, -ENOENT if the producer left meanwhile.
 */
static int zchan_take_consumer(struct zchan_channel *chan)
{
	struct zchan_end *end = &chan->ends[ZCHAN_END_CONS];
	int ret = 0;

	spin_lock(&chan->lock);
	if (end->state != ZCHAN_END_FREE)
		ret = -EBUSY;
	else if (chan->ends[ZCHAN_END_PROD].state != ZCHAN_END_OPEN)
		ret = -ENOENT;
	else
		WRITE_ONCE(end->state, ZCHAN_END_OPEN);
	spin_unlock(&chan->lock);
	return ret;
}

long zchan_ioctl_attach(struct zchan_file *zf, struct zchan_attach __user *arg)
{
	struct ipc_namespace *ns = current->nsproxy->ipc_ns;
	struct zchan_channel *chan;
	struct zchan_attach a;
	long ret;

	if (copy_from_user(&a, arg, sizeof(a)))
		return -EFAULT;
	if (a.flags || a.resv ||
	    !zchan_all_zero(a.reserved, sizeof(a.reserved)))
		return -EINVAL;
	if (!a.name[0] || strnlen((const char *)a.name, sizeof(a.name)) == sizeof(a.name))
		return -EINVAL;

	mutex_lock(&zf->lock);
	ret = -EINVAL;
	if (zf->role != ZCHAN_ROLE_NONE)
		goto out_unlock;

	mutex_lock(&zchan_lock);
	chan = zchan_name_lookup(ns, (const char *)a.name);
	if (!chan) {
		ret = -ENOENT;
	} else if (!zchan_may_attach(chan)) {
		ret = -EACCES;
	} else {
		zchan_channel_get(chan);
		ret = 0;
	}
	mutex_unlock(&zchan_lock);
	if (ret)
		goto out_unlock;

	/* Report the layout before taking the end: a fault leaves no trace. */
	if (copy_to_user(&arg->layout, &chan->layout, sizeof(chan->layout)))
		ret = -EFAULT;
	else
		ret = zchan_take_consumer(chan);
	if (ret) {
		zchan_channel_put(chan);
		goto out_unlock;
	}
	zchan_file_set_role(zf, chan, ZCHAN_ROLE_CONSUMER);
	trace_zchan_attach(chan);
out_unlock:
	mutex_unlock(&zf->lock);
	return ret;
}

long zchan_ioctl_peer_fd(struct zchan_file *zf,
			 struct zchan_peer_fd __user *arg)
{
	struct zchan_channel *chan;
	struct zchan_peer_fd p;
	struct zchan_file *peer;
	struct file *file;
	unsigned int role;
	int fd, ret;

	if (copy_from_user(&p, arg, sizeof(p)))
		return -EFAULT;
	if (p.flags & ~ZCHAN_PEER_FD_CLOEXEC ||
	    !zchan_all_zero(p.reserved, sizeof(p.reserved)))
		return -EINVAL;
	chan = zchan_file_chan(zf, &role);
	if (!chan || role != ZCHAN_ROLE_PRODUCER)
		return -EINVAL;

	peer = zchan_file_alloc();
	if (!peer)
		return -ENOMEM;
	fd = get_unused_fd_flags(O_RDWR |
			(p.flags & ZCHAN_PEER_FD_CLOEXEC ? O_CLOEXEC : 0));
	if (fd < 0) {
		ret = fd;
		goto err_free_peer;
	}
	/* The number is reserved but not installed: report it first. */
	ret = -EFAULT;
	if (put_user(fd, &arg->fd))
		goto err_put_fd;
	ret = zchan_take_consumer(chan);
	if (ret == -ENOENT)
		ret = -EPIPE;	/* this end is released (ZCHAN_IOC_USE) */
	if (ret)
		goto err_put_fd;
	file = anon_inode_getfile("[zchan]", &zchan_fops, peer, O_RDWR);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_untake;
	}
	zchan_channel_get(chan);
	peer->chan = chan;
	peer->role = ZCHAN_ROLE_CONSUMER;
	trace_zchan_peer_fd(chan);
	fd_install(fd, file);
	return 0;

err_untake:
	/* No file ever held the end: give it back untouched. */
	spin_lock(&chan->lock);
	WRITE_ONCE(chan->ends[ZCHAN_END_CONS].state, ZCHAN_END_FREE);
	spin_unlock(&chan->lock);
err_put_fd:
	put_unused_fd(fd);
err_free_peer:
	zchan_file_free(peer);
	return ret;
}

/*
 * Payload bytes in descriptors [@head, @tail): each length read once, the
 * walk bounded by the ring size whatever the producer wrote there.
 */
/*
 * Payload bytes of the messages in slots [head, tail), and (if @msgs) how
 * many there are.  ZCHAN_DESC_SKIP slots carry no message: a dropped loan,
 * or a placeholder the producer wrote ahead into a slot already released.
 */
u64 zchan_queued_bytes(struct zchan_channel *chan, u32 head, u32 tail,
		       u32 *msgs)
{
	const struct zchan_layout *l = &chan->layout;
	u32 n = min(tail - head, l->ring_entries);
	u32 count = 0;
	u64 bytes = 0;

	for (; n; n--, head++) {
		size_t off = l->prod_descs + sizeof(struct zchan_desc) *
			     (size_t)(head & (l->ring_entries - 1));
		struct page *page = chan->prod_ring.pages[off >> PAGE_SHIFT];
		struct zchan_desc *d = page_address(page) + offset_in_page(off);

		if (READ_ONCE(d->flags) & ZCHAN_DESC_SKIP)
			continue;
		bytes += READ_ONCE(d->len);
		count++;
	}
	if (msgs)
		*msgs = count;
	return bytes;
}

long zchan_ioctl_info(struct zchan_file *zf, struct zchan_info __user *arg)
{
	struct zchan_channel *chan;
	struct zchan_info info;
	unsigned int role;

	if (copy_from_user(&info, arg, sizeof(info)))
		return -EFAULT;
	if (info.flags || !zchan_all_zero(info.reserved, sizeof(info.reserved)))
		return -EINVAL;

	memset(&info, 0, sizeof(info));
	info.layout.features = ZCHAN_FEATURES;
	chan = zchan_file_chan(zf, &role);
	info.role = role;
	if (chan) {
		if (READ_ONCE(chan->ends[ZCHAN_END_PROD].state) == ZCHAN_END_OPEN)
			info.state |= ZCHAN_STATE_PRODUCER_OPEN;
		if (READ_ONCE(chan->ends[ZCHAN_END_CONS].state) == ZCHAN_END_OPEN)
			info.state |= ZCHAN_STATE_CONSUMER_OPEN;
		if (chan->name[0])
			info.state |= ZCHAN_STATE_NAMED;
		info.layout = chan->layout;
		info.published = READ_ONCE(*chan->w.tail);
		info.released = READ_ONCE(*chan->w.head);
		info.queued_bytes = zchan_queued_bytes(chan, info.released,
						       info.published, NULL);
		info.kicks = atomic64_read(&chan->kicks);
		info.waits = atomic64_read(&chan->waits);
		memcpy(info.name, chan->name, sizeof(info.name));
	}
	if (copy_to_user(arg, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

/*
 * ZCHAN_CREATE_PUBLISH_ON_CLOSE: the producer is gone; publish every slot
 * it handed out (committed messages, and loans it left as SKIP
 * placeholders), so nothing committed is lost.  The words are the
 * producer's: read once, and publish nothing unless they are consistent.
 */
static void zchan_publish_on_close(struct zchan_channel *chan)
{
	u32 entries = chan->layout.ring_entries;
	u32 tail = READ_ONCE(*chan->w.tail);
	u32 alloc = READ_ONCE(*chan->w.alloc);
	u32 head = READ_ONCE(*chan->w.head);

	if (alloc == tail || alloc - tail > entries || alloc - head > entries ||
	    tail - head > entries)
		return;
	/* Release: the consumer's acquire of tail sees the descriptors. */
	smp_store_release(chan->w.tail, alloc);
}

/*
 * An end's last user stopped or its file is gone: tell the peer (closed
 * word first, then the wakeups), and when both ends are gone, unpublish
 * the channel.  The pages stay until the last reference (a file or a
 * mapping) is dropped.  Once per end.
 */
void zchan_end_release(struct zchan_channel *chan, enum zchan_end_id e)
{
	struct ipc_namespace *ns = NULL;
	bool dead;

	mutex_lock(&zchan_lock);
	spin_lock(&chan->lock);
	if (chan->ends[e].state == ZCHAN_END_GONE) {
		spin_unlock(&chan->lock);
		mutex_unlock(&zchan_lock);
		return;
	}
	if (e == ZCHAN_END_PROD && chan->publish_on_close)
		zchan_publish_on_close(chan);
	WRITE_ONCE(chan->ends[e].state, ZCHAN_END_GONE);
	/* Release: a reader that sees closed also sees what came before. */
	smp_store_release(chan->w.closed[e], 1);
	dead = chan->ends[!e].state != ZCHAN_END_OPEN;
	spin_unlock(&chan->lock);
	trace_zchan_release(chan, e, !dead);
	if (dead) {
		if (chan->ns) {
			hash_del(&chan->name_node);
			ns = chan->ns;
			chan->ns = NULL;
		}
		list_del_init(&chan->node);
	}
	mutex_unlock(&zchan_lock);

	if (ns)
		zchan_ns_put(ns);
	if (e == ZCHAN_END_CONS)
		zchan_pages_abort(chan);
	zchan_wake_end(chan, !e);
}

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
