"""Runs the PyPI `milvus` launcher with its own command line, with one change.

The launcher checks each port with a plain bind(), which fails for a minute
after a restart while the old server's connections sit in TIME_WAIT; it then
silently moves the health port, and `up` waits on the wrong one. Binding with
SO_REUSEADDR, as the server itself does, makes a restart land on the same ports.
"""
import socket
import sys

import milvus


def _try_bind_port(self, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None


milvus.MilvusServerConfig.try_bind_port = _try_bind_port
sys.exit(milvus.main())
