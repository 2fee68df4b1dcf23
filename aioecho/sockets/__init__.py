"""Socket and OS helpers: binding, accepting, descriptor limits.

``binding``: listening sockets and the errors that name a failed address;
``accept``: the accept loop that survives running out of descriptors;
``limits``: the open-file limit and what it allows.
"""
