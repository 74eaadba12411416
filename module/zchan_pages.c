// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: transfers of the producer's own pages (ZCHAN_IOC_SEND_PAGES).
 *
 * The producer's buffer is pinned (FOLL_LONGTERM) and becomes a transfer,
 * named by an id the kernel allocates; the consumer maps it read-only at
 * ZCHAN_OFF_PAGES + id * ZCHAN_PAGES_MAX.  The mapping is VM_PFNMAP: the
 * pages may be the producer's anonymous pages, which must not gain a file
 * rmap in the consumer; our pin keeps them alive until the last piece of
 * the consumer's mapping is gone.  Then they are unpinned and a completion
 * with the producer's cookie is queued for ZCHAN_IOC_REAP.
 *
 * A transfer is in the channel's xarray while it can still be mapped, in a
 * consumer VMA (vm_private_data) while mapped, and on the channel's done
 * list once complete.  chan->nr_xfers counts all three, under chan->lock.
 */
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "zchan_priv.h"

#define ZCHAN_PGOFF_PAGES	(ZCHAN_OFF_PAGES >> PAGE_SHIFT)
#define ZCHAN_XFER_SHIFT	(30 - PAGE_SHIFT)	/* ZCHAN_PAGES_MAX */
#define ZCHAN_XFER_ID_MAX	((1U << 20) - 1)
/* Pages a fault maps at once, from the faulting one on. */
#define ZCHAN_FAULT_AROUND	64

/**
 * struct zchan_xfer - one ZCHAN_IOC_SEND_PAGES transfer
 * @node: entry in the channel's done list once complete
 * @chan: the channel (a mapping holds a reference)
 * @pages: the pinned pages, NULL once unpinned
 * @nr_pages: number of entries in @pages
 * @cookie: the producer's cookie
 * @id: the transfer's id, which gives its mmap offset
 * @flags: ZCHAN_COMPL_* flags, set when complete
 * @vmas: consumer VMAs mapping it, under the channel lock
 */
struct zchan_xfer {
	struct list_head node;
	struct zchan_channel *chan;
	struct page **pages;
	unsigned long nr_pages;
	u64 cookie;
	u32 id;
	u32 flags;
	unsigned int vmas;
};

static unsigned long zchan_xfer_pgoff(u32 id)
{
	return ZCHAN_PGOFF_PAGES + ((unsigned long)id << ZCHAN_XFER_SHIFT);
}

void zchan_pages_init(struct zchan_channel *chan)
{
	xa_init_flags(&chan->xfers, XA_FLAGS_ALLOC1);
	INIT_LIST_HEAD(&chan->xfers_done);
}

/* Give back the pages of @x and their charge; @x itself stays. */
static void zchan_xfer_unpin(struct zchan_channel *chan, struct zchan_xfer *x)
{
	if (!x->pages)
		return;
	unpin_user_pages(x->pages, x->nr_pages);
	kvfree(x->pages);
	x->pages = NULL;
	atomic64_sub(x->nr_pages, &zchan_stats.pinned);
	zchan_user_unpin(chan->user, x->nr_pages);
}

/* @x is no longer mappable nor mapped: unpin it and queue its completion. */
static void zchan_xfer_complete(struct zchan_channel *chan,
				struct zchan_xfer *x, u32 flags)
{
	zchan_xfer_unpin(chan, x);
	x->flags = flags;
	spin_lock(&chan->lock);
	list_add_tail(&x->node, &chan->xfers_done);
	spin_unlock(&chan->lock);
	/* poll() and epoll see EPOLLPRI; the ring's waits are not woken. */
	wake_up_interruptible_poll(&chan->lane0.prod.wq, EPOLLPRI);
}

/* Completions wait for ZCHAN_IOC_REAP: EPOLLPRI on the producer's fd. */
bool zchan_pages_reapable(struct zchan_channel *chan)
{
	bool ret;

	spin_lock(&chan->lock);
	ret = !list_empty(&chan->xfers_done);
	spin_unlock(&chan->lock);
	return ret;
}

