// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan._zchan: the CPython binding of libzchan.
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
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zchan.h>

#define ROLE_PRODUCER	1
#define ROLE_CONSUMER	2

/* Longest single wait before looking at signals and other threads. */
#define WAIT_SLICE_NS	(50LL * 1000 * 1000)

/* Bumped in a child after fork(): every end then replaces its lock. */
static unsigned long fork_generation;

typedef struct {
	PyObject_HEAD
	struct zchan *ch;
	int role;
	int pending_sock;		/* >= 0: not materialised yet */
	struct zchan_attr attr;		/* pending producer: how to create */
	PyObject *name;			/* str or None */
	PyThread_type_lock lock;
	unsigned long lock_generation;
	unsigned long use_generation;	/* last process (fork) that used it */
	Py_ssize_t outstanding;		/* live loans and messages */
	int closed;			/* closed for Python */
	int close_requested;		/* by another thread, while waiting */
	const void **deferred;		/* releases postponed: lock was busy */
	Py_ssize_t ndeferred, deferred_cap;
	PyObject *weakreflist;
} EndObject;

typedef struct {
	PyObject_HEAD
	EndObject *end;
	void *buf;
	Py_ssize_t len;
	Py_ssize_t exports;
	int done;			/* committed or aborted */
	PyObject *array;		/* loan_array(): the ndarray over it */
} LoanObject;

typedef struct {
	PyObject_HEAD
	EndObject *end;
	const void *buf;
	Py_ssize_t len;
	Py_ssize_t exports;
	int released;
} MessageObject;

static PyTypeObject EndType, ProducerType, ConsumerType, LoanType, MessageType;

/* ------------------------------------------------------------------ */
/* Errors                                                             */

/*
 * Raise the exception for a negative errno value: OSError(errno, text)
 * picks the built-in subclass (BrokenPipeError, BlockingIOError...);
 * -ETIME (zchan_wait) becomes TimeoutError, -EINVAL ValueError.
 */
static PyObject *set_error(int err)
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

static PyObject *closed_error(void)
{
	PyErr_SetString(PyExc_ValueError, "zchan: I/O operation on a closed end");
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Timeouts                                                           */

static int64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* timeout=None: -1 (forever); a number of seconds >= 0: nanoseconds. */
static int parse_timeout(PyObject *obj, int64_t *ns)
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
	return 0;
}

/* Deadline of a timeout (0: none), and what is left of it. */
static int64_t deadline_of(int64_t timeout_ns)
{
	return timeout_ns < 0 ? 0 : monotonic_ns() + timeout_ns;
}

/* Next slice to wait: -ETIME once past the deadline. */
static int64_t next_slice(int64_t deadline)
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

static void end_flush_deferred(EndObject *self)
{
	Py_ssize_t i;

	for (i = 0; i < self->ndeferred; i++)
		zchan_release(self->ch, self->deferred[i]);
	self->ndeferred = 0;
}

/*
 * Take the end's lock, waiting (without the GIL) up to @deadline (0:
 * forever, -1: not at all) for another thread to leave.  The lock of an end inherited through fork()
 * may have been held by a thread that does not exist here: replace it.
 */
static int end_lock(EndObject *self, int64_t deadline)
{
	PyLockStatus st;

	if (self->lock_generation != fork_generation) {
		self->lock = PyThread_allocate_lock();
		if (!self->lock) {
			PyErr_NoMemory();
			return -1;
		}
		self->lock_generation = fork_generation;
	}
	if (PyThread_acquire_lock(self->lock, NOWAIT_LOCK))
		goto locked;
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
	if (self->ndeferred && self->ch)
		end_flush_deferred(self);
	return 0;
}

static void end_unlock(EndObject *self)
{
	if (self->ndeferred && self->ch)
		end_flush_deferred(self);
	PyThread_release_lock(self->lock);
}

/* ------------------------------------------------------------------ */
/* Materialising pending ends                                         */

/* Wait (no GIL) until @fd is readable; -ETIME, -EINTR or 0. */
static int wait_readable(int fd, int64_t slice_ns)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int ret;

	Py_BEGIN_ALLOW_THREADS
	ret = poll(&pfd, 1, (int)((slice_ns + 999999) / 1000000));
	Py_END_ALLOW_THREADS
	if (ret < 0)
		return -errno;
	return ret ? 0 : -ETIME;
}

/*
 * Make a pending end real; called with the lock held.  A pending consumer
 * waits up to @deadline for its producer to be used somewhere; if every
 * copy of the producer's socket is closed first, the stream is over
 * before it began: -EPIPE.
 */
