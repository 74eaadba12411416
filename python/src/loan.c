// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan._zchan: the producer's calls (send, loan, send_peer) and the Loan
 * they lend: pool space written through the buffer protocol until it is
 * committed or aborted.
 */
#include "zchan_py.h"

#include <errno.h>
#include <string.h>

/* The pool space of a loan (see "Loan" below). */
typedef struct {
	PyObject_HEAD
	EndObject *end;
	void *buf;
	Py_ssize_t len;
	Py_ssize_t exports;
	int done;			/* committed or aborted */
} LoanSpaceObject;

typedef struct {
	PyObject_HEAD
	LoanSpaceObject *space;
	PyObject *array;		/* loan_array(): the ndarray over it */
	PyObject *view;			/* loan_array(): the memoryview under .array */
} LoanObject;


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
	if (ret == -EMSGSIZE)
		return msgsize_error(self, s.len);
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
"exit and aborts on an exception; a Loan dropped unfinished is aborted.\n"
"Views of it must be gone by commit() (BufferError, and the loan is\n"
"aborted, if not).  Waits like send().");

/* Lend @nbytes (waiting up to @tmo, a timeout object) as a new Loan. */
static LoanObject *loan_new(EndObject *self, Py_ssize_t nbytes, PyObject *tmo)
{
	struct loan_ctx l = { 0 };
	LoanSpaceObject *space;
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
	space = PyObject_New(LoanSpaceObject, &LoanSpaceType);
	if (!space)
		return NULL;
	space->end = NULL;
	space->buf = NULL;
	space->len = 0;
	space->exports = 0;
	space->done = 1;
	loan = PyObject_GC_New(LoanObject, &LoanType);
	if (!loan) {
		Py_DECREF(space);
		return NULL;
	}
	loan->space = space;
	loan->array = NULL;
	loan->view = NULL;
	PyObject_GC_Track(loan);
	if (end_enter(self, timeout_ns ? deadline_of(timeout_ns) : -1)) {
		Py_DECREF(loan);
		return NULL;
	}
	ret = end_retry(self, op_loan, &l, timeout_ns, 0);
	if (ret == 0) {
		space->end = (EndObject *)Py_NewRef(self);
		space->buf = l.buf;
		space->len = nbytes;
		space->done = 0;
		self->outstanding++;
	}
	end_unlock(self);
	if (ret < 0) {
		Py_DECREF(loan);
		return (LoanObject *)(ret == -EMSGSIZE ? msgsize_error(self, nbytes) :
				      data_error(ret));
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
	memcpy(loan->space->buf, hdr.buf, hdr.len);
	PyBuffer_Release(&hdr);
	view = PyMemoryView_FromObject((PyObject *)loan);
	if (!view) {
		Py_DECREF(loan);	/* aborts it */
		return NULL;
	}
	loan->view = Py_NewRef(view);	/* tells .array's export from others */
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

int sock_fd(PyObject *sock)
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
PyMethodDef producer_methods[] = {
	{ "send", (PyCFunction)producer_send, METH_VARARGS | METH_KEYWORDS, producer_send_doc },
	{ "loan", (PyCFunction)producer_loan, METH_VARARGS | METH_KEYWORDS, producer_loan_doc },
	{ "send_peer", (PyCFunction)producer_send_peer, METH_O, producer_send_peer_doc },
	{ "_loan_array", (PyCFunction)(void (*)(void))producer_loan_array, METH_FASTCALL, NULL },
	{ NULL }
};

/* ------------------------------------------------------------------ */
/* Loan                                                               */

/*
 * A loan is two objects.  The LoanSpace is the pool space: every buffer
 * export (memoryview(loan), numpy.frombuffer(loan), .array's base) holds
 * it, and with it the end and its mapping.  The Loan is what the user
 * holds: it owns .array, whose base is a memoryview of the LoanSpace, so
 * no export points back at the Loan and dropping the Loan frees it at
 * once (a Loan -> ndarray -> memoryview -> Loan cycle runs through an
 * ndarray, which the collector cannot follow, and was never aborted).
 */

/*
 * A finished loan nothing exports any more no longer needs the mapping:
 * let a close() waiting for it go on, even while the Loan object lives.
 */
static void space_put(LoanSpaceObject *self)
{
	EndObject *end = self->end;

	if (end && self->done && !self->exports) {
		self->end = NULL;
		end_put_outstanding(end);
		Py_DECREF(end);
	}
}

static void space_dealloc(LoanSpaceObject *self)
{
	if (self->end && !self->done) {	/* not reached: the Loan finishes it */
		self->done = 1;
		end_give_back(self->end, self->buf, 1);
	}
	space_put(self);
	PyObject_Free(self);
}

static int space_getbuffer(LoanSpaceObject *self, Py_buffer *view, int flags)
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

static void space_releasebuffer(LoanSpaceObject *self, Py_buffer *view)
{
	if (--self->exports == 0)
		space_put(self);
}

static PyBufferProcs space_as_buffer = {
	.bf_getbuffer = (getbufferproc)space_getbuffer,
	.bf_releasebuffer = (releasebufferproc)space_releasebuffer,
};

PyTypeObject LoanSpaceType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "zchan._zchan.LoanSpace",
	.tp_basicsize = sizeof(LoanSpaceObject),
	.tp_dealloc = (destructor)space_dealloc,
	.tp_as_buffer = &space_as_buffer,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "The pool space of a Loan, as its buffer exports see it.",
	.tp_new = NULL,
};

static int loan_check_open(LoanObject *self)
{
	if (self->space->done) {
		PyErr_SetString(PyExc_ValueError, "zchan: loan already committed or aborted");
		return -1;
	}
	return 0;
}

/*
 * Let go of .array before the loan is finished: an array the user still
 * names becomes read-only (a committed message never changes).  Returns
 * how many exports are not that array's: memoryviews or arrays the user
 * made from the loan or from .array, which could still write into it.
 * (Everything made from .array shares one export, its memoryview's.)
 */
static Py_ssize_t loan_drop_array(LoanObject *self)
{
	int named = self->array && Py_REFCNT(self->array) > 1;

	if (named) {
		PyObject *flags = PyObject_GetAttrString(self->array, "flags");

		if (!flags || PyObject_SetAttrString(flags, "writeable", Py_False)) {
			PyErr_Clear();	/* not a numpy array: count it */
			named = 0;
		}
		Py_XDECREF(flags);
	}
	Py_CLEAR(self->array);
	Py_CLEAR(self->view);
	return self->space->exports - named;
}

/* Commit @len bytes or (abort) drop the loan; the loan is done after. */
static int loan_finish(LoanObject *self, Py_ssize_t len, int abort)
{
	LoanSpaceObject *space = self->space;
	EndObject *end = space->end;
	int ret;

	if (abort) {
		space->done = 1;
		ret = end_give_back(end, space->buf, 1);
	} else if (end->closed) {
		space->done = 1;
		end_give_back(end, space->buf, 1);
		space_put(space);
		closed_error();
		return -1;
	} else {
		if (end_lock(end, 0))
			return -1;
		ret = end->ch ? zchan_commit(end->ch, space->buf, len) : -EPIPE;
		end_unlock(end);
		space->done = 1;
	}
	space_put(space);
	if (ret) {
		set_error(ret);
		return -1;
	}
	return 0;
}

/* Finish, unless views the user made still export the loan: abort then. */
static int loan_finish_unexported(LoanObject *self, Py_ssize_t len, int abort,
				  const char *what)
{
	Py_ssize_t others = loan_drop_array(self);

	if (others > 0) {
		loan_finish(self, 0, 1);
		PyErr_Clear();
		PyErr_Format(PyExc_BufferError,
			     "zchan: cannot %s a loan while %zd memoryview(s) or "
			     "array(s) made from it still export it: the loan was "
			     "aborted (write through loan.array, or release views "
			     "before the loan is finished)", what, others);
		return -1;
	}
	return loan_finish(self, len, abort);
}

PyDoc_STRVAR(loan_commit_doc,
"commit(nbytes=None)\n--\n\n"
"Publish the first nbytes (default: all) of the loan as one message.\n"
".array becomes read-only; BufferError, and the loan is aborted, if a\n"
"memoryview or another array made from the loan still exports it (it\n"
"could change the message after its commit).  commit(0) drops the loan,\n"
"as abort().  ValueError once the end is closed (the loan is aborted).");

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
		n = self->space->len;
	} else {
		n = PyNumber_AsSsize_t(nobj, PyExc_OverflowError);
		if (n == -1 && PyErr_Occurred())
			return NULL;
		if (n < 0 || n > self->space->len) {
			PyErr_Format(PyExc_ValueError,
				     "commit size %zd outside the loan (0 to %zd)",
				     n, self->space->len);
			return NULL;
		}
	}
	if (loan_finish_unexported(self, n, 0, "commit"))
		return NULL;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(loan_abort_doc,
"abort()\n--\n\n"
"Drop the loan: the consumer never sees it.  Aborting twice does nothing.");

