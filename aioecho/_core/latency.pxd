cimport cython

cdef class LatencyCounts:
    cdef long long[::1] _small
    cdef list _touched
    cdef dict _large
    cdef list _groups
    cdef long long _label
    cdef long long _recorded
    cdef public list samples

    cpdef record(self, long long nanoseconds)
    @cython.locals(shift=int)
    cdef _add(self, unsigned long long micros, long long count)
    cdef dict _take(self)