static int end_materialise(EndObject *self, int64_t deadline)
{
	int ret, sock = self->pending_sock;
	char c;

	if (self->ch || sock < 0)
		return 0;
	if (self->role == ROLE_PRODUCER) {
		struct zchan *ch;

		Py_BEGIN_ALLOW_THREADS
		ret = zchan_create(NULL, &self->attr, &ch);
		if (!ret) {
			ret = zchan_send_peer(ch, sock);
			if (ret)
				zchan_close(ch);
		}
		Py_END_ALLOW_THREADS
		if (ret)
			return ret;
		self->ch = ch;
		goto done;
	}
	for (;;) {
		int64_t slice = deadline < 0 ? 0 : next_slice(deadline);

		if (slice < 0)
			return -ETIME;
		ret = wait_readable(sock, slice);
		if (!ret)
			break;
		if (ret != -ETIME && ret != -EINTR)
			return ret;
		if (deadline < 0)	/* timeout=0 */
			return -EAGAIN;
		if (PyErr_CheckSignals())
			return -EINTR;
		if (self->close_requested)
			return -EBADF;
	}
	ret = (int)recv(sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (ret == 0)
		return -EPIPE;
	Py_BEGIN_ALLOW_THREADS
	ret = zchan_recv_peer(sock, &self->ch);
	Py_END_ALLOW_THREADS
	if (ret)
		return ret;
done:
	close(sock);
	self->pending_sock = -1;
	return 0;
}

/*
 * Lock the end for a call and make sure it is real.  @deadline as in
 * next_slice(), or -1 for "do not wait" (timeout=0).
 */
static int end_enter(EndObject *self, int64_t deadline)
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
	self->use_generation = fork_generation;
	if (!self->ch) {
		ret = end_materialise(self, deadline);
		if (ret) {
			end_unlock(self);
			if (ret == -EINTR && PyErr_Occurred())
				return -1;
			if (ret == -EBADF)
				closed_error();
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
 * Really close: only once nothing in Python points into the channel.  An
 * end this process inherited through fork() and never used is left alone
 * (its descriptors and mappings go with the process): closing it could end
 * the stream of the parent, which still uses it (issue 13).
 */
static void end_teardown(EndObject *self)
{
	if (self->ch && !self->outstanding) {
		struct zchan *ch = self->ch;

		self->ch = NULL;
		self->ndeferred = 0;
		if (self->use_generation != fork_generation)
			return;
		Py_BEGIN_ALLOW_THREADS
		zchan_close(ch);
		Py_END_ALLOW_THREADS
	}
	if (self->pending_sock >= 0) {
		close(self->pending_sock);
		self->pending_sock = -1;
	}
}

/* A loan or message is gone: the last one finishes a deferred close. */
static void end_put_outstanding(EndObject *self)
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
	self->close_requested = 1;
	if (end_lock(self, 0))
		return NULL;
	self->closed = 1;
	end_teardown(self);
	end_unlock(self);
	Py_RETURN_NONE;
}

static void end_dealloc(EndObject *self)
{
	PyObject_GC_UnTrack(self);
	if (self->weakreflist)
		PyObject_ClearWeakRefs((PyObject *)self);
	self->closed = 1;
	self->outstanding = 0;
	end_teardown(self);
	if (self->lock)
		PyThread_free_lock(self->lock);
	PyMem_Free(self->deferred);
	Py_CLEAR(self->name);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static int end_traverse(EndObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->name);
	return 0;
}

static EndObject *end_new(PyTypeObject *cls, int role)
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
	self->lock = PyThread_allocate_lock();
	self->lock_generation = fork_generation;
	self->use_generation = fork_generation;
	self->name = Py_NewRef(Py_None);
	zchan_attr_init(&self->attr);
	if (!self->lock) {
		Py_DECREF(self);
		return (EndObject *)PyErr_NoMemory();
	}
	return self;
}

static PyObject *end_new_refused(PyTypeObject *cls, PyObject *a, PyObject *k)
{
	PyErr_Format(PyExc_TypeError,
		     "cannot create '%s' instances: use zchan.create(), "
		     "zchan.open(), zchan.pipe() or zchan.recv_peer()", cls->tp_name);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Waiting data-path calls                                            */

/*
 * Run @op (a library call taking ZCHAN_NONBLOCK) until it stops saying
 * -EAGAIN or @timeout_ns runs out, waiting with zchan_wait() in slices
 * between attempts.  Called with the lock held; returns op's result,
 * -EAGAIN for timeout 0, -ETIME, or -EINTR / -EBADF with the Python
 * exception to raise already decided by the caller.
 */
typedef long (*nonblock_op)(EndObject *self, void *ctx);

static long end_retry(EndObject *self, nonblock_op op, void *ctx,
		      int64_t timeout_ns, int release_gil)
{
	int64_t deadline = deadline_of(timeout_ns);
	long ret;

	for (;;) {
		if (release_gil) {
			Py_BEGIN_ALLOW_THREADS
			ret = op(self, ctx);
			Py_END_ALLOW_THREADS
		} else {
			ret = op(self, ctx);
		}
		if (ret != -EAGAIN || timeout_ns == 0)
			return ret;
		for (;;) {
			int64_t slice = next_slice(deadline);
			int w;

			if (slice < 0)
				return -ETIME;
			Py_BEGIN_ALLOW_THREADS
			w = zchan_wait(self->ch, slice);
			Py_END_ALLOW_THREADS
			if (self->ndeferred)
				end_flush_deferred(self);
			if (PyErr_CheckSignals())
				return -EINTR;
			if (self->close_requested)
				return -EBADF;
			/*
			 * Ready, or a slice ran out: try again either way (a
			 * producer's wait means room for max_msg; a smaller
			 * message may fit before that).
			 */
			if (w >= 0 || w == -ETIME)
				break;
			return w;
		}
	}
}

/* Raise for a failed data-path call (not for -EINTR: already raised). */
static PyObject *data_error(long ret)
{
	if (ret == -EINTR && PyErr_Occurred())
		return NULL;
	if (ret == -EBADF)
		return closed_error();
	return set_error((int)ret);
}

/* ------------------------------------------------------------------ */
/* Producer                                                           */

struct send_ctx {
	const void *buf;
	size_t len;
};

static long op_send(EndObject *self, void *ctx)
{
	struct send_ctx *s = ctx;

	return zchan_send(self->ch, s->buf, s->len, ZCHAN_NONBLOCK);
}

PyDoc_STRVAR(producer_send_doc,
"send(data, *, timeout=None) -> int\n--\n\n"
"Copy a C-contiguous bytes-like object into the pool as one message and\n"
"return its length.  Waits for room (the GIL released) up to timeout\n"
"seconds (None: forever); timeout=0 raises BlockingIOError instead of\n"
"waiting.  Raises BrokenPipeError once the consumer is gone, OSError\n"
"EMSGSIZE above max_msg.  A failed send loses nothing: repeat it.");

static PyObject *producer_send(EndObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "data", "timeout", NULL };
	PyObject *data, *tmo = Py_None;
	struct send_ctx s;
	int64_t timeout_ns;
	Py_buffer view;
	long ret;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$O:send", kwlist, &data, &tmo))
		return NULL;
	if (parse_timeout(tmo, &timeout_ns))
		return NULL;
	if (PyObject_GetBuffer(data, &view, PyBUF_C_CONTIGUOUS))
		return NULL;
	s.buf = view.buf;
	s.len = view.len;
	if (end_enter(self, timeout_ns ? deadline_of(timeout_ns) : -1)) {
		PyBuffer_Release(&view);
		return NULL;
	}
	ret = end_retry(self, op_send, &s, timeout_ns, s.len >= 4096);
	end_unlock(self);
	PyBuffer_Release(&view);
	if (ret < 0)
		return data_error(ret);
	return PyLong_FromLong(ret);
}

struct loan_ctx {
	size_t len;
	void *buf;
};

static long op_loan(EndObject *self, void *ctx)
{
	struct loan_ctx *l = ctx;

	return zchan_loan(self->ch, l->len, &l->buf, ZCHAN_NONBLOCK);
}

PyDoc_STRVAR(producer_loan_doc,
"loan(nbytes, *, timeout=None) -> Loan\n--\n\n"
"Lend nbytes (1 to max_msg) of contiguous pool space: write the message\n"
"into the Loan (buffer protocol: memoryview(loan), numpy.frombuffer) and\n"
"commit() it, or abort().  As a context manager it commits on normal\n"
"exit and aborts on an exception.  Waits like send().");

/* Lend @nbytes (waiting up to @tmo, a timeout object) as a new Loan. */
static LoanObject *loan_new(EndObject *self, Py_ssize_t nbytes, PyObject *tmo)
{
	struct loan_ctx l = { 0 };
	int64_t timeout_ns;
	LoanObject *loan;
	long ret;

	if (parse_timeout(tmo, &timeout_ns))
		return NULL;
	if (nbytes < 1) {
		PyErr_SetString(PyExc_ValueError, "loan size must be at least 1 byte");
		return NULL;
	}
	l.len = nbytes;
	loan = PyObject_GC_New(LoanObject, &LoanType);
	if (!loan)
		return NULL;
	loan->end = NULL;
	loan->buf = NULL;
	loan->array = NULL;
	loan->exports = 0;
	loan->done = 1;
	if (end_enter(self, timeout_ns ? deadline_of(timeout_ns) : -1)) {
		Py_DECREF(loan);
		return NULL;
	}
	ret = end_retry(self, op_loan, &l, timeout_ns, 0);
	if (ret == 0) {
		loan->end = (EndObject *)Py_NewRef(self);
		loan->buf = l.buf;
		loan->len = nbytes;
		loan->done = 0;
		self->outstanding++;
		PyObject_GC_Track(loan);
	}
	end_unlock(self);
	if (ret < 0) {
		Py_DECREF(loan);
		return (LoanObject *)data_error(ret);
	}
	return loan;
}

static PyObject *producer_loan(EndObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "nbytes", "timeout", NULL };
	PyObject *tmo = Py_None;
	Py_ssize_t nbytes;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "n|$O:loan", kwlist, &nbytes, &tmo))
		return NULL;
	return (PyObject *)loan_new(self, nbytes, tmo);
}

