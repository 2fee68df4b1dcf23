"""TLS contexts for the server and the client."""

from __future__ import annotations

import re
import ssl

# How the ssl module ends its messages: " (_ssl.c:1006)".
_SOURCE_LINE = re.compile(r" \(_ssl\.c:\d+\)$")


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


def ssl_reason(exc: ssl.SSLError) -> str:
    """OpenSSL's words for ``exc``, without the line of C source the ssl module
    appends: the same text whatever the build, for people and failure counts."""
    return _SOURCE_LINE.sub("", exc.strerror or str(exc))