/* Pin [@addr, @addr + @nr pages) for reading, all or nothing. */
static int zchan_pin(unsigned long addr, unsigned long nr, struct page **pages)
{
	unsigned long done = 0;
	long ret;

	while (done < nr) {
		ret = pin_user_pages_fast(addr + (done << PAGE_SHIFT),
					  min(nr - done, (unsigned long)INT_MAX),
					  FOLL_LONGTERM, pages + done);
		if (ret <= 0) {
			unpin_user_pages(pages, done);
			return ret ? ret : -EFAULT;
		}
		done += ret;
		if (fatal_signal_pending(current)) {
			unpin_user_pages(pages, done);
			return -EINTR;
		}
	}
	return 0;
}

long zchan_ioctl_send_pages(struct zchan_file *zf,
			    struct zchan_send_pages __user *arg)
{
	struct zchan_send_pages sp;
	struct zchan_channel *chan;
	struct zchan_xfer *x;
	unsigned int role;
	u64 offset;
	u32 id;
	int ret;

	if (copy_from_user(&sp, arg, sizeof(sp)))
		return -EFAULT;
	if (sp.flags || sp.resv || sp.offset ||
	    !zchan_all_zero(sp.reserved, sizeof(sp.reserved)))
		return -EINVAL;
	if (!sp.len || sp.len > ZCHAN_PAGES_MAX ||
	    !PAGE_ALIGNED(sp.addr) || !PAGE_ALIGNED(sp.len))
		return -EINVAL;
	chan = zchan_file_chan(zf, &role);
	if (!chan || role != ZCHAN_ROLE_PRODUCER)
		return -EINVAL;
	/* Transfers and their completions are one producer's. */
	if (chan->max_producers > 1)
		return -EOPNOTSUPP;
	if (!access_ok(u64_to_user_ptr(sp.addr), sp.len))
		return -EFAULT;

	/* A slot among ring_entries, given back by REAP or by an undo. */
	spin_lock(&chan->lock);
	ret = 0;
	if (chan->cons.state == ZCHAN_END_GONE)
		ret = -EPIPE;
	else if (chan->nr_xfers >= chan->layout.ring_entries)
		ret = -ENOBUFS;
	else
		chan->nr_xfers++;
	spin_unlock(&chan->lock);
	if (ret)
		return ret;

	ret = -ENOMEM;
	x = kzalloc(sizeof(*x), GFP_KERNEL_ACCOUNT);
	if (!x)
		goto err_unslot;
	x->chan = chan;
	x->nr_pages = sp.len >> PAGE_SHIFT;
	x->cookie = sp.cookie;
	ret = zchan_user_pin(chan->user, x->nr_pages);
	if (ret)
		goto err_free_xfer;
	ret = -ENOMEM;
	x->pages = kvcalloc(x->nr_pages, sizeof(*x->pages), GFP_KERNEL_ACCOUNT);
	if (!x->pages)
		goto err_uncharge;
	ret = zchan_pin(sp.addr, x->nr_pages, x->pages);
	if (ret)
		goto err_free_pages;
	atomic64_add(x->nr_pages, &zchan_stats.pinned);

	/* Report the offset first: nothing to take back if that faults. */
	ret = xa_alloc_cyclic(&chan->xfers, &id, NULL,
			      XA_LIMIT(1, ZCHAN_XFER_ID_MAX),
			      &chan->next_xfer, GFP_KERNEL_ACCOUNT);
	if (ret < 0)
		goto err_unpin;
	x->id = id;
	offset = (u64)zchan_xfer_pgoff(id) << PAGE_SHIFT;
	ret = -EFAULT;
	if (put_user(offset, &arg->offset))
		goto err_erase;

