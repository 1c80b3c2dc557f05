"""The local stack's port probe agrees with the server it starts (which reuses addresses)."""

from __future__ import annotations

import socket

from infra.local.stack import _port_is_free


def test_a_port_left_in_time_wait_by_a_stopped_stack_is_free() -> None:
    # Found: `make run` again within a minute said "Port 3000 in use": the probe did not allow reuse.
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server's side closes first, so its address waits in TIME_WAIT
    client.close()
    server.close()
    assert _port_is_free("127.0.0.1", port)


def test_a_port_with_a_listening_server_is_not_free() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert not _port_is_free("127.0.0.1", server.getsockname()[1])