/*
 * loan_array()'s fast path (zchan/__init__.py): a loan of @nbytes whose
 * first bytes are @header (the array message's header), and a memoryview
 * of it for numpy.ndarray(buffer=) - one call instead of four per array.
 */
static PyObject *producer_loan_array(EndObject *self, PyObject *const *args,
				     Py_ssize_t nargs)
{
	Py_ssize_t nbytes;
	LoanObject *loan;
	PyObject *view, *ret;
	Py_buffer hdr;

	if (nargs != 3 || !PyBytes_Check(args[1])) {
		PyErr_SetString(PyExc_TypeError, "_loan_array(nbytes, header: bytes, timeout)");
		return NULL;
	}
	nbytes = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
	if (nbytes == -1 && PyErr_Occurred())
		return NULL;
	if (PyObject_GetBuffer(args[1], &hdr, PyBUF_SIMPLE))
		return NULL;
	if (hdr.len > nbytes) {
		PyBuffer_Release(&hdr);
		PyErr_SetString(PyExc_ValueError, "header longer than the loan");
		return NULL;
	}
	loan = loan_new(self, nbytes, args[2]);
	if (!loan) {
		PyBuffer_Release(&hdr);
		return NULL;
	}
	memcpy(loan->buf, hdr.buf, hdr.len);
	PyBuffer_Release(&hdr);
	view = PyMemoryView_FromObject((PyObject *)loan);
	if (!view) {
		Py_DECREF(loan);	/* aborts it */
		return NULL;
	}
	ret = PyTuple_Pack(2, (PyObject *)loan, view);
	Py_DECREF(view);
	Py_DECREF(loan);
	return ret;
}

PyDoc_STRVAR(producer_send_peer_doc,
"send_peer(sock)\n--\n\n"
"Send the consumer end of this channel over an AF_UNIX socket (a\n"
"socket.socket or a file descriptor); the other process takes it with\n"
"zchan.recv_peer().  A channel has one consumer end.");

static int sock_fd(PyObject *sock)
{
	int fd = PyObject_AsFileDescriptor(sock);

	return fd;
}

