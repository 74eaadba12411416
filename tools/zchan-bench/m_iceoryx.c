// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * iceoryx: Eclipse iceoryx 2.0's zero-copy publish/subscribe, through its
 * C binding (Debian: libiceoryx-binding-c-dev), at the settings its
 * documentation gives for lossless delivery:
 *
 *   publisher   iox_pub_loan_chunk() / iox_pub_publish_chunk(), history 0,
 *               ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER (never drop)
 *   subscriber  iox_sub_take_chunk() / iox_sub_release_chunk(),
 *               QueueFullPolicy_BLOCK_PRODUCER, queue iox_queue_capacity()
 *               (32 MiB of messages, 2 .. 256)
 *   waiting     blocking modes: a WaitSet with the subscriber's HAS_DATA
 *               state attached; busy modes: polling iox_sub_take_chunk()
 *
 * A publisher whose subscriber queue is full waits inside iceoryx (it
 * yields the CPU in a loop: 2.0 has no sleeping producer).  Every channel
 * is its own service ("zchan-bench", "<pid>-<n>", "msg"); in the fan modes
 * the N publishers or subscribers of a run share one (n:m).  Each child is
 * an iceoryx runtime of its own, registered with the RouDi that
 * iox_roudi.c started for the sweep, and leaves with exit(3) so the
 * runtime deregisters (clean_exit).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <iceoryx_binding_c/enums.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/types.h>
#include <iceoryx_binding_c/wait_set.h>

#include "bench.h"

#define IOX_SERVICE "zchan-bench"
#define IOX_EVENT "msg"
#define IOX_CONNECT_TIMEOUT_MS 10000

struct iox_priv {
	char instance[48];
	iox_pub_storage_t pub_storage;
	iox_pub_t pub;
	iox_sub_storage_t sub_storage;
	iox_sub_t sub;
	iox_ws_storage_t ws_storage;
	iox_ws_t ws;
};

static const char *alloc_result(enum iox_AllocationResult r)
{
	switch (r) {
	case AllocationResult_NO_MEMPOOLS_AVAILABLE:
		return "no mempool for this size";
	case AllocationResult_RUNNING_OUT_OF_CHUNKS:
		return "mempool out of chunks";
	case AllocationResult_TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL:
		return "too many chunks loaned at once";
	default:
		return "allocation failed";
	}
}

static int iox_probe(char *why, size_t len)
{
	char bin[256];

	if (!iox_roudi_path(bin, sizeof(bin))) {
		snprintf(why, len, "%s not found (Debian package iceoryx)", bin);
		return -1;
	}
	return 0;
}

static int iox_prepare(const size_t *sizes, int nsizes, char *why, size_t len)
{
	return iox_roudi_start(sizes, nsizes, why, len);
}

static void iox_finish(void)
{
	iox_roudi_stop();
}

/* Parent: a name for the channel, unique in this sweep. */
static int iox_create(struct chan *c)
{
	static unsigned int serial;
	struct iox_priv *p = calloc(1, sizeof(*p));

	if (!p) {
		chan_error(c, "out of memory");
		return -1;
	}
	snprintf(p->instance, sizeof(p->instance), "%d-%u", (int)getpid(),
		 ++serial);
	c->priv = p;
	return 0;
}

/* One runtime per process, the first time one of its ends opens. */
static void runtime_init_once(void)
{
	static pid_t done;
	char name[64];

	if (done == getpid())
		return;
	done = getpid();
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	snprintf(name, sizeof(name), "zchan-bench-%d", (int)done);
	iox_runtime_init(name);
}

static void sleep_1ms(void)
{
	struct timespec ts = { 0, 1000000L };

	nanosleep(&ts, NULL);
}

static int open_publisher(struct chan *c, struct iox_priv *p)
{
	iox_pub_options_t opt;
	int waited;

	iox_pub_options_init(&opt);
	opt.historyCapacity = 0;
	opt.offerOnCreate = true;
	opt.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	p->pub = iox_pub_init(&p->pub_storage, IOX_SERVICE, p->instance,
			      IOX_EVENT, &opt);
	if (!p->pub) {
		chan_error(c, "iox_pub_init failed");
		return -1;
	}
	/* no history: what is published before the subscriber connects is lost */
	for (waited = 0; !iox_pub_has_subscribers(p->pub); waited++) {
		if (waited >= IOX_CONNECT_TIMEOUT_MS) {
			chan_error(c, "no subscriber connected within %d s",
				   IOX_CONNECT_TIMEOUT_MS / 1000);
			return -1;
		}
		sleep_1ms();
	}
	return 0;
}

