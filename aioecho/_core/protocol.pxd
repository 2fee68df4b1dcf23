from .counters cimport Counters
from .framing cimport LineEcho

cdef unsigned char LF


cdef class EchoConnection:
    cdef object _tracker
    cdef Counters _counters
    cdef bytearray _receive_buffer
    cdef object _receive_view
    cdef object _transport
    cdef object _write
    cdef object _sink
    cdef object _tls_incoming
    cdef object _linger_timer
    cdef object _blocked_since
    cdef object _line_started
    cdef double _heard_at
    cdef bint _answering
    cdef bint _heard
    cdef bint _turn_taken
    cdef bint _input_ended

    cpdef buffer_updated(self, Py_ssize_t nbytes)
    cpdef stop_answering(self)
    cpdef _next_turn(self)
    cdef _limit_tls_reading(self)
    cdef bint _keep_open_for_sink(self) except -1
    cdef bint _line_overdue(self, double now, double line_timeout)
    cdef Py_ssize_t _held(self) except -1
    cdef _end_turn(self)
    cdef _pause_reading(self)
    cdef _cut_off(self, reason)
    cdef _refuse(self, reason, bytes error, replies=*)
    cdef bint _nothing_owed(self) except -1
    cdef _send(self, reply, Py_ssize_t messages)


cdef class ChunkConnection(EchoConnection):
    cdef bytes _suffix
    cdef bint _unicode


cdef class LineConnection(EchoConnection):
    cdef LineEcho _echo
    cdef object _pending
    cdef Py_ssize_t _owed
    cdef Py_ssize_t _fast_read
    cdef Py_ssize_t _fast_limit
    cdef Py_ssize_t _line_growth

    cdef _hold(self, data)
    cdef _append(self, data)
    cdef _answer_owed(self, bint everything)
    cdef _settle(self)
    cdef Py_ssize_t _slice_end(self) except -1
    cdef bint _answer(self, complete) except -1
    cdef _fail(self, replies)