static PyObject *producer_send_peer(EndObject *self, PyObject *sock)
{
	int fd = sock_fd(sock), ret;

	if (fd < 0)
		return NULL;
	if (end_enter(self, 0))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = zchan_send_peer(self->ch, fd);
	Py_END_ALLOW_THREADS
	end_unlock(self);
	if (ret)
		return set_error(ret);
	Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ */
/* Consumer                                                           */

struct recv_ctx {
	const void *buf;
};

static long op_recv_zc(EndObject *self, void *ctx)
{
	struct recv_ctx *r = ctx;

	return zchan_recv_zc(self->ch, &r->buf, ZCHAN_NONBLOCK);
}

/* Borrow the next message: its length, or a negative errno. */
static long consumer_borrow(EndObject *self, PyObject *tmo, const void **buf)
{
	struct recv_ctx r = { 0 };
	int64_t timeout_ns;
	long ret;

	if (parse_timeout(tmo, &timeout_ns))
		return -EINTR;
	if (end_enter(self, timeout_ns ? deadline_of(timeout_ns) : -1))
		return -EINTR;
	ret = end_retry(self, op_recv_zc, &r, timeout_ns, 0);
	if (ret < 0) {
		end_unlock(self);
		if (ret == -EINTR && !PyErr_Occurred())
			ret = -EIO;
		return ret;
	}
	*buf = r.buf;
	return ret;	/* still locked */
}

PyDoc_STRVAR(consumer_recv_doc,
"recv(*, timeout=None) -> bytes\n--\n\n"
"Receive the next message as bytes (one copy out of the pool).  Waits\n"
"(the GIL released) up to timeout seconds; timeout=0 raises\n"
"BlockingIOError when nothing is ready, an expired timeout TimeoutError.\n"
"After the producer is gone, every committed message is still received,\n"
"then BrokenPipeError.");

static PyObject *consumer_recv(EndObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *tmo = Py_None, *bytes;
	const void *buf;
	long len;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|$O:recv", kwlist, &tmo))
		return NULL;
	len = consumer_borrow(self, tmo, &buf);
	if (len < 0)
		return data_error(len);
	bytes = PyBytes_FromStringAndSize(NULL, len);
	if (bytes) {
		char *dst = PyBytes_AS_STRING(bytes);

		if (len >= 65536) {
			Py_BEGIN_ALLOW_THREADS
			memcpy(dst, buf, len);
			Py_END_ALLOW_THREADS
		} else {
			memcpy(dst, buf, len);
		}
	}
	zchan_release(self->ch, buf);
	end_unlock(self);
	return bytes;
}

PyDoc_STRVAR(consumer_recv_zc_doc,
"recv_zc(*, timeout=None) -> Message\n--\n\n"
"Borrow the next message where it lies in the pool: a read-only buffer\n"
"(memoryview(msg), bytes(msg), len(msg)) given back with release() or at\n"
"the end of a with block.  Releasing while a memoryview or an array\n"
"still exports it raises BufferError.  Waits like recv().");

/* Borrow the next message (waiting up to @tmo) as a new Message. */
static MessageObject *message_new(EndObject *self, PyObject *tmo)
{
	MessageObject *msg;
	const void *buf;
	long len;

	msg = PyObject_New(MessageObject, &MessageType);
	if (!msg)
		return NULL;
	msg->end = NULL;
	msg->released = 1;
	msg->exports = 0;
	len = consumer_borrow(self, tmo, &buf);
	if (len < 0) {
		Py_DECREF(msg);
		return (MessageObject *)data_error(len);
	}
	msg->end = (EndObject *)Py_NewRef(self);
	msg->buf = buf;
	msg->len = len;
	msg->released = 0;
	self->outstanding++;
	end_unlock(self);
	return msg;
}

static PyObject *consumer_recv_zc(EndObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *tmo = Py_None;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|$O:recv_zc", kwlist, &tmo))
		return NULL;
	return (PyObject *)message_new(self, tmo);
}

/*
 * recv_array()'s fast path (zchan/__init__.py): borrow the next message
 * and return (header, view): a memoryview of the message (which releases
 * it when the last user of the view is gone) and the bytes of its array
 * header, or None when it does not start like one.  The header's data
 * offset is bounded by the message; the caller parses the rest.
 */
#define ARRAY_MAGIC	"ZCA1"
#define ARRAY_HDR_MAX	4096

static PyObject *consumer_recv_array(EndObject *self, PyObject *tmo)
{
	MessageObject *msg = message_new(self, tmo);
	PyObject *view, *hdr = NULL, *ret;
	uint32_t offset;

	if (!msg)
		return NULL;
	if (msg->len >= 12 && !memcmp(msg->buf, ARRAY_MAGIC, 4)) {
		memcpy(&offset, (const char *)msg->buf + 4, sizeof(offset));
		offset = le32toh(offset);
		if (offset >= 12 && offset <= ARRAY_HDR_MAX && offset <= msg->len)
			hdr = PyBytes_FromStringAndSize(msg->buf, offset);
		else
			hdr = Py_NewRef(Py_None);
	} else {
		hdr = Py_NewRef(Py_None);
	}
	view = hdr ? PyMemoryView_FromObject((PyObject *)msg) : NULL;
	Py_DECREF(msg);		/* the view keeps it */
	ret = view ? PyTuple_Pack(2, hdr, view) : NULL;
	Py_XDECREF(view);
	Py_XDECREF(hdr);
	return ret;
}

static PyObject *consumer_iternext(EndObject *self)
{
	static PyObject *noargs;
	PyObject *ret;

	if (!noargs && !(noargs = PyTuple_New(0)))
		return NULL;
	ret = consumer_recv(self, noargs, NULL);
	if (!ret && PyErr_ExceptionMatches(PyExc_BrokenPipeError))
		PyErr_Clear();	/* end of the stream: StopIteration */
	return ret;
}

/* Give a borrowed buffer back, now or (another thread has the end) later. */
static int end_release_buf(EndObject *end, const void *buf)
{
	int ret = 0;

	if (end->lock_generation == fork_generation &&
	    PyThread_acquire_lock(end->lock, NOWAIT_LOCK)) {
		if (end->ch)
			ret = zchan_release(end->ch, buf);
		PyThread_release_lock(end->lock);
		return ret;
	}
	if (end->ndeferred == end->deferred_cap) {
		Py_ssize_t cap = end->deferred_cap ? end->deferred_cap * 2 : 16;
		const void **d = PyMem_Realloc(end->deferred, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		end->deferred = d;
		end->deferred_cap = cap;
	}
	end->deferred[end->ndeferred++] = buf;
	return 0;
}

/* ------------------------------------------------------------------ */
/* End: common methods                                                */

/* Lock for a quick call that needs a real end (fileno, poll, stats). */
static int end_enter_quick(EndObject *self)
{
	return end_enter(self, 0);
}

PyDoc_STRVAR(end_fileno_doc,
"fileno() -> int\n--\n\n"
"A file descriptor for poll/select/epoll/asyncio: readable when the end\n"
"may be ready (see Documentation/library.rst, Event loops).  Call the end\n"
"with timeout=0 until BlockingIOError, then wait on it.  A pending\n"
"consumer (pipe()) first waits for its producer to be used.");

static PyObject *end_fileno(EndObject *self, PyObject *unused)
{
	int fd;

	if (end_enter_quick(self))
		return NULL;
	fd = zchan_fd(self->ch);
	end_unlock(self);
	if (fd < 0)
		return set_error(fd);
	return PyLong_FromLong(fd);
}

PyDoc_STRVAR(end_poll_doc,
"poll() -> int\n--\n\n"
"The end's readiness now, as a poll mask (select.POLLIN: a message;\n"
"select.POLLOUT: room for a max_msg message; POLLHUP: the peer is gone).\n"
"A pending consumer whose producer was not used yet returns 0.");

static PyObject *end_poll(EndObject *self, PyObject *unused)
{
	int mask;

	if (self->closed)
		return closed_error();
	if (!self->ch && self->role == ROLE_CONSUMER) {
		if (end_lock(self, 0))
			return NULL;
		mask = end_materialise(self, -1);
		end_unlock(self);
		if (mask == -EAGAIN)
			return PyLong_FromLong(0);
		if (mask == -EPIPE)
			return PyLong_FromLong(POLLHUP);
		if (mask)
			return set_error(mask);
	}
	if (end_enter_quick(self))
		return NULL;
	mask = zchan_poll(self->ch);
	end_unlock(self);
	if (mask < 0)
		return set_error(mask);
	return PyLong_FromLong(mask);
}

PyDoc_STRVAR(end_wait_doc,
"wait(timeout=None) -> int\n--\n\n"
"Wait (the GIL released) until the end is ready and return the poll\n"
"mask, as poll(); TimeoutError when timeout seconds pass first.");

static PyObject *end_wait(EndObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *tmo = Py_None;
	int64_t timeout_ns, deadline;
	int mask;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:wait", kwlist, &tmo))
		return NULL;
	if (parse_timeout(tmo, &timeout_ns))
		return NULL;
	deadline = deadline_of(timeout_ns);
	if (end_enter(self, timeout_ns ? deadline : -1))
		return NULL;
	for (;;) {
		int64_t slice = timeout_ns ? next_slice(deadline) : 0;

		if (slice < 0) {
			mask = -ETIME;
			break;
		}
		Py_BEGIN_ALLOW_THREADS
		mask = zchan_wait(self->ch, slice);
		Py_END_ALLOW_THREADS
		if (mask != -ETIME || !timeout_ns)
			break;
		if (PyErr_CheckSignals()) {
			mask = -EINTR;
			break;
		}
		if (self->close_requested) {
			mask = -EBADF;
			break;
		}
	}
	end_unlock(self);
	if (mask < 0)
		return data_error(mask);
	return PyLong_FromLong(mask);
}

PyDoc_STRVAR(end_stats_doc,
"stats() -> dict\n--\n\n"
"This end's counters: messages and bytes published (producer) or taken\n"
"(consumer), kicks (wakeup syscalls sent), waits (sleeps in the kernel)\n"
"and spins (spin iterations before sleeping).");

static PyObject *end_stats(EndObject *self, PyObject *unused)
{
	struct zchan_stats st;
	int ret;

	if (end_enter_quick(self))
		return NULL;
	ret = zchan_stats(self->ch, &st);
	end_unlock(self);
	if (ret)
		return set_error(ret);
	return Py_BuildValue("{sKsKsKsKsK}", "messages", (unsigned long long)st.messages,
			     "bytes", (unsigned long long)st.bytes,
			     "kicks", (unsigned long long)st.kicks,
			     "waits", (unsigned long long)st.waits,
			     "spins", (unsigned long long)st.spins);
}

static PyObject *end_get_attr_value(EndObject *self, int which)
{
	struct zchan_attr a;
	int ret;

	if (end_enter_quick(self))
		return NULL;
	ret = zchan_get_attr(self->ch, &a);
	if (!ret && which == 3)
		ret = zchan_backend(self->ch);
	end_unlock(self);
	if (ret < 0)
		return set_error(ret);
	switch (which) {
	case 0:
		return PyLong_FromSize_t(a.pool_size);
	case 1:
		return PyLong_FromSize_t(a.max_msg);
	case 2:
		return PyLong_FromUnsignedLong(a.ring_entries);
	default:
		return PyUnicode_FromString(ret == ZCHAN_BACKEND_KERNEL ? "kernel" : "memfd");
	}
}

static PyObject *end_get_pool_size(EndObject *self, void *c) { return end_get_attr_value(self, 0); }
static PyObject *end_get_max_msg(EndObject *self, void *c) { return end_get_attr_value(self, 1); }
static PyObject *end_get_ring_entries(EndObject *self, void *c) { return end_get_attr_value(self, 2); }
static PyObject *end_get_backend(EndObject *self, void *c) { return end_get_attr_value(self, 3); }

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
"_pending_state() -> (socket_fd, attr)\n--\n\n"
"For pickling (zchan/__init__.py): the rendezvous socket of a pending\n"
"end and, for a producer, its creation attributes.  TypeError once the\n"
"end was used: a used end cannot move to another process.");

static PyObject *end_pending_state(EndObject *self, PyObject *unused)
{
	const struct zchan_attr *a = &self->attr;

	if (self->closed)
		return closed_error();
	if (self->ch || self->pending_sock < 0) {
		PyErr_SetString(PyExc_TypeError,
				"a zchan end can be sent to another process only before "
				"its first use (make it with zchan.pipe() or "
				"Producer.consumer()), or use send_peer()/recv_peer()");
		return NULL;
	}
	return Py_BuildValue("i(nnIIII)", self->pending_sock, (Py_ssize_t)a->pool_size,
			     (Py_ssize_t)a->max_msg, a->ring_entries, a->mode,
			     a->flags, a->backend);
}

static PyObject *end_rendezvous_fd(EndObject *self, PyObject *unused)
{
	return PyLong_FromLong(self->ch ? -1 : self->pending_sock);
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
	{ "poll", (PyCFunction)end_poll, METH_NOARGS, end_poll_doc },
	{ "wait", (PyCFunction)end_wait, METH_VARARGS | METH_KEYWORDS, end_wait_doc },
	{ "stats", (PyCFunction)end_stats, METH_NOARGS, end_stats_doc },
	{ "__enter__", (PyCFunction)end_enter_cm, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)end_exit_cm, METH_VARARGS, NULL },
	{ "_pending_state", (PyCFunction)end_pending_state, METH_NOARGS, end_pending_state_doc },
	{ "_rendezvous_fd", (PyCFunction)end_rendezvous_fd, METH_NOARGS, NULL },
	{ NULL }
};