	/* Mappable from here; the consumer's release takes it back. */
	spin_lock(&chan->lock);
	if (chan->cons.state == ZCHAN_END_GONE) {
		spin_unlock(&chan->lock);
		ret = -EPIPE;
		goto err_erase;
	}
	xa_store(&chan->xfers, id, x, GFP_ATOMIC);
	spin_unlock(&chan->lock);
	return 0;

err_erase:
	xa_erase(&chan->xfers, id);
err_unpin:
	atomic64_sub(x->nr_pages, &zchan_stats.pinned);
	unpin_user_pages(x->pages, x->nr_pages);
err_free_pages:
	kvfree(x->pages);
err_uncharge:
	zchan_user_unpin(chan->user, x->nr_pages);
err_free_xfer:
	kfree(x);
err_unslot:
	spin_lock(&chan->lock);
	chan->nr_xfers--;
	spin_unlock(&chan->lock);
	return ret;
}

long zchan_ioctl_reap(struct zchan_file *zf, struct zchan_reap __user *arg)
{
	struct zchan_completion __user *out;
	struct zchan_completion c = {};
	struct zchan_channel *chan;
	struct zchan_reap r;
	struct zchan_xfer *x;
	unsigned int role;
	u32 n = 0;

	if (copy_from_user(&r, arg, sizeof(r)))
		return -EFAULT;
	if (r.flags || !zchan_all_zero(r.reserved, sizeof(r.reserved)))
		return -EINVAL;
	chan = zchan_file_chan(zf, &role);
	if (!chan || role != ZCHAN_ROLE_PRODUCER)
		return -EINVAL;
	if (chan->max_producers > 1)
		return -EOPNOTSUPP;
	out = u64_to_user_ptr(r.addr);

	while (n < r.nr) {
		spin_lock(&chan->lock);
		x = list_first_entry_or_null(&chan->xfers_done,
					     struct zchan_xfer, node);
		if (x)
			list_del(&x->node);
		spin_unlock(&chan->lock);
		if (!x)
			break;
		c.cookie = x->cookie;
		c.flags = x->flags;
		if (copy_to_user(&out[n], &c, sizeof(c))) {
			/* Not reaped: put it back where it was. */
			spin_lock(&chan->lock);
			list_add(&x->node, &chan->xfers_done);
			spin_unlock(&chan->lock);
			return n ? n : -EFAULT;
		}
		spin_lock(&chan->lock);
		chan->nr_xfers--;
		spin_unlock(&chan->lock);
		kfree(x);
		n++;
		cond_resched();
	}
	return n;
}

/*
 * The consumer end is released: transfers it never mapped complete at once
 * (aborted); the ones it maps complete, aborted, as their mappings go.
 */
void zchan_pages_abort(struct zchan_channel *chan)
{
	struct zchan_xfer *x;
	unsigned long id;
	LIST_HEAD(aborted);

	spin_lock(&chan->lock);
	xa_for_each(&chan->xfers, id, x) {
		xa_erase(&chan->xfers, id);
		/* Reserved by a SEND_PAGES still running: it undoes itself. */
		if (x)
			list_add_tail(&x->node, &aborted);
	}
	spin_unlock(&chan->lock);

	while ((x = list_first_entry_or_null(&aborted, struct zchan_xfer,
					     node))) {
		list_del(&x->node);
		zchan_xfer_complete(chan, x, ZCHAN_COMPL_ABORTED);
	}
}

/* The last reference to @chan is gone: nothing maps a transfer any more. */
void zchan_pages_free(struct zchan_channel *chan)
{
	struct zchan_xfer *x, *tmp;
	unsigned long id;

	xa_for_each(&chan->xfers, id, x) {
		zchan_xfer_unpin(chan, x);
		kfree(x);
	}
	xa_destroy(&chan->xfers);
	list_for_each_entry_safe(x, tmp, &chan->xfers_done, node)
		kfree(x);
}

