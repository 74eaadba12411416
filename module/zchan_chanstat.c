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
 * /proc/PID/fdinfo/FD of a channel file names its channel and role (and a
 * fan-in producer's lane), so that a tool can tell which processes hold
 * which end of which channel.
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
	u32 published = 0, taken = 0, released = 0, recent = 0;
	u64 queued = 0, recent_bytes = 0;
	struct zchan_lane *lane;
	u32 i, n;

	/* A fan-in channel's counters are its lanes' summed. */
	zchan_for_each_lane(chan, i, n, lane) {
		u32 tail = READ_ONCE(*lane->w.tail);
		u32 head = READ_ONCE(*lane->w.head);
		u32 window = min3(tail, chan->layout.ring_entries,
				  ZCHAN_CHANSTAT_RECENT);
		u32 msgs;

		published += tail;
		taken += READ_ONCE(*lane->w.read);
		released += head;
		queued += zchan_queued_bytes(chan, lane, head, tail, NULL);
		recent_bytes += zchan_queued_bytes(chan, lane, tail - window,
						   tail, &msgs);
		recent += msgs;
	}
	seq_printf(m, "%llu %s %d %d %u %llu %u %u %u %u %llu %lld %lld %u %llu %u %u\n",
		   chan->id, chan->name[0] ? chan->name : "-",
		   READ_ONCE(chan->producers) > 0,
		   READ_ONCE(chan->cons.state) == ZCHAN_END_OPEN,
		   chan->layout.ring_entries, chan->layout.pool_size,
		   published, taken, released, published - released, queued,
		   (s64)atomic64_read(&chan->kicks),
		   (s64)atomic64_read(&chan->waits), recent, recent_bytes,
		   READ_ONCE(chan->producers), n);
}

static int zchan_chanstat_show(struct seq_file *m, void *v)
{
	struct zchan_channel *chan;

	seq_puts(m, "id name prod_open cons_open ring_entries pool_size published taken released backlog queued_bytes kicks waits recent_msgs recent_bytes producers lanes\n");
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
	struct zchan_end *end;
	unsigned int role;

	chan = zchan_file_chan(file->private_data, &role);
	seq_printf(m, "zchan-role:\t%s\n", zchan_role_name(role));
	if (!chan)
		return;
	seq_printf(m, "zchan-id:\t%llu\n", chan->id);
	if (chan->name[0])
		seq_printf(m, "zchan-name:\t%s\n", chan->name);
	/* A fan-in channel's producer: which lane is its own. */
	end = zchan_file_end(file->private_data, &chan);
	if (end->lane && chan->max_producers > 1)
		seq_printf(m, "zchan-lane:\t%u\n", end->lane->index);
}
