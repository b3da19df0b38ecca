"""TLS contexts built once from the shared config fields, for every client."""

from __future__ import annotations

import ssl

from .errors import ConfigError

__all__ = ["client_ssl_context"]


def client_ssl_context(
    *,
    verify: bool = True,
    ca_certs: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
) -> ssl.SSLContext:
    """Build a client-side TLS context.

    Args:
        verify: Verify the server certificate and host name.
        ca_certs: A CA bundle (PEM) to trust instead of the system store.
        client_cert: Client certificate (PEM) for mutual TLS.
        client_key: The client certificate's key (PEM); may be inside client_cert.

    Returns:
        A context ready for ``ssl=`` / ``verify=`` arguments.

    Raises:
        ConfigError: A certificate file cannot be read or is invalid (named).
    """
    try:
        context = ssl.create_default_context(cafile=ca_certs)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"ca_certs: cannot load {ca_certs!r}: {exc}") from exc
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client_cert:
        try:
            context.load_cert_chain(client_cert, client_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"client_cert: cannot load {client_cert!r}: {exc}") from exc
    return context
