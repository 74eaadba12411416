// SPDX-License-Identifier: GPL-2.0
/*
 * zchan: per-channel state for monitoring tools (zchan-top) - debugfs
 * zchan/chanstat and the fdinfo of channel files.
 *
 * zchan/chanstat has a header line naming its columns and one line per
 * live channel; tools find columns by name, so columns may be added.  It
 * is in debugfs, root only, rather than in /proc: it lists the channels of
 * every IPC namespace, names included, and is not a stable ABI.
 *
 * The ring counters are free-running u32 words the processes write in
 * shared memory: they are read once and printed as found (a hostile
 * process can make them say anything about its own channel).
 *
 * /proc/PID/fdinfo/FD of a channel file names its channel and role, so
 * that a tool can tell which processes hold which channel.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "zchan_priv.h"

/* Descriptors averaged for recent_bytes: bounds the walk per channel. */
#define ZCHAN_CHANSTAT_RECENT	1024U

static const char *zchan_role_name(unsigned int role)
{
	switch (role) {
	case ZCHAN_ROLE_PRODUCER:
		return "producer";
	case ZCHAN_ROLE_CONSUMER:
		return "consumer";
	}
	return "none";
}

static void zchan_chanstat_show_one(struct seq_file *m,
				    struct zchan_channel *chan)
{
	u32 published = READ_ONCE(*chan->w.tail);
	u32 taken = READ_ONCE(*chan->w.read);
	u32 released = READ_ONCE(*chan->w.head);
	u32 window = min3(published, chan->layout.ring_entries,
			  ZCHAN_CHANSTAT_RECENT);
	u32 recent;
	u64 recent_bytes = zchan_queued_bytes(chan, published - window,
					      published, &recent);

	seq_printf(m, "%llu %s %d %d %u %llu %u %u %u %u %llu %lld %lld %u %llu\n",
		   chan->id, chan->name[0] ? chan->name : "-",
		   READ_ONCE(chan->ends[ZCHAN_END_PROD].state) == ZCHAN_END_OPEN,
		   READ_ONCE(chan->ends[ZCHAN_END_CONS].state) == ZCHAN_END_OPEN,
		   chan->layout.ring_entries, chan->layout.pool_size,
		   published, taken, released, published - released,
		   zchan_queued_bytes(chan, released, published, NULL),
		   (s64)atomic64_read(&chan->kicks),
		   (s64)atomic64_read(&chan->waits), recent, recent_bytes);
}

static int zchan_chanstat_show(struct seq_file *m, void *v)
{
	struct zchan_channel *chan;

	seq_puts(m, "id name prod_open cons_open ring_entries pool_size published taken released backlog queued_bytes kicks waits recent_msgs recent_bytes\n");
	mutex_lock(&zchan_lock);
	list_for_each_entry(chan, &zchan_channels, node)
		zchan_chanstat_show_one(m, chan);
	mutex_unlock(&zchan_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(zchan_chanstat);

/* Called from zchan_debugfs_init() with the zchan directory. */
void zchan_chanstat_init(struct dentry *dir)
{
	debugfs_create_file("chanstat", 0400, dir, NULL, &zchan_chanstat_fops);
}

void zchan_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct zchan_channel *chan;
	unsigned int role;

	chan = zchan_file_chan(file->private_data, &role);
	seq_printf(m, "zchan-role:\t%s\n", zchan_role_name(role));
	if (!chan)
		return;
	seq_printf(m, "zchan-id:\t%llu\n", chan->id);
	if (chan->name[0])
		seq_printf(m, "zchan-name:\t%s\n", chan->name);
}
