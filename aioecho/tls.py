"""TLS contexts for the server and the client."""

from __future__ import annotations

import ssl


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """A server context with the certificate chain and key from PEM files."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def client_context(ca: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """A client context: verify against ``ca`` (or the system's), or not at all."""
    context = ssl.create_default_context(cafile=ca)
    if insecure:  # only when asked: e.g. a test server's self-signed certificate
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