static PyGetSetDef end_getset[] = {
	{ "closed", (getter)end_get_closed, NULL, "True once close() was called", NULL },
	{ "name", (getter)end_get_name, NULL, "the channel's name, or None", NULL },
	{ "backend", (getter)end_get_backend, NULL, "\"kernel\" or \"memfd\"", NULL },
	{ "pool_size", (getter)end_get_pool_size, NULL, "data pool bytes", NULL },
	{ "max_msg", (getter)end_get_max_msg, NULL, "largest message, bytes", NULL },
	{ "ring_entries", (getter)end_get_ring_entries, NULL, "descriptor ring size", NULL },
	{ "pending", (getter)end_get_pending, NULL,
	  "True until a pipe() end is first used (it can still be pickled)", NULL },
	{ NULL }
};

static PyMethodDef producer_methods[] = {
	{ "send", (PyCFunction)producer_send, METH_VARARGS | METH_KEYWORDS, producer_send_doc },
	{ "loan", (PyCFunction)producer_loan, METH_VARARGS | METH_KEYWORDS, producer_loan_doc },
	{ "send_peer", (PyCFunction)producer_send_peer, METH_O, producer_send_peer_doc },
	{ "_loan_array", (PyCFunction)(void (*)(void))producer_loan_array, METH_FASTCALL, NULL },
	{ NULL }
};

static PyMethodDef consumer_methods[] = {
	{ "recv", (PyCFunction)consumer_recv, METH_VARARGS | METH_KEYWORDS, consumer_recv_doc },
	{ "recv_zc", (PyCFunction)consumer_recv_zc, METH_VARARGS | METH_KEYWORDS, consumer_recv_zc_doc },
	{ "_recv_array", (PyCFunction)consumer_recv_array, METH_O, NULL },
	{ NULL }
};

static PyObject *consumer_iter(PyObject *self)
{
	return Py_NewRef(self);
}

