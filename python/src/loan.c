// SPDX-License-Identifier: MIT OR LGPL-2.1
/*
 * zchan._zchan: the producer's calls (send, loan, send_peer) and the Loan
 * they lend: pool space written through the buffer protocol until it is
 * committed or aborted.
 */
#include "zchan_py.h"

#include <errno.h>
#include <string.h>


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