static PyObject *loan_abort(LoanObject *self, PyObject *unused)
{
	if (self->space->done)
		Py_RETURN_NONE;
	loan_drop_array(self);
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

	if (self->space->done)		/* committed or aborted inside the block */
		Py_RETURN_FALSE;
	if (exc_type != Py_None) {
		loan_drop_array(self);
		if (loan_finish(self, 0, 1))
			return NULL;
		Py_RETURN_FALSE;
	}
	if (loan_finish_unexported(self, self->space->len, 0, "commit"))
		return NULL;
	Py_RETURN_FALSE;
}

static int loan_traverse(LoanObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->array);
	Py_VISIT(self->view);
	return 0;
}

static int loan_clear(LoanObject *self)
{
	Py_CLEAR(self->array);
	Py_CLEAR(self->view);
	return 0;
}

static void loan_dealloc(LoanObject *self)
{
	PyObject_GC_UnTrack(self);
	if (self->space && !self->space->done && self->space->end) {
		/* Not committed: nothing half-written is ever published. */
		PyObject *et, *ev, *tb;

		PyErr_Fetch(&et, &ev, &tb);
		loan_drop_array(self);
		if (loan_finish(self, 0, 1))
			PyErr_WriteUnraisable((PyObject *)self);
		PyErr_Restore(et, ev, tb);
	}
	Py_CLEAR(self->array);
	Py_CLEAR(self->view);
	Py_CLEAR(self->space);
	PyObject_GC_Del(self);
}

/* memoryview(loan) and numpy.frombuffer(loan) export the LoanSpace. */
static int loan_getbuffer(LoanObject *self, Py_buffer *view, int flags)
{
	return space_getbuffer(self->space, view, flags);
}

static Py_ssize_t loan_length(LoanObject *self)
{
	return self->space->len;
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
	return PyBool_FromLong(self->space->done);
}

static PyBufferProcs loan_as_buffer = {
	.bf_getbuffer = (getbufferproc)loan_getbuffer,
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

PyTypeObject LoanType = {
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