static PyTypeObject EndType = {
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

static PyTypeObject ProducerType = {
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

static PyTypeObject ConsumerType = {
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

/* ------------------------------------------------------------------ */
/* Loan                                                               */

static int loan_check_open(LoanObject *self)
{
	if (self->done) {
		PyErr_SetString(PyExc_ValueError, "zchan: loan already committed or aborted");
		return -1;
	}
	return 0;
}

/* Drop our own array, then refuse if anything else still exports us. */
static int loan_check_unexported(LoanObject *self, const char *what)
{
	Py_CLEAR(self->array);
	if (self->exports) {
		PyErr_Format(PyExc_BufferError,
			     "zchan: cannot %s a loan while %zd memoryview(s) or "
			     "array(s) still export it", what, self->exports);
		return -1;
	}
	return 0;
}

/* Commit @len bytes or (abort) drop the loan; the loan is done after. */
static int loan_finish(LoanObject *self, Py_ssize_t len, int abort)
{
	EndObject *end = self->end;
	int ret;

	if (end_lock(end, 0))
		return -1;
	if (end->ch)
		ret = abort ? zchan_abort(end->ch, self->buf) :
			      zchan_commit(end->ch, self->buf, len);
	else
		ret = -EPIPE;
	end_unlock(end);
	self->done = 1;
	end_put_outstanding(end);
	if (ret) {
		set_error(ret);
		return -1;
	}
	return 0;
}

PyDoc_STRVAR(loan_commit_doc,
"commit(nbytes=None)\n--\n\n"
"Publish the first nbytes (default: all) of the loan as one message.\n"
"Drops .array first; BufferError if a memoryview or another array still\n"
"exports the loan (it stays open).  commit(0) drops the loan, as abort().");

static PyObject *loan_commit(LoanObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "nbytes", NULL };
	PyObject *nobj = Py_None;
	Py_ssize_t n;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:commit", kwlist, &nobj))
		return NULL;
	if (loan_check_open(self))
		return NULL;
	if (nobj == Py_None) {
		n = self->len;
	} else {
		n = PyNumber_AsSsize_t(nobj, PyExc_OverflowError);
		if (n == -1 && PyErr_Occurred())
			return NULL;
		if (n < 0 || n > self->len) {
			PyErr_Format(PyExc_ValueError,
				     "commit size %zd outside the loan (0 to %zd)", n, self->len);
			return NULL;
		}
	}
	if (loan_check_unexported(self, "commit"))
		return NULL;
	if (loan_finish(self, n, 0))
		return NULL;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(loan_abort_doc,
"abort()\n--\n\n"
"Drop the loan: the consumer never sees it.  BufferError while exported.");

static PyObject *loan_abort(LoanObject *self, PyObject *unused)
{
	if (loan_check_open(self) || loan_check_unexported(self, "abort"))
		return NULL;
	if (loan_finish(self, 0, 1))
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *loan_enter(LoanObject *self, PyObject *unused)
{
	if (loan_check_open(self))
		return NULL;
	return Py_NewRef(self);
}

static PyObject *loan_exit(LoanObject *self, PyObject *args)
{
	PyObject *exc_type = PyTuple_GET_SIZE(args) ? PyTuple_GET_ITEM(args, 0) : Py_None;

	if (self->done)		/* committed or aborted inside the block */
		Py_RETURN_FALSE;
	if (exc_type != Py_None) {
		Py_CLEAR(self->array);
		if (!self->exports)
			loan_finish(self, 0, 1);
		if (PyErr_Occurred())
			return NULL;
		Py_RETURN_FALSE;
	}
	if (loan_check_unexported(self, "commit") || loan_finish(self, self->len, 0))
		return NULL;
	Py_RETURN_FALSE;
}

static int loan_traverse(LoanObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->array);
	return 0;
}

static int loan_clear(LoanObject *self)
{
	Py_CLEAR(self->array);
	return 0;
}

static void loan_dealloc(LoanObject *self)
{
	PyObject_GC_UnTrack(self);
	Py_CLEAR(self->array);
	if (!self->done && self->end) {
		/* Not committed: nothing half-written is ever published. */
		PyObject *et, *ev, *tb;

		PyErr_Fetch(&et, &ev, &tb);
		if (loan_finish(self, 0, 1))
			PyErr_WriteUnraisable((PyObject *)self);
		PyErr_Restore(et, ev, tb);
	}
	Py_CLEAR(self->end);
	PyObject_GC_Del(self);
}

static int loan_getbuffer(LoanObject *self, Py_buffer *view, int flags)
{
	if (self->done) {
		PyErr_SetString(PyExc_BufferError, "zchan: loan already committed or aborted");
		view->obj = NULL;
		return -1;
	}
	if (PyBuffer_FillInfo(view, (PyObject *)self, self->buf, self->len, 0, flags))
		return -1;
	self->exports++;
	return 0;
}

static void loan_releasebuffer(LoanObject *self, Py_buffer *view)
{
	self->exports--;
}

static Py_ssize_t loan_length(LoanObject *self)
{
	return self->len;
}

static PyObject *loan_get_array(LoanObject *self, void *c)
{
	return Py_NewRef(self->array ? self->array : Py_None);
}

static int loan_set_array(LoanObject *self, PyObject *value, void *c)
{
	Py_XINCREF(value);
	Py_XSETREF(self->array, value);
	return 0;
}

static PyObject *loan_get_done(LoanObject *self, void *c)
{
	return PyBool_FromLong(self->done);
}

static PyBufferProcs loan_as_buffer = {
	.bf_getbuffer = (getbufferproc)loan_getbuffer,
	.bf_releasebuffer = (releasebufferproc)loan_releasebuffer,
};

static PySequenceMethods loan_as_sequence = {
	.sq_length = (lenfunc)loan_length,
};

static PyMethodDef loan_methods[] = {
	{ "commit", (PyCFunction)loan_commit, METH_VARARGS | METH_KEYWORDS, loan_commit_doc },
	{ "abort", (PyCFunction)loan_abort, METH_NOARGS, loan_abort_doc },
	{ "__enter__", (PyCFunction)loan_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)loan_exit, METH_VARARGS, NULL },
	{ NULL }
};

static PyGetSetDef loan_getset[] = {
	{ "array", (getter)loan_get_array, (setter)loan_set_array,
	  "the numpy.ndarray over the loan (Producer.loan_array()), or None", NULL },
	{ "done", (getter)loan_get_done, NULL, "True once committed or aborted", NULL },
	{ NULL }
};

static PyTypeObject LoanType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zchan.Loan",
	.tp_basicsize = sizeof(LoanObject),
	.tp_dealloc = (destructor)loan_dealloc,
	.tp_as_buffer = &loan_as_buffer,
	.tp_as_sequence = &loan_as_sequence,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)loan_traverse,
	.tp_clear = (inquiry)loan_clear,
	.tp_doc = "Writable pool space lent by Producer.loan(): commit() or abort() it.",
	.tp_methods = loan_methods,
	.tp_getset = loan_getset,
};

