"""Is an Azure endpoint reachable at all? Answered in seconds, before an SDK spends its retries.

azure-servicebus retries a failed AMQP connection for about 11 s before it
gives up, and says nothing about why; a DNS lookup and a TCP connect tell a
typo or a blocked network from an Azure error within a few seconds.
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

# Service Bus: AMQP over TLS on 5671, or AMQP over WebSockets on 443 (where 5671 is blocked).
SERVICE_BUS_PORTS = (5671, 443)
TIMEOUT_SECONDS = 3.0


class Unreachable(ConnectionError):
    """The endpoint cannot be reached from here; carries a hint."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def check_reachable(host: str, ports: tuple[int, ...] = SERVICE_BUS_PORTS, timeout: float = TIMEOUT_SECONDS) -> None:
    """Raise :class:`Unreachable` unless ``host`` resolves and accepts a TCP connection on one of ``ports``."""
    hint = (f"check SERVICEBUS__fullyQualifiedNamespace ({host}): it is <namespace>.servicebus.windows.net, as azd env get-values "
            "prints it; then your network, VPN or proxy (Service Bus needs outbound port 5671, or 443)")
    # getaddrinfo has no timeout of its own: run it in a thread and stop waiting after ``timeout``.
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        addresses = pool.submit(socket.getaddrinfo, host, ports[0], type=socket.SOCK_STREAM).result(timeout=timeout)
    except FutureTimeout as exc:
        raise Unreachable(f"cannot reach the Service Bus namespace {host}: DNS lookup timed out after {timeout:.0f} s", hint) from exc
    except OSError as exc:
        raise Unreachable(f"cannot reach the Service Bus namespace {host}: the name does not resolve ({exc.strerror or exc})", hint) from exc
    finally:
        pool.shutdown(wait=False)
    address = str(addresses[0][4][0])  # a host name resolves to IPv4 or IPv6 addresses, both str
    errors = []
    for port in ports:
        try:
            with socket.create_connection((address, port), timeout=timeout / len(ports)):
                return
        except OSError as exc:
            errors.append(f"port {port}: {exc.strerror or exc}")
    raise Unreachable(f"cannot reach the Service Bus namespace {host} ({address}): " + "; ".join(errors), hint)
