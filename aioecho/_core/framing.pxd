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


cdef inline void ascii_upper_into(char* out, const char* read, Py_ssize_t size) noexcept nogil:
    """Copy ``size`` bytes, a-z uppercased: branch-free, so the C compiler vectorises it."""
    cdef Py_ssize_t i
    cdef unsigned char byte
    for i in range(size):
        byte = <unsigned char>read[i]
        out[i] = <char>(byte - 32 * (<unsigned char>(byte - 97) < 26))


cdef inline bytes ascii_replies(const char* read, Py_ssize_t size, bytes suffix):
    """LineEcho.lines() by ASCII rules, in one pass: upper(body) + suffix + terminator.

    Line by line: memchr finds each LF, the body is uppercased in one copy,
    then the suffix and the terminator follow. A CR before an LF is part of
    the terminator, so the suffix goes before it.
    """
    cdef Py_ssize_t lines = 0, suffix_size = len(suffix), start = 0, body_end, line_end
    cdef const char* suffix_bytes = suffix
    cdef const char* found = read
    cdef const char* end = read + size
    while True:
        found = <const char*>memchr(found, 10, end - found)
        if found == NULL:
            break
        lines += 1
        found += 1
    reply = PyBytes_FromStringAndSize(NULL, size + lines * suffix_size)
    cdef char* out = PyBytes_AS_STRING(reply)
    while start < size:
        found = <const char*>memchr(read + start, 10, size - start)
        if found == NULL:  # a last, unterminated piece: no suffix
            ascii_upper_into(out, read + start, size - start)
            break
        line_end = found - read
        body_end = line_end - 1 if line_end > start and read[line_end - 1] == 13 else line_end
        ascii_upper_into(out, read + start, body_end - start)
        out += body_end - start
        memcpy(out, suffix_bytes, suffix_size)
        out += suffix_size
        if body_end < line_end:
            out[0] = 13
            out += 1
        out[0] = 10
        out += 1
        start = line_end + 1
    return reply
