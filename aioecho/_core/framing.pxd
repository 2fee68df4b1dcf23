from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memchr, memcpy


cdef class LineEcho:
    cdef public bint unicode
    cdef bytes _suffix
    cdef bytes _suffix_lf
    cdef tuple _crlf_fix
    cdef public Py_ssize_t max_line
    cdef public bytes too_long_error
    cdef public Py_ssize_t most_growth
    cdef public Py_ssize_t exact_growth
    cdef public object count_lines

    cpdef object read_replies(self, bytearray buffer, Py_ssize_t nbytes)
    cpdef object lines(self, object complete)


cdef inline bytes ascii_replies(const char* read, Py_ssize_t size, bytes suffix):
    """LineEcho.lines() by ASCII rules, in one pass: upper(body) + suffix + terminator.

    ``read`` holds whole lines only, so a CR before an LF belongs to the
    same line: the suffix goes before that CR.
    """
    cdef Py_ssize_t i, at = 0, lines = 0, suffix_size = len(suffix)
    cdef const char* suffix_bytes = suffix
    cdef const char* found = read
    cdef const char* end = read + size
    cdef char byte
    while True:
        found = <const char*>memchr(found, 10, end - found)
        if found == NULL:
            break
        lines += 1
        found += 1
    reply = PyBytes_FromStringAndSize(NULL, size + lines * suffix_size)
    cdef char* out = PyBytes_AS_STRING(reply)
    for i in range(size):
        byte = read[i]
        if byte == 10:
            if i and read[i - 1] == 13:
                at -= 1
            memcpy(out + at, suffix_bytes, suffix_size)
            at += suffix_size
            if i and read[i - 1] == 13:
                out[at] = 13
                at += 1
            out[at] = 10
        elif 97 <= byte <= 122:
            out[at] = byte - 32
        else:
            out[at] = byte
        at += 1
    return reply