static int open_subscriber(struct chan *c, struct iox_priv *p)
{
	iox_sub_options_t opt;
	enum iox_WaitSetResult ret;
	int waited;

	iox_sub_options_init(&opt);
	opt.queueCapacity = iox_queue_capacity(c->msg_size);
	opt.historyRequest = 0;
	opt.subscribeOnCreate = true;
	opt.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	p->sub = iox_sub_init(&p->sub_storage, IOX_SERVICE, p->instance,
			      IOX_EVENT, &opt);
	if (!p->sub) {
		chan_error(c, "iox_sub_init failed");
		return -1;
	}
	/*
	 * fan-out: the publisher cannot count its subscribers, so each
	 * waits until its subscription is acknowledged, before the run's
	 * barrier lets the publisher go (no history: a message published
	 * before that would never reach this subscriber)
	 */
	for (waited = 0; c->fan_out &&
	     iox_sub_get_subscription_state(p->sub) != SubscribeState_SUBSCRIBED;
	     waited++) {
		if (waited >= IOX_CONNECT_TIMEOUT_MS) {
			chan_error(c, "not subscribed within %d s",
				   IOX_CONNECT_TIMEOUT_MS / 1000);
			return -1;
		}
		sleep_1ms();
	}
	if (c->spin)
		return 0;
	p->ws = iox_ws_init(&p->ws_storage);
	if (!p->ws) {
		chan_error(c, "iox_ws_init failed");
		return -1;
	}
	ret = iox_ws_attach_subscriber_state(p->ws, p->sub,
					     SubscriberState_HAS_DATA, 0, NULL);
	if (ret != WaitSetResult_SUCCESS) {
		chan_error(c, "iox_ws_attach_subscriber_state: error %d", (int)ret);
		return -1;
	}
	return 0;
}

static int iox_open(struct chan *c, bool sender)
{
	c->sender = sender;
	if (c->msg_size > UINT32_MAX) {
		chan_error(c, "iceoryx chunks are below 4 GiB");
		return -1;
	}
	runtime_init_once();
	return sender ? open_publisher(c, c->priv) : open_subscriber(c, c->priv);
}

static void *iox_loan(struct chan *c)
{
	struct iox_priv *p = c->priv;
	enum iox_AllocationResult r;
	void *buf = NULL;

	r = iox_pub_loan_chunk(p->pub, &buf, (uint32_t)c->msg_size);
	if (r != AllocationResult_SUCCESS) {
		chan_error(c, "iox_pub_loan_chunk(%zu): %s", c->msg_size,
			   alloc_result(r));
		return NULL;
	}
	return buf;
}

static int iox_send(struct chan *c, void *buf)
{
	iox_pub_publish_chunk(((struct iox_priv *)c->priv)->pub, buf);
	return 0;
}

static const void *iox_recv(struct chan *c)
{
	struct iox_priv *p = c->priv;
	iox_notification_info_t info[1];
	const void *buf;
	uint64_t missed;

	for (;;) {
		enum iox_ChunkReceiveResult r = iox_sub_take_chunk(p->sub, &buf);

		if (r == ChunkReceiveResult_SUCCESS)
			return buf;
		if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
			chan_error(c, "iox_sub_take_chunk: %s",
				   r == ChunkReceiveResult_TOO_MANY_CHUNKS_HELD_IN_PARALLEL ?
				   "too many chunks held" : "error");
			return NULL;
		}
		if (c->spin)
			bench_cpu_relax();
		else
			iox_ws_wait(p->ws, info, 1, &missed);
	}
}

static void iox_release(struct chan *c, const void *buf)
{
	iox_sub_release_chunk(((struct iox_priv *)c->priv)->sub, buf);
}

static void iox_destroy(struct chan *c)
{
	struct iox_priv *p = c->priv;

	if (!p)
		return;
	if (p->ws)
		iox_ws_deinit(p->ws);
	if (p->sub)
		iox_sub_deinit(p->sub);
	if (p->pub)
		iox_pub_deinit(p->pub);
	free(p);
	c->priv = NULL;
}

/* Without a perf counter: iceoryx's own syscalls cannot be counted. */
static int64_t iox_lib_syscalls(struct chan *c)
{
	(void)c;
	return -1;
}

const struct method method_iceoryx = {
	.name = "iceoryx",
	.desc = "Eclipse iceoryx 2.0 zero-copy pub/sub (C binding, RouDi daemon)",
	.zero_copy = true,
	.probe = iox_probe,
	.create = iox_create,
	.open = iox_open,
	.loan = iox_loan,
	.send = iox_send,
	.recv = iox_recv,
	.release = iox_release,
	.destroy = iox_destroy,
	.lib_syscalls = iox_lib_syscalls,
	.prepare = iox_prepare,
	.finish = iox_finish,
	.clean_exit = true,
	/* fan modes: N publishers or N subscribers of one service (n:m) */
	.fan_in = FAN_SHARED,
	.fan_out = FAN_SHARED,
};