/* A fault in a transfer's mapping (zchan_mmap.c's VMA operations). */
vm_fault_t zchan_pages_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct zchan_xfer *x = vma->vm_private_data;
	unsigned long index = vmf->pgoff - zchan_xfer_pgoff(x->id);
	unsigned long addr = vmf->address;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	unsigned int n;

	/* The mapping's VMAs hold the pin: @x->pages stays until they go. */
	for (n = 0; n < ZCHAN_FAULT_AROUND; n++, index++, addr += PAGE_SIZE) {
		vm_fault_t r;

		if (index >= x->nr_pages || addr >= vma->vm_end)
			break;
		r = vmf_insert_pfn(vma, addr, page_to_pfn(x->pages[index]));
		if (!n)
			ret = r;
		if (r != VM_FAULT_NOPAGE)
			break;
	}
	return ret;
}

/* A transfer's mapping gained a VMA (a split); returns the channel. */
struct zchan_channel *zchan_pages_vm_open(struct vm_area_struct *vma)
{
	struct zchan_xfer *x = vma->vm_private_data;
	struct zchan_channel *chan = x->chan;

	spin_lock(&chan->lock);
	x->vmas++;
	spin_unlock(&chan->lock);
	return chan;
}

/*
 * A VMA of a transfer's mapping is gone: the last one completes the
 * transfer.  Returns the channel, whose reference the VMA held.
 */
struct zchan_channel *zchan_pages_vm_close(struct vm_area_struct *vma)
{
	struct zchan_xfer *x = vma->vm_private_data;
	struct zchan_channel *chan = x->chan;
	unsigned int left;
	bool aborted;

	/*
	 * Aborted if the consumer's end or its whole address space is going
	 * (exit_mmap() runs with mm_users 0, before exit_files()).
	 */
	spin_lock(&chan->lock);
	left = --x->vmas;
	aborted = chan->cons.state == ZCHAN_END_GONE ||
		  !atomic_read(&vma->vm_mm->mm_users);
	spin_unlock(&chan->lock);
	if (!left)
		zchan_xfer_complete(chan, x, aborted ? ZCHAN_COMPL_ABORTED : 0);
	return chan;
}

/*
 * mmap() at a transfer's offset, by the consumer: read-only, shared,
 * exactly the transfer's length, once.  Never writable, never inherited.
 * The caller gives the VMA its operations and a channel reference.
 */
int zchan_pages_mmap(struct zchan_channel *chan, unsigned int role,
		     struct vm_area_struct *vma)
{
	unsigned long rel = vma->vm_pgoff - ZCHAN_PGOFF_PAGES;
	struct zchan_xfer *x;
	u32 id;

	if (role != ZCHAN_ROLE_CONSUMER || vma->vm_flags & VM_WRITE)
		return -EACCES;
	if (rel & ((1UL << ZCHAN_XFER_SHIFT) - 1))
		return -EINVAL;
	if ((rel >> ZCHAN_XFER_SHIFT) > ZCHAN_XFER_ID_MAX)
		return -EINVAL;
	id = rel >> ZCHAN_XFER_SHIFT;

	spin_lock(&chan->lock);
	x = xa_load(&chan->xfers, id);
	if (!x || vma_pages(vma) != x->nr_pages ||
	    chan->cons.state == ZCHAN_END_GONE) {
		spin_unlock(&chan->lock);
		return -EINVAL;
	}
	/* Mapped once: from now on the VMAs own it. */
	xa_erase(&chan->xfers, id);
	x->vmas = 1;
	spin_unlock(&chan->lock);

#ifdef ZCHAN_HAVE_VM_FLAGS_SET
	vm_flags_clear(vma, VM_MAYWRITE);
	vm_flags_set(vma, VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP |
		     VM_DONTCOPY);
#else
	vma->vm_flags |= VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP |
			 VM_DONTCOPY;
	vma->vm_flags &= ~VM_MAYWRITE;
#endif
	vma->vm_private_data = x;
	return 0;
}