/* ------------------------------------------------------------------ */
/* Message                                                            */

PyDoc_STRVAR(message_release_doc,
"release()\n--\n\n"
"Give the message back to the producer.  BufferError while a memoryview\n"
"or an array still exports it.  Releasing twice does nothing.");

static int message_release_now(MessageObject *self)
{
	int ret;

	self->released = 1;
	ret = end_release_buf(self->end, self->buf);
	end_put_outstanding(self->end);
	return ret;
}

static PyObject *message_release(MessageObject *self, PyObject *unused)
{
	int ret;

	if (self->released)
		Py_RETURN_NONE;
	if (self->exports) {
		PyErr_Format(PyExc_BufferError,
			     "zchan: cannot release a message while %zd memoryview(s) "
			     "or array(s) still export it", self->exports);
		return NULL;
	}
	ret = message_release_now(self);
	if (ret)
		return set_error(ret);
	Py_RETURN_NONE;
}

static void message_dealloc(MessageObject *self)
{
	if (!self->released && self->end)
		message_release_now(self);
	Py_CLEAR(self->end);
	PyObject_Free(self);
}

static int message_getbuffer(MessageObject *self, Py_buffer *view, int flags)
{
	if (self->released) {
		PyErr_SetString(PyExc_BufferError, "zchan: message already released");
		view->obj = NULL;
		return -1;
	}
	if (PyBuffer_FillInfo(view, (PyObject *)self, (void *)self->buf, self->len, 1, flags))
		return -1;
	self->exports++;
	return 0;
}

static void message_releasebuffer(MessageObject *self, Py_buffer *view)
{
	self->exports--;
}

static Py_ssize_t message_length(MessageObject *self)
{
	return self->len;
}

/* msg[i], msg[a:b]: through a memoryview, so a slice keeps the export. */
static PyObject *message_subscript(MessageObject *self, PyObject *key)
{
	PyObject *view = PyMemoryView_FromObject((PyObject *)self), *ret;

	if (!view)
		return NULL;
	ret = PyObject_GetItem(view, key);
	Py_DECREF(view);
	return ret;
}

static PyObject *message_enter(MessageObject *self, PyObject *unused)
{
	return Py_NewRef(self);
}

static PyObject *message_exit(MessageObject *self, PyObject *args)
{
	PyObject *r = message_release(self, NULL);

	if (!r)
		return NULL;
	Py_DECREF(r);
	Py_RETURN_FALSE;
}

static PyObject *message_get_released(MessageObject *self, void *c)
{
	return PyBool_FromLong(self->released);
}

static PyBufferProcs message_as_buffer = {
	.bf_getbuffer = (getbufferproc)message_getbuffer,
	.bf_releasebuffer = (releasebufferproc)message_releasebuffer,
};

static PySequenceMethods message_as_sequence = {
	.sq_length = (lenfunc)message_length,
};

static PyMappingMethods message_as_mapping = {
	.mp_length = (lenfunc)message_length,
	.mp_subscript = (binaryfunc)message_subscript,
};

static PyMethodDef message_methods[] = {
	{ "release", (PyCFunction)message_release, METH_NOARGS, message_release_doc },
	{ "__enter__", (PyCFunction)message_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)message_exit, METH_VARARGS, NULL },
	{ NULL }
};

static PyGetSetDef message_getset[] = {
	{ "released", (getter)message_get_released, NULL, "True once released", NULL },
	{ NULL }
};

static PyTypeObject MessageType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zchan.Message",
	.tp_basicsize = sizeof(MessageObject),
	.tp_dealloc = (destructor)message_dealloc,
	.tp_as_buffer = &message_as_buffer,
	.tp_as_sequence = &message_as_sequence,
	.tp_as_mapping = &message_as_mapping,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A borrowed, read-only message (Consumer.recv_zc()): release() it.",
	.tp_methods = message_methods,
	.tp_getset = message_getset,
};

/* ------------------------------------------------------------------ */
/* Module functions                                                   */

static int parse_backend(PyObject *obj, unsigned int *backend)
{
	const char *s;

	if (!PyUnicode_Check(obj)) {
		PyErr_SetString(PyExc_TypeError, "backend must be \"auto\", \"kernel\" or \"memfd\"");
		return -1;
	}
	s = PyUnicode_AsUTF8(obj);
	if (!s)
		return -1;
	if (!strcmp(s, "auto"))
		*backend = ZCHAN_BACKEND_AUTO;
	else if (!strcmp(s, "kernel"))
		*backend = ZCHAN_BACKEND_KERNEL;
	else if (!strcmp(s, "memfd"))
		*backend = ZCHAN_BACKEND_MEMFD;
	else {
		PyErr_Format(PyExc_ValueError, "unknown backend %R (\"auto\", \"kernel\" or \"memfd\")", obj);
		return -1;
	}
	return 0;
}

static int parse_name(PyObject *obj, const char **name)
{
	Py_ssize_t len;

	*name = NULL;
	if (obj == Py_None)
		return 0;
	if (!PyUnicode_Check(obj)) {
		PyErr_SetString(PyExc_TypeError, "name must be a str or None");
		return -1;
	}
	*name = PyUnicode_AsUTF8AndSize(obj, &len);
	if (!*name)
		return -1;
	if ((Py_ssize_t)strlen(*name) != len || !len) {
		PyErr_SetString(PyExc_ValueError, "name must be non-empty and contain no NUL");
		return -1;
	}
	return 0;
}

/* The attributes of create()/pipe(), validated before the library sees them. */
static int parse_attr(struct zchan_attr *a, Py_ssize_t pool_size, Py_ssize_t max_msg,
		      Py_ssize_t ring_entries, int mode, int busy_poll, PyObject *backend)
{
	zchan_attr_init(a);
	if (pool_size < 0 || max_msg < 0 || ring_entries < 0 || ring_entries > UINT32_MAX) {
		PyErr_SetString(PyExc_ValueError, "pool_size, max_msg and ring_entries must be >= 0");
		return -1;
	}
	if (ring_entries & (ring_entries - 1)) {
		PyErr_SetString(PyExc_ValueError, "ring_entries must be a power of two");
		return -1;
	}
	if (mode < 0 || mode > 07777) {
		PyErr_SetString(PyExc_ValueError, "mode must be permission bits (0 to 0o7777)");
		return -1;
	}
	a->pool_size = pool_size;
	a->max_msg = max_msg;
	a->ring_entries = (unsigned int)ring_entries;
	a->mode = mode;
	a->flags = busy_poll ? ZCHAN_BUSY_POLL : 0;
	return parse_backend(backend, &a->backend);
}

