cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from .latency cimport LatencyCounts


cdef class Tally:
    cdef public object payload
    cdef public object classify
    cdef public long long second_ns
    cdef public LatencyCounts latency
    cdef public LatencyCounts uncorrected
    cdef public LatencyCounts send_lag
    cdef public LatencyCounts unsent_age
    cdef public bint by_due
    cdef public long long second_at
    cdef public long long mismatches
    cdef public object mismatch_kinds
    cdef public list examples
    cdef public object lost
    cdef public long long open
    cdef public object all_closed
    cdef public long long window_start
    cdef public long long window_end
    cdef public long long send_until
    cdef public long long next_second_at
    cdef public long long timed_out
    cdef public long long unanswered
    cdef public long long unsent
    cdef public long long late
    cdef public long long sent_after_window
    cdef public object starved_seconds

    cpdef next_second(self, long long instant)


cdef class BenchConnection:
    cdef public Py_ssize_t index
    cdef object _request_of
    cdef object _reply_of
    cdef public long long first_sequence
    cdef public long long sequence
    cdef public long long reply_sequence
    cdef bytes _expected
    cdef Py_ssize_t _matched
    cdef Tally _tally
    cdef LatencyCounts _latency
    cdef object _record
    cdef object _on_done
    cdef bint _done
    cdef object _write
    cdef public object transport
    cdef public bint is_open
    cdef public bint closed
    cdef public object times
    cdef public long long window_trips
    cdef public long long last_reply_at
    cdef public long long longest_gap
    cdef public bint starved

    cpdef data_received(self, data)
    @cython.locals(since=cython.longlong, gap=cython.longlong)
    cdef _waited(self, long long now)


cdef class ClosedLoopConnection(BenchConnection):
    cdef long long _limit
    cdef bint _numbered
    cdef object _on_churn
    cdef bytes _reply_form
    cdef bytes _request_form
    cdef Py_ssize_t _sequence_at
    cdef public long long churn_at
    cdef public long long pipeline
    cdef public long long stop_at

    @cython.locals(now=cython.longlong)
    cpdef data_received(self, data)
    @cython.locals(sent_at=cython.longlong, sequence=cython.longlong,
                   answered=cython.longlong, at=Py_ssize_t, filed=cython.longlong)
    cdef bint _step(self, long long now) except -1


cdef class OpenLoopConnection(BenchConnection):
    cdef public long long cap
    cdef public bint finishing
    cdef public object owed
    cdef public object written
    cdef public bint paused


@cython.cdivision(True)
cdef inline bytes with_number(bytes zeros, Py_ssize_t at, unsigned long long number):
    """A copy of ``zeros`` (numbered 0) with ``number`` in the 16 digits at ``at``."""
    numbered = PyBytes_FromStringAndSize(<char*>zeros, len(zeros))
    cdef char* digit = PyBytes_AS_STRING(numbered) + at + 15
    cdef int left = 16  # never past the 16 digits, whatever the number
    while number and left:  # the leading zeros are the copy's
        digit[0] = 48 + number % 10
        number //= 10
        digit -= 1
        left -= 1
    return numbered


cdef inline long long monotonic_clock_ns() noexcept nogil:
    """time.monotonic_ns() without a Python call: the same clock, CLOCK_MONOTONIC."""
    cdef timespec now
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec * 1_000_000_000 + now.tv_nsec
