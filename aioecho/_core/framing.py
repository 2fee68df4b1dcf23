"""The echo transform, as batch byte operations over whole buffers.

Every function here works on all complete lines of a read at once with
C-level ``bytes`` methods, because a Python loop per line would cost more
than the kernel's own work for a small message.
"""

from __future__ import annotations

try:
    import cython
except ImportError:  # pure Python without Cython installed
    from . import nocython as cython

LF = b"\n"
LF_CODE = LF[0]  # the same, as one byte of a buffer compares: an int
CR = b"\r"
CR_CODE = ord(CR)  # an int operand makes ``in`` a plain byte scan: several times faster

Buffer = bytes | bytearray

# The most a UTF-8 character grows when uppercased, as a multiple of its bytes.
UNICODE_GROWTH = 3

# bytes.upper() with a table: translate() is one branch-free lookup per byte,
# about 1.6x faster than upper(), which tests every byte's case first.
ASCII_UPPER = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class LineEcho:
    """Replies for line framing: ``upper(body) + suffix + terminator``."""

    __slots__ = (
        "_crlf_fix",
        "_suffix",
        "_suffix_lf",
        "count_lines",
        "exact_growth",
        "max_line",
        "most_growth",
        "too_long_error",
        "unicode",
    )

    def __init__(self, suffix: bytes, max_line: int, unicode: bool = False) -> None:
        self.unicode = unicode
        self._suffix = suffix
        self._suffix_lf = suffix + LF
        # After the suffix has been put before every LF, a CRLF line reads
        # body CR suffix LF; this pair moves the CR back behind the suffix.
        self._crlf_fix = (CR + suffix + LF, suffix + CR + LF)
        self.max_line = max_line
        self.too_long_error = b"ERR line too long (max %d bytes)\n" % max_line
        # The most reply bytes one input byte can cost: uppercasing keeps an
        # ASCII byte's length, and a UTF-8 character's uppercase form is at
        # most three times its length ("\u0390" is 2 bytes, its uppercase 6);
        # an input byte that is a whole (empty) line adds the suffix too.
        self.most_growth = (UNICODE_GROWTH if unicode else 1) + len(suffix)
        # Counting LFs is slower than uppercasing short lines; where every
        # reply line grows by the suffix exactly (ASCII rules, a suffix),
        # the lengths tell the count. 0 where they do not.
        self.exact_growth = 0 if unicode else len(suffix)
        self.count_lines = self._count_by_length if self.exact_growth else _count_lfs

    def lines(self, complete: Buffer) -> Buffer:
        """Replies to ``complete``, which holds whole lines only (ends with LF)."""
        reply = unicode_upper(complete) if self.unicode else complete.translate(ASCII_UPPER)
        if not self._suffix:
            return reply
        reply = reply.replace(LF, self._suffix_lf)
        if CR_CODE in complete:
            reply = reply.replace(*self._crlf_fix)
        return reply

    def read_replies(self, buffer: bytearray, nbytes: int) -> Buffer:
        """Replies to the first ``nbytes`` of ``buffer``, which hold whole lines only.

        The ping-pong path. Compiled, ASCII rules are one C pass over the
        read into the reply (``ascii_replies`` in framing.pxd), with no
        intermediate copies.
        """
        if cython.compiled and not self.unicode:
            return ascii_replies(  # type: ignore[name-defined,no-any-return]  # noqa: F821
                buffer, nbytes, self._suffix
            )
        return self.lines(buffer[:nbytes])

    def _count_by_length(self, complete: Buffer, replies: Buffer) -> int:
        """How many lines ``replies`` answers: each reply is its line plus the suffix."""
        return (len(replies) - len(complete)) // self.exact_growth

    def partial(self, body: Buffer) -> Buffer:
        """Reply to a last line cut short by end of input: no terminator."""
        return upper(body, self.unicode) + self._suffix

    def first_too_long(self, complete: Buffer) -> int:
        """Offset of the first line of ``complete`` whose body is too long, or -1.

        Hops from line start to the last LF within reach of the limit instead
        of splitting: a read of short lines takes a few hops, not one per line.
        """
        reach = self.max_line + 1  # the most bytes a line may hold before its LF (a CR)
        if len(complete) <= reach:
            return -1  # one LF-terminated line at the limit fits
        start, end = 0, len(complete)
        while start < end:
            last = complete.rfind(LF, start, start + reach + 1)
            if last < 0:
                return start  # no LF within reach: this line is too long
            # Every later line before ``last`` is shorter than the window; only
            # the first can fill it, which is allowed if its last byte is CR.
            fills_window = last - start == reach and complete.find(LF, start, last) < 0
            if fills_window and complete[last - 1] != CR_CODE:
                return start
            start = last + 1
        return -1

    def partial_too_long(self, partial: Buffer) -> bool:
        """Whether an unterminated line is already past the limit.

        One byte of grace: a trailing CR may be the start of a CRLF terminator.
        """
        return len(partial) > self.max_line and _body_length(partial) > self.max_line


def _count_lfs(complete: Buffer, replies: Buffer) -> int:
    """How many lines ``complete`` holds (``replies`` is there for the common signature)."""
    return complete.count(LF)


def _body_length(line: Buffer) -> int:
    return len(line) - 1 if line.endswith(CR) else len(line)


def upper(block: Buffer, unicode: bool) -> Buffer:
    """``block`` uppercased by ASCII rules, or by Unicode rules where it is UTF-8."""
    return unicode_upper(block) if unicode else block.translate(ASCII_UPPER)


def unicode_upper(block: Buffer) -> bytes:
    """``block`` with every valid UTF-8 character uppercased by Unicode rules.

    Bytes that are not part of a valid UTF-8 sequence pass through untouched
    (``surrogateescape`` carries them through the str round trip as lone
    surrogates, which have no case). So invalid input costs what valid input
    costs: one decode, one ``upper()``, one encode, all in C. Lengths may
    change (``ß`` becomes ``SS``).
    """
    return block.decode("utf-8", "surrogateescape").upper().encode("utf-8", "surrogateescape")
