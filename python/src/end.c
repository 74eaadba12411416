// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan._zchan: the CPython binding of libzchan.  This file: an end.
 *
 * Three kinds of object:
 *  - an end (Producer or Consumer, both deriving from End) owns one
 *    struct zchan and a lock that serialises the threads using it;
 *  - a Loan is pool space lent to the producer, writable through the
 *    buffer protocol, until it is committed or aborted;
 *  - a Message is one borrowed message, read-only through the buffer
 *    protocol, until it is released.
 * Loans and messages keep their end alive and count as "outstanding": an
 * end closed while some exist is closed for Python at once but unmapped
 * only when the last one is gone, so no buffer ever points at a released
 * slot or an unmapped pool.
 *
 * Ends made by pipe() and Producer.consumer() are "pending": they hold
 * one side of a socketpair and become real on first use (the producer
 * creates the channel and sends the consumer end over the socket; the
 * consumer receives it).  Only a pending end can be pickled for another
 * process (zchan/__init__.py passes the socket's descriptor).
 *
 * Every wait releases the GIL and is cut in slices, so that signals,
 * close() from another thread and releases deferred by other threads are
 * seen within one slice.
 */
#include "zchan_py.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Errors                                                             */

/*
 * Raise the exception for a negative errno value: OSError(errno, text)
 * picks the built-in subclass (BrokenPipeError, BlockingIOError...);
 * -ETIME (zchan_wait) becomes TimeoutError, -EINVAL ValueError.
 */
PyObject *set_error(int err)
{
	PyObject *args;

	if (err >= 0)
		err = -EIO;
	if (err == -EINVAL) {
		PyErr_Format(PyExc_ValueError, "zchan: %s", zchan_strerror(err));
		return NULL;
	}
	if (err == -ETIME || err == -ETIMEDOUT) {
		args = Py_BuildValue("(is)", ETIMEDOUT, "zchan: timed out");
		if (args) {
			PyErr_SetObject(PyExc_TimeoutError, args);
			Py_DECREF(args);
		}
		return NULL;
	}
	/* Built now, so that PyErr_ExceptionMatches() sees the subclass. */
	args = Py_BuildValue("(is)", -err, zchan_strerror(err));
	if (args) {
		PyObject *exc = PyObject_Call(PyExc_OSError, args, NULL);

		if (exc) {
			PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
			Py_DECREF(exc);
		}
		Py_DECREF(args);
	}
	return NULL;
}

PyObject *closed_error(void)
{
	PyErr_SetString(PyExc_ValueError, "zchan: I/O operation on a closed end");
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Timeouts                                                           */

int64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* timeout=None: -1 (forever); a number of seconds >= 0: nanoseconds. */
int parse_timeout(PyObject *obj, int64_t *ns)
{
	double t;

	if (!obj || obj == Py_None) {
		*ns = -1;
		return 0;
	}
	t = PyFloat_AsDouble(obj);
	if (t == -1.0 && PyErr_Occurred())
		return -1;
	if (t < 0 || t != t) {
		PyErr_SetString(PyExc_ValueError, "timeout must be None or >= 0");
		return -1;
	}
	*ns = t > 1e9 ? -1 : (int64_t)(t * 1e9);
	if (t > 0 && *ns == 0)
		*ns = 1;	/* a timeout, however short, is not timeout=0 */
	return 0;
}

/* Deadline of a timeout (0: none), and what is left of it. */
int64_t deadline_of(int64_t timeout_ns)
{
	return timeout_ns < 0 ? 0 : monotonic_ns() + timeout_ns;
}

/* Next slice to wait: -ETIME once past the deadline. */
int64_t next_slice(int64_t deadline)
{
	int64_t left;

	if (!deadline)
		return WAIT_SLICE_NS;
	left = deadline - monotonic_ns();
	if (left <= 0)
		return -ETIME;
	return left < WAIT_SLICE_NS ? left : WAIT_SLICE_NS;
}

/* ------------------------------------------------------------------ */
/* The end's lock                                                     */

void end_flush_deferred(EndObject *self)
{
	Py_ssize_t i;

	for (i = 0; i < self->ndeferred; i++) {
		struct deferred_op *op = &self->deferred[i];

		if (op->abort)
			zchan_abort(self->ch, (void *)op->buf);
		else
			zchan_release(self->ch, op->buf);
	}
	self->ndeferred = 0;
}

/*
 * Give a borrowed message (or, @abort, a loan) back: now, or when the
 * thread that holds the end's lock leaves it.  Never waits: a message or
 * loan may go from a signal handler or the garbage collector while this
 * very thread holds the lock.
 */
int end_give_back(EndObject *end, const void *buf, int abort)
{
	int ret = 0;

	if (end->lock_generation == zchan_fork_generation() &&
	    PyThread_acquire_lock(end->lock, NOWAIT_LOCK)) {
		if (end->ch)
			ret = abort ? zchan_abort(end->ch, (void *)buf) :
				      zchan_release(end->ch, buf);
		PyThread_release_lock(end->lock);
		return ret;
	}
	if (end->ndeferred == end->deferred_cap) {
		Py_ssize_t cap = end->deferred_cap ? end->deferred_cap * 2 : 16;
		struct deferred_op *d = PyMem_Realloc(end->deferred, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		end->deferred = d;
		end->deferred_cap = cap;
	}
	end->deferred[end->ndeferred].buf = buf;
	end->deferred[end->ndeferred++].abort = abort;
	return 0;
}

/*
 * Take the end's lock, waiting (without the GIL) up to @deadline (0:
 * forever, -1: not at all) for another thread to leave.  The lock of an end inherited through fork()
 * may have been held by a thread that does not exist here: replace it.
 */
int end_lock(EndObject *self, int64_t deadline)
{
	PyLockStatus st;

	unsigned int forks = zchan_fork_generation();

	if (self->lock_generation != forks) {
		self->lock = PyThread_allocate_lock();
		if (!self->lock) {
			PyErr_NoMemory();
			return -1;
		}
		self->lock_generation = forks;
		self->owner = 0;
	}
	if (PyThread_acquire_lock(self->lock, NOWAIT_LOCK))
		goto locked;
	if (self->owner == PyThread_get_thread_ident()) {
		/* a signal handler or __del__ inside this thread's own call */
		PyErr_SetString(PyExc_RuntimeError,
				"zchan: re-entrant call on an end this thread is "
				"already using (from a signal handler or __del__?)");
		return -1;
	}
	if (deadline < 0) {
		set_error(-EAGAIN);
		return -1;
	}
	for (;;) {
		int64_t slice = next_slice(deadline);

		if (slice < 0) {
			set_error(-ETIME);
			return -1;
		}
		Py_BEGIN_ALLOW_THREADS
		st = PyThread_acquire_lock_timed(self->lock, slice / 1000, 0);
		Py_END_ALLOW_THREADS
		if (st == PY_LOCK_ACQUIRED)
			break;
		if (PyErr_CheckSignals())
			return -1;
	}
locked:
	self->owner = PyThread_get_thread_ident();
	if (self->ndeferred && self->ch)
		end_flush_deferred(self);
	return 0;
}

void end_unlock(EndObject *self)
{
	if (self->ndeferred && self->ch)
		end_flush_deferred(self);
	self->owner = 0;
	PyThread_release_lock(self->lock);
}

/*
 * Lock the end for a call and make sure it is real.  @deadline as in
 * next_slice(), or -1 for "do not wait" (timeout=0).
 */
int end_enter(EndObject *self, int64_t deadline)
{
	int ret;

	if (self->closed) {
		closed_error();
		return -1;
	}
	if (end_lock(self, deadline))
		return -1;
	if (self->closed) {
		end_unlock(self);
		closed_error();
		return -1;
	}
	if (!self->ch) {
		ret = end_materialise(self, deadline);
		if (ret) {
			end_unlock(self);
			if (ret == -EINTR && PyErr_Occurred())
				return -1;
			if (ret == -EBADF)
				closed_error();
			else if (ret == -EBUSY)
				pending_busy_error();
			else
				set_error(ret);
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Closing                                                            */

/*
 * Really close: only once nothing in Python points into the channel.
 * zchan_close() of an end this process inherited through fork() and never
 * used ends nothing for the parent, which still uses it (libzchan's
 * rule, Documentation/library.rst "Who keeps an end open").
 */
static void end_teardown(EndObject *self)
{
	if (self->ch && !self->outstanding) {
		struct zchan *ch = self->ch;

		self->ch = NULL;
		self->ndeferred = 0;
		Py_BEGIN_ALLOW_THREADS
		zchan_close(ch);
		Py_END_ALLOW_THREADS
	}
	if (self->ready_fd >= 0) {
		close(self->ready_fd);
		self->ready_fd = -1;
	}
	if (self->pending_sock >= 0 && !self->keep_sock) {
		close(self->pending_sock);
		self->pending_sock = -1;
	}
	if (self->claim_sock >= 0 && !self->keep_sock) {
		close(self->claim_sock);
		self->claim_sock = -1;
	}
}

/* A loan or message is gone: the last one finishes a deferred close. */
void end_put_outstanding(EndObject *self)
{
	if (--self->outstanding == 0 && self->closed)
		end_teardown(self);
}

PyDoc_STRVAR(end_close_doc,
"close()\n--\n\n"
"Close this end.  The peer sees the end of the stream (a consumer first\n"
"receives every message committed before).  Loans, messages and arrays\n"
"still alive keep the mapping until they are gone; the end is unusable\n"
"at once.  Another thread waiting on this end gets ValueError.");

static PyObject *end_close(EndObject *self, PyObject *unused)
{
	if (self->closed)
		Py_RETURN_NONE;
	pushback_drop(self);
	self->close_requested = 1;
	if (end_lock(self, 0))
		return NULL;
	self->closed = 1;
	end_teardown(self);
	end_unlock(self);
	Py_RETURN_NONE;
}

/*
 * close() of a pending end something else still holds (a Queue's buffer
 * whose feeder thread has yet to pickle it: zchan/__init__.py decides):
 * closed for this process at once, its socket kept until the object goes,
 * so that the pickler can still pass it on.
 */
static PyObject *end_close_later(EndObject *self, PyObject *unused)
{
	if (!self->closed && !self->ch && self->pending_sock >= 0 && !self->claimed)
		self->keep_sock = 1;
	return end_close(self, NULL);
}

static void end_dealloc(EndObject *self)
{
	PyObject_GC_UnTrack(self);
	if (self->weakreflist)
		PyObject_ClearWeakRefs((PyObject *)self);
	self->keep_sock = 0;
	self->closed = 1;
	self->outstanding = 0;
	end_teardown(self);
	if (self->lock)
		PyThread_free_lock(self->lock);
	PyMem_Free(self->deferred);
	Py_CLEAR(self->name);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

int end_traverse(EndObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->name);
	return 0;
}

EndObject *end_new(PyTypeObject *cls, int role)
{
	EndObject *self;

	if (!PyType_IsSubtype(cls, role == ROLE_PRODUCER ? &ProducerType :
			      &ConsumerType)) {
		PyErr_SetString(PyExc_TypeError, "wrong class for this end");
		return NULL;
	}
	self = (EndObject *)cls->tp_alloc(cls, 0);
	if (!self)
		return NULL;
	self->role = role;
	self->pending_sock = -1;
	self->claim_sock = -1;
	self->ready_fd = -1;
	self->lock = PyThread_allocate_lock();
	self->lock_generation = zchan_fork_generation();
	self->name = Py_NewRef(Py_None);
	zchan_attr_init(&self->attr);
	if (!self->lock) {
		Py_DECREF(self);
		return (EndObject *)PyErr_NoMemory();
	}
	return self;
}

PyObject *end_new_refused(PyTypeObject *cls, PyObject *a, PyObject *k)
{
	PyErr_Format(PyExc_TypeError,
		     "cannot create '%s' instances: use zchan.create(), "
		     "zchan.open(), zchan.pipe() or zchan.recv_peer()", cls->tp_name);
	return NULL;
}

/* EMSGSIZE naming the sizes, and the geometry that would carry @len. */
PyObject *msgsize_error(EndObject *self, size_t len)
{
	struct zchan_attr a;
	PyObject *args;

	if (!self->ch || zchan_get_attr(self->ch, &a))
		return set_error(-EMSGSIZE);
	args = PyUnicode_FromFormat(
		"zchan: a message of %zu bytes is larger than this channel's "
		"max_msg, %zu bytes (pool_size %zu): create it with max_msg >= %zu "
		"(zchan.create() then makes pool_size at least twice that)",
		len, a.max_msg, a.pool_size, len);
	if (args) {
		PyObject *exc = PyObject_CallFunction(PyExc_OSError, "iO", EMSGSIZE, args);

		if (exc) {
			PyErr_SetObject(PyExc_OSError, exc);
			Py_DECREF(exc);
		}
		Py_DECREF(args);
	}
	return NULL;
}

/* Raise for a failed data-path call (not for -EINTR: already raised). */
PyObject *data_error(long ret)
{
	if (ret == -EINTR && PyErr_Occurred())
		return NULL;
	if (ret == -EBADF)
		return closed_error();
	return set_error((int)ret);
}
/* ------------------------------------------------------------------ */
/* End: common methods                                                */

/*
 * Make sure of a real end for a call that only reads the handle (fileno,
 * stats, attributes), without keeping the lock: such a call never waits
 * behind another thread's wait, nor deadlocks in a signal handler that
 * interrupted this thread's own wait.  It holds the GIL throughout, and
 * close() clears ch before it lets go of the GIL to tear the end down.
 */
static int end_enter_quick(EndObject *self)
{
	if (self->closed) {
		closed_error();
		return -1;
	}
	if (self->ch)
		return 0;
	if (end_enter(self, 0))
		return -1;
	end_unlock(self);
	return 0;
}

PyDoc_STRVAR(end_fileno_doc,
"fileno() -> int\n--\n\n"
"A file descriptor for poll/select/epoll/asyncio: readable when the end\n"
"may be ready (see Documentation/library.rst, Event loops).  Call the end\n"
"with timeout=0 until BlockingIOError, then wait on it.  A pending\n"
"consumer's is readable once its producer was used, and stays the same\n"
"descriptor once the end is real.  Never waits.");

static PyObject *end_fileno(EndObject *self, PyObject *unused)
{
	int fd;

	if (self->closed)
		return closed_error();
	if (self->ready_fd >= 0)
		return PyLong_FromLong(self->ready_fd);
	if (!self->ch && self->role == ROLE_CONSUMER) {
		/* real already if its producer was used (not if another thread
		 * waits on it: no waiting for the lock here) */
		if (!end_lock(self, -1)) {
			fd = end_materialise(self, -1);
			end_unlock(self);
			if (fd && fd != -EAGAIN)
				return fd == -EBUSY ? pending_busy_error() : set_error(fd);
		} else {
			PyErr_Clear();
		}
		fd = self->ch ? zchan_fd(self->ch) : pending_ready_fd(self);
		if (fd == -EBUSY)
			return pending_busy_error();
	} else {
		if (end_enter_quick(self))
			return NULL;
		fd = zchan_fd(self->ch);
	}
	if (fd < 0)
		return set_error(fd);
	return PyLong_FromLong(fd);
}

PyDoc_STRVAR(end_stats_doc,
"stats() -> dict\n--\n\n"
"This end's counters: messages and bytes published (producer) or taken\n"
"(consumer), kicks (wakeup syscalls sent), waits (sleeps in the kernel),\n"
"spins (spin iterations before sleeping) and syscalls (every system call\n"
"the waits and wakeups made, kicks and sleeps included).");

static PyObject *end_stats(EndObject *self, PyObject *unused)
{
	struct zchan_stats st;
	int ret;

	if (end_enter_quick(self))
		return NULL;
	ret = zchan_stats(self->ch, &st);
	if (ret)
		return set_error(ret);
	return Py_BuildValue("{sKsKsKsKsKsK}", "messages", (unsigned long long)st.messages,
			     "bytes", (unsigned long long)st.bytes,
			     "kicks", (unsigned long long)st.kicks,
			     "waits", (unsigned long long)st.waits,
			     "spins", (unsigned long long)st.spins,
			     "syscalls", (unsigned long long)st.syscalls);
}

static PyObject *end_get_attr_value(EndObject *self, int which)
{
	struct zchan_attr a;
	int ret = 0;

	if (!self->closed && !self->ch && self->role == ROLE_PRODUCER &&
	    self->pending_sock >= 0 && which != 3) {
		/*
		 * A pending producer's sizes are what it will create (the
		 * library's defaults and rounding): reading them must not
		 * create the channel here, or the end could no longer move.
		 */
		size_t page = (size_t)sysconf(_SC_PAGESIZE);

		a = self->attr;
		a.pool_size = a.pool_size ? a.pool_size : ZCHAN_DEFAULT_POOL_SIZE;
		a.pool_size = (a.pool_size + page - 1) & ~(page - 1);
		if (!a.max_msg)
			a.max_msg = a.pool_size / 4 < (1U << 30) ? a.pool_size / 4 : (1U << 30);
		if (!a.ring_entries)
			a.ring_entries = ZCHAN_DEFAULT_RING_ENTRIES;
	} else {
		if (end_enter_quick(self))
			return NULL;
		ret = zchan_get_attr(self->ch, &a);
		if (!ret && which == 3)
			ret = zchan_backend(self->ch);
	}
	if (ret < 0)
		return set_error(ret);
	switch (which) {
	case 0:
		return PyLong_FromSize_t(a.pool_size);
	case 1:
		return PyLong_FromSize_t(a.max_msg);
	case 2:
		return PyLong_FromUnsignedLong(a.ring_entries);
	case 4:
		return PyLong_FromUnsignedLong(a.max_producers ? a.max_producers : 1);
	case 5:
		return PyLong_FromUnsignedLong(a.max_consumers ? a.max_consumers : 1);
	case 6:
		return PyBool_FromLong(!!(a.flags & ZCHAN_BROADCAST));
	default:
		return PyUnicode_FromString(ret == ZCHAN_BACKEND_KERNEL ? "kernel" : "memfd");
	}
}

static PyObject *end_get_pool_size(EndObject *self, void *c) { return end_get_attr_value(self, 0); }
static PyObject *end_get_max_msg(EndObject *self, void *c) { return end_get_attr_value(self, 1); }
static PyObject *end_get_ring_entries(EndObject *self, void *c) { return end_get_attr_value(self, 2); }
static PyObject *end_get_backend(EndObject *self, void *c) { return end_get_attr_value(self, 3); }
static PyObject *end_get_max_producers(EndObject *self, void *c) { return end_get_attr_value(self, 4); }
static PyObject *end_get_max_consumers(EndObject *self, void *c) { return end_get_attr_value(self, 5); }
static PyObject *end_get_broadcast(EndObject *self, void *c) { return end_get_attr_value(self, 6); }

static PyObject *end_get_closed(EndObject *self, void *c)
{
	return PyBool_FromLong(self->closed);
}

static PyObject *end_get_name(EndObject *self, void *c)
{
	return Py_NewRef(self->name);
}

static PyObject *end_get_pending(EndObject *self, void *c)
{
	return PyBool_FromLong(!self->closed && !self->ch && self->pending_sock >= 0);
}

static PyObject *end_enter_cm(EndObject *self, PyObject *unused)
{
	if (self->closed)
		return closed_error();
	return Py_NewRef(self);
}

static PyObject *end_exit_cm(EndObject *self, PyObject *args)
{
	return end_close(self, NULL);
}

PyDoc_STRVAR(end_pending_state_doc,
"_pending_state() -> (socket_fd, attr or claim_fd)\n--\n\n"
"For pickling (zchan/__init__.py): the rendezvous socket of a pending\n"
"end and, for a producer, its creation attributes, for a consumer its\n"
"claim socket (python/src/pending.c).  TypeError once the\n"
"end was used: a used end cannot move to another process.");

static PyObject *end_pending_state(EndObject *self, PyObject *unused)
{
	const struct zchan_attr *a = &self->attr;

	if (self->closed && !self->keep_sock)
		return closed_error();
	if (self->ch || self->pending_sock < 0 || self->claimed) {
		PyErr_SetString(PyExc_TypeError,
				"a zchan end can be sent to another process only before "
				"its first use (make it with zchan.pipe() or "
				"Producer.consumer()), or use send_peer()/recv_peer()");
		return NULL;
	}
	if (self->role == ROLE_CONSUMER)
		return Py_BuildValue("ii", self->pending_sock, self->claim_sock);
	return Py_BuildValue("i(nnIIIIII)", self->pending_sock, (Py_ssize_t)a->pool_size,
			     (Py_ssize_t)a->max_msg, a->ring_entries, a->mode,
			     a->flags, a->backend, a->max_producers, a->max_consumers);
}

PyDoc_STRVAR(end_send_end_doc,
"send_end(role, sock)\n--\n\n"
"Hand a new end of role (zchan.ROLE_PRODUCER or ROLE_CONSUMER) of this\n"
"channel to the process at the other side of an AF_UNIX socket (a\n"
"socket.socket or a descriptor), as zchan_send_end(3); it takes it with\n"
"zchan.recv_peer(sock, role=role).  Any end of the channel may do it.\n"
"OSError EUSERS once the role has its maximum of live ends.");

static PyObject *end_send_end(EndObject *self, PyObject *args)
{
	PyObject *sock;
	int role, fd, ret;

	if (!PyArg_ParseTuple(args, "iO:send_end", &role, &sock))
		return NULL;
	if (parse_role(role))
		return NULL;
	fd = sock_fd(sock);
	if (fd < 0)
		return NULL;
	if (end_enter(self, 0))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = zchan_send_end(self->ch, (unsigned int)role, fd);
	Py_END_ALLOW_THREADS
	end_unlock(self);
	if (ret)
		return set_error(ret);
	Py_RETURN_NONE;
}

PyDoc_STRVAR(end_ends_doc,
"ends(role) -> int\n--\n\n"
"How many ends of role (zchan.ROLE_PRODUCER or ROLE_CONSUMER) of this\n"
"channel are live now, as zchan_ends(3).");

static PyObject *end_ends(EndObject *self, PyObject *arg)
{
	long role = PyLong_AsLong(arg);
	int ret;

	if (role == -1 && PyErr_Occurred())
		return NULL;
	if (parse_role((int)role) || end_enter(self, 0))
		return NULL;
	ret = zchan_ends(self->ch, (unsigned int)role);
	end_unlock(self);
	if (ret < 0)
		return set_error(ret);
	return PyLong_FromLong(ret);
}

static PyObject *end_repr(EndObject *self)
{
	const char *kind = self->role == ROLE_PRODUCER ? "Producer" : "Consumer";
	const char *state = self->closed ? "closed" : self->ch ? "open" : "pending";

	if (self->name != Py_None)
		return PyUnicode_FromFormat("<zchan.%s %R %s>", kind, self->name, state);
	return PyUnicode_FromFormat("<zchan.%s %s>", kind, state);
}

static PyMethodDef end_methods[] = {
	{ "close", (PyCFunction)end_close, METH_NOARGS, end_close_doc },
	{ "fileno", (PyCFunction)end_fileno, METH_NOARGS, end_fileno_doc },
	{ "poll", (PyCFunction)end_poll, METH_VARARGS | METH_KEYWORDS, end_poll_doc },
	{ "poll_mask", (PyCFunction)end_poll_mask, METH_NOARGS, end_poll_mask_doc },
	{ "wait", (PyCFunction)end_wait, METH_VARARGS | METH_KEYWORDS, end_wait_doc },
	{ "stats", (PyCFunction)end_stats, METH_NOARGS, end_stats_doc },
	{ "send_end", (PyCFunction)end_send_end, METH_VARARGS, end_send_end_doc },
	{ "ends", (PyCFunction)end_ends, METH_O, end_ends_doc },
	{ "__enter__", (PyCFunction)end_enter_cm, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)end_exit_cm, METH_VARARGS, NULL },
	{ "_close_later", (PyCFunction)end_close_later, METH_NOARGS, NULL },
	{ "_pending_state", (PyCFunction)end_pending_state, METH_NOARGS, end_pending_state_doc },
	{ NULL }
};

static PyGetSetDef end_getset[] = {
	{ "closed", (getter)end_get_closed, NULL, "True once close() was called", NULL },
	{ "name", (getter)end_get_name, NULL, "the channel's name, or None", NULL },
	{ "backend", (getter)end_get_backend, NULL, "\"kernel\" or \"memfd\"", NULL },
	{ "pool_size", (getter)end_get_pool_size, NULL, "data pool bytes", NULL },
	{ "max_msg", (getter)end_get_max_msg, NULL, "largest message, bytes", NULL },
	{ "ring_entries", (getter)end_get_ring_entries, NULL, "descriptor ring size", NULL },
	{ "max_producers", (getter)end_get_max_producers, NULL,
	  "most producer ends live at once", NULL },
	{ "max_consumers", (getter)end_get_max_consumers, NULL,
	  "most consumer ends live at once", NULL },
	{ "broadcast", (getter)end_get_broadcast, NULL,
	  "True if every consumer gets every message", NULL },
	{ "pending", (getter)end_get_pending, NULL,
	  "True until a pipe() end is first used (it can still be pickled)", NULL },
	{ NULL }
};


static PyObject *consumer_iter(PyObject *self)
{
	return Py_NewRef(self);
}

PyTypeObject EndType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zchan._zchan.End",
	.tp_basicsize = sizeof(EndObject),
	.tp_dealloc = (destructor)end_dealloc,
	.tp_repr = (reprfunc)end_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "One end of a zchan channel (Producer or Consumer).",
	.tp_traverse = (traverseproc)end_traverse,
	.tp_weaklistoffset = offsetof(EndObject, weakreflist),
	.tp_methods = end_methods,
	.tp_getset = end_getset,
	.tp_new = end_new_refused,
};

PyTypeObject ProducerType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zchan._zchan.Producer",
	.tp_basicsize = sizeof(EndObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "The producer end of a channel: send(), loan().",
	.tp_traverse = (traverseproc)end_traverse,
	.tp_methods = producer_methods,
	.tp_base = &EndType,
	.tp_new = end_new_refused,
};

PyTypeObject ConsumerType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zchan._zchan.Consumer",
	.tp_basicsize = sizeof(EndObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "The consumer end of a channel: recv(), recv_zc(), iteration.",
	.tp_traverse = (traverseproc)end_traverse,
	.tp_methods = consumer_methods,
	.tp_iter = consumer_iter,
	.tp_iternext = (iternextfunc)consumer_iternext,
	.tp_base = &EndType,
	.tp_new = end_new_refused,
};

