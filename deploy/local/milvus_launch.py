"""Runs the PyPI `milvus` launcher with its own command line, with two changes.

The launcher checks each port with a plain bind(), which fails for a minute
after a restart while the old server's connections sit in TIME_WAIT; it then
silently moves the health port, and `up` waits on the wrong one. Binding with
SO_REUSEADDR, as the server itself does, makes a restart land on the same ports.

And the search-quality settings hsc measured (docs/milvus.md, "Recall"):
a sealed segment whose HNSW index is not built yet is searched through a
temporary IVF index (nlist 128); probing every list (nprobe = nlist) makes
that exact instead of costing recall, and a bulk load that stops is sealed
(and so indexed) after 60 s idle instead of 10 minutes. Options given on
the command line come later and win.
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


SEARCH_QUALITY = [
    "queryNode.segcore.interimIndex.nprobe=128",
    "dataCoord.segment.maxIdleTime=60",
]

milvus.MilvusServerConfig.try_bind_port = _try_bind_port
sys.argv[1:1] = [a for kv in SEARCH_QUALITY for a in ("--extra-config", kv)]
sys.exit(milvus.main())
