cdef class LatencyCounts:
    cdef long long[::1] _small
    cdef list _touched
    cdef dict _large
    cdef list _groups
    cdef long long _label
    cdef long long _recorded
    cdef public list samples

    cpdef record(self, long long nanoseconds)
    cdef _add(self, long long micros, long long count)
    cdef dict _take(self)
