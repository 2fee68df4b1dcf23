"""Stands in for the ``cython`` module where Cython is not installed.

Compiled, ``import cython`` is the compiler's own and ``cython.compiled`` is
True; in pure Python it is Cython's run-time module if installed, else this.
Either way ``cython.compiled`` is False there, and the branches it guards
run only compiled.
"""

compiled = False
