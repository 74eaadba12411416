// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan._zchan's private header: the objects and the helpers the files of
 * the binding share.
 *
 *  - end.c: an end's lock, timeouts, close, the calls both ends have,
 *    the End/Producer/Consumer types;
 *  - loan.c: the producer's calls and the Loan they lend;
 *  - message.c: the consumer's calls and the Message they borrow;
 *  - wait.c: retrying data-path calls in wait slices; poll(), wait();
 *  - pending.c: pending ends (pipe()) and receiving an end;
 *  - module.c: create(), open(), recv_peer() and the module's init.
 *
 * Nothing here is exported: only PyInit__zchan is visible.
 */
#ifndef ZCHAN_PY_H
#define ZCHAN_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#include <zchan.h>

#define ROLE_PRODUCER	ZCHAN_ROLE_PRODUCER
#define ROLE_CONSUMER	ZCHAN_ROLE_CONSUMER

/*
 * A receive that waits this long while this consumer's borrowed messages
 * pin the pool (the producer cannot fit a max_msg message) raises
 * BufferError instead of waiting with the producer for ever.
 */
#define PIN_WAIT_NS	(2000LL * 1000 * 1000)

/* Longest single wait before looking at signals and other threads. */
#define WAIT_SLICE_NS	(50LL * 1000 * 1000)

/* A release or an abort a busy lock postponed (end_give_back()). */
struct deferred_op {
	const void *buf;
	int abort;
};

typedef struct {
	PyObject_HEAD
	struct zchan *ch;
	int role;
	int pending_sock;		/* >= 0: not materialised yet */
	int claim_sock;			/* pending consumer: holds its token */
	int claimed;			/* took the pending side's token */
	unsigned int claim_generation;	/* zchan_fork_generation() then */
	int ready_fd;			/* fileno() of a consumer once pending */
	int keep_sock;			/* closed, socket kept for a pickler */
	struct zchan_attr attr;		/* pending producer: how to create */
	PyObject *name;			/* str or None */
	PyThread_type_lock lock;
	unsigned int lock_generation;	/* zchan_fork_generation() of lock */
	Py_ssize_t outstanding;		/* live loans and messages */
	int closed;			/* closed for Python */
	int close_requested;		/* by another thread, while waiting */
	unsigned long owner;		/* thread holding the lock, or 0 */
	struct deferred_op *deferred;	/* postponed: the lock was busy */
	Py_ssize_t ndeferred, deferred_cap;
	PyObject *weakreflist;
	/* consumer: what borrowed messages pin (see pool_pinned()) */
	uint64_t borrowed;		/* pool bytes taken so far, estimated */
	struct MessageObject *oldest_held, *newest_held;
	Py_ssize_t nheld;
	const void *pushback;		/* refused by recv_array(): next */
	Py_ssize_t pushback_len;
} EndObject;

typedef struct MessageObject {
	PyObject_HEAD
	EndObject *end;
	const void *buf;
	Py_ssize_t len;
	Py_ssize_t exports;
	int released;
	uint64_t at;			/* end->borrowed before this one */
	struct MessageObject *older, *newer;	/* the end's held list */
} MessageObject;

extern PyTypeObject EndType, ProducerType, ConsumerType, LoanType, LoanSpaceType,
	MessageType;
extern PyMethodDef producer_methods[], consumer_methods[];

/* end.c */
PyObject *set_error(int err);
PyObject *closed_error(void);
PyObject *data_error(long ret);
PyObject *msgsize_error(EndObject *self, size_t len);
int parse_timeout(PyObject *obj, int64_t *ns);
int64_t deadline_of(int64_t timeout_ns);
int64_t next_slice(int64_t deadline);
int64_t monotonic_ns(void);
void end_flush_deferred(EndObject *self);
int end_lock(EndObject *self, int64_t deadline);
void end_unlock(EndObject *self);
int end_enter(EndObject *self, int64_t deadline);
void end_put_outstanding(EndObject *self);
int end_give_back(EndObject *end, const void *buf, int abort);
EndObject *end_new(PyTypeObject *cls, int role);
PyObject *end_new_refused(PyTypeObject *cls, PyObject *a, PyObject *k);
int end_traverse(EndObject *self, visitproc visit, void *arg);
int sock_fd(PyObject *sock);

typedef long (*nonblock_op)(EndObject *self, void *ctx);
long end_retry(EndObject *self, nonblock_op op, void *ctx, int64_t timeout_ns,
	       int release_gil);

/* wait.c */
PyObject *end_poll(EndObject *self, PyObject *args, PyObject *kw);
PyObject *end_poll_mask(EndObject *self, PyObject *unused);
PyObject *end_wait(EndObject *self, PyObject *args, PyObject *kw);
extern const char end_poll_doc[], end_poll_mask_doc[], end_wait_doc[];

/* module.c */
int parse_role(int role);

/* pending.c */
int end_materialise(EndObject *self, int64_t deadline);
int pending_ready_fd(EndObject *self);
PyObject *pending_busy_error(void);
int wait_sock(int sock, int64_t deadline, const int *closing);
int recv_peer_bounded(int sock, int64_t deadline, const int *closing,
		      struct zchan **ch);

/* message.c */
uint64_t pool_pinned(EndObject *end);
void held_link(EndObject *end, MessageObject *msg);
void held_unlink(MessageObject *msg);
void pushback_drop(EndObject *self);
PyObject *consumer_iternext(EndObject *self);

#endif /* ZCHAN_PY_H */
