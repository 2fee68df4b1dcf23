"""Socket and OS helpers: binding, accepting, kernel send queues, descriptor limits.

``binding``: listening sockets and the errors that name a failed address;
``accept``: the accept loop that survives running out of descriptors;
``unsent``: what the kernel still holds for a connection, either way;
``limits``: the open-file limit and what it allows.
"""

from .unsent import kernel_unread, kernel_unsent

__all__ = ["kernel_unread", "kernel_unsent"]