static PyObject *mod_create(PyObject *mod, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "cls", "name", "pool_size", "max_msg", "ring_entries",
				  "mode", "busy_poll", "backend", "pending", NULL };
	Py_ssize_t pool_size = 0, max_msg = 0, ring_entries = 0;
	PyObject *nameobj = Py_None, *backend = NULL;
	int mode = 0600, busy_poll = 0, pending = -1, ret;
	PyTypeObject *cls;
	struct zchan_attr a;
	const char *name;
	EndObject *self;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|O$nnnipOi:create", kwlist,
					 &PyType_Type, &cls, &nameobj, &pool_size,
					 &max_msg, &ring_entries, &mode, &busy_poll,
					 &backend, &pending))
		return NULL;
	if (!backend)
		backend = PyUnicode_FromString("auto");
	else
		Py_INCREF(backend);
	if (!backend)
		return NULL;
	ret = parse_name(nameobj, &name) ||
	      parse_attr(&a, pool_size, max_msg, ring_entries, mode, busy_poll, backend);
	Py_DECREF(backend);
	if (ret)
		return NULL;
	self = end_new(cls, ROLE_PRODUCER);
	if (!self)
		return NULL;
	if (pending >= 0) {	/* pipe(): created on first use */
		self->attr = a;
		self->pending_sock = pending;
		return (PyObject *)self;
	}
	Py_BEGIN_ALLOW_THREADS
	ret = zchan_create(name, &a, &self->ch);
	Py_END_ALLOW_THREADS
	if (ret) {
		Py_DECREF(self);
		return set_error(ret);
	}
	self->attr = a;
	Py_SETREF(self->name, Py_NewRef(nameobj));
	return (PyObject *)self;
}

static PyObject *mod_open(PyObject *mod, PyObject *args)
{
	PyObject *nameobj;
	PyTypeObject *cls;
	const char *name;
	EndObject *self;
	int ret;

	if (!PyArg_ParseTuple(args, "O!O:open", &PyType_Type, &cls, &nameobj))
		return NULL;
	if (nameobj == Py_None) {
		PyErr_SetString(PyExc_TypeError, "open() needs a channel name");
		return NULL;
	}
	if (parse_name(nameobj, &name))
		return NULL;
	self = end_new(cls, ROLE_CONSUMER);
	if (!self)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	ret = zchan_open(name, &self->ch);
	Py_END_ALLOW_THREADS
	if (ret) {
		Py_DECREF(self);
		return set_error(ret);
	}
	Py_SETREF(self->name, Py_NewRef(nameobj));
	return (PyObject *)self;
}

/*
 * recv_peer(cls, sock, pending=False): receive a consumer end now, or
 * (pending) wrap the socket, which this end then owns, for a receive on
 * first use.
 */
static PyObject *mod_recv_peer(PyObject *mod, PyObject *args)
{
	PyObject *sock;
	PyTypeObject *cls;
	EndObject *self;
	int fd, pending = 0, ret;

	if (!PyArg_ParseTuple(args, "O!O|p:recv_peer", &PyType_Type, &cls, &sock, &pending))
		return NULL;
	fd = sock_fd(sock);
	if (fd < 0)
		return NULL;
	self = end_new(cls, ROLE_CONSUMER);
	if (!self)
		return NULL;
	if (pending) {
		self->pending_sock = fd;
		return (PyObject *)self;
	}
	Py_BEGIN_ALLOW_THREADS
	ret = zchan_recv_peer(fd, &self->ch);
	Py_END_ALLOW_THREADS
	if (ret) {
		Py_DECREF(self);
		return set_error(ret);
	}
	return (PyObject *)self;
}

static PyObject *mod_after_fork_child(PyObject *mod, PyObject *unused)
{
	fork_generation++;
	Py_RETURN_NONE;
}

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
	long err = PyLong_AsLong(arg);

	if (err == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(zchan_strerror(err > 0 ? -(int)err : (int)err));
}

static PyMethodDef module_methods[] = {
	{ "create", (PyCFunction)mod_create, METH_VARARGS | METH_KEYWORDS,
	  "create(cls, name=None, *, pool_size, max_msg, ring_entries, mode, busy_poll, "
	  "backend, pending=-1): zchan_create() (see zchan.create)" },
	{ "open", (PyCFunction)mod_open, METH_VARARGS, "open(cls, name): zchan_open()" },
	{ "recv_peer", (PyCFunction)mod_recv_peer, METH_VARARGS,
	  "recv_peer(cls, sock, pending=False): zchan_recv_peer()" },
	{ "_after_fork_child", (PyCFunction)mod_after_fork_child, METH_NOARGS, NULL },
	{ "strerror", (PyCFunction)mod_strerror, METH_O,
	  "strerror(errno) -> str: what an error code means in libzchan" },
	{ NULL }
};

static struct PyModuleDef zchan_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "zchan._zchan",
	.m_doc = "The C half of zchan: ends, loans and messages over libzchan.",
	.m_size = -1,
	.m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__zchan(void)
{
	PyTypeObject *types[] = { &EndType, &ProducerType, &ConsumerType,
				  &LoanType, &MessageType };
	const char *names[] = { "End", "Producer", "Consumer", "Loan", "Message" };
	PyObject *m;
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (PyType_Ready(types[i]))
			return NULL;
	m = PyModule_Create(&zchan_module);
	if (!m)
		return NULL;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (PyModule_AddObjectRef(m, names[i], (PyObject *)types[i]))
			goto fail;
	if (PyModule_AddIntConstant(m, "POLLIN", POLLIN) ||
	    PyModule_AddIntConstant(m, "POLLOUT", POLLOUT) ||
	    PyModule_AddIntConstant(m, "POLLHUP", POLLHUP) ||
	    PyModule_AddIntConstant(m, "POLLERR", POLLERR) ||
	    PyModule_AddIntConstant(m, "DEFAULT_POOL_SIZE", ZCHAN_DEFAULT_POOL_SIZE) ||
	    PyModule_AddIntConstant(m, "DEFAULT_RING_ENTRIES", ZCHAN_DEFAULT_RING_ENTRIES))
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
