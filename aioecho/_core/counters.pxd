cdef class Counters:
    cdef public long long accepted
    cdef public long long active
    cdef public long long buffered
    cdef public long long bytes_in
    cdef public long long bytes_out
    cdef public long long messages
    cdef public long long accept_errors
    cdef public dict rejected
    cdef public dict faults
