"""Which Host headers the view's servers answer: only names of the address they are bound to.

A page on another site can point its own name at 127.0.0.1 (DNS rebinding) and
then read whatever a local server answers, with the browser's blessing: the
request only differs in its Host header, which names the attacker's site. So
both the report server and TensorBoard answer a request only when its Host
header is a loopback name or the bound address, with the bound port; any
other gets 403.
"""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
REFUSED = b"403 Forbidden: this server answers only requests addressed to it by its own host name\n"


def check_bind_host(host: str) -> str | None:
    """Why `host` may not be bound (None when it may): empty and wildcard addresses bind every interface."""
    if not host.strip():
        return "--host: empty; it would bind every network interface (default 127.0.0.1: this machine only)"
    every = any(ipaddress.ip_address(address).is_unspecified for address in _addresses(host.strip("[]")))
    if every:
        return (
            f"--host {host}: binds every network interface; name one address of this machine "
            "(default 127.0.0.1: this machine only)"
        )
    return None


def _addresses(host: str) -> list[str]:
    """What binding `host` would bind, as the socket layer reads it ("0" and "0x0" are 0.0.0.0)."""
    import socket

    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []  # not resolvable: binding it fails on its own, with its own message
    return [entry[4][0].split("%")[0] for entry in found]


def allowed_names(bound_host: str) -> frozenset[str]:
    return LOOPBACK_NAMES | {bound_host.strip("[]").lower()}


def host_allowed(header: str | None, names: frozenset[str], port: int) -> bool:
    """True when the Host header is one of `names` with `port` (a missing port only means 80)."""
    if not header:
        return False
    header = header.strip().lower()
    if header.startswith("["):  # an IPv6 literal: [::1]:8000
        name, _, rest = header[1:].partition("]")
        given_port = rest[1:] if rest.startswith(":") else ("" if not rest else None)
    else:
        name, colon, given_port = header.partition(":")
        given_port = given_port if colon else ""
    if given_port is None or name not in names:
        return False
    return given_port == str(port) if given_port else port == 80


class HostCheckedApp:
    """A WSGI app (TensorBoard's) that answers only requests whose Host header names its bound address."""

    def __init__(self, app, names: frozenset[str]):
        self._app = app
        self._names = names

    def __call__(self, environ, start_response):
        port = int(environ.get("SERVER_PORT") or 0)
        if host_allowed(environ.get("HTTP_HOST"), self._names, port):
            return self._app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", str(len(REFUSED)))])
        return [REFUSED]
