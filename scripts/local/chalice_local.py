#!/usr/bin/env python3
"""`chalice local`, with a listen backlog deep enough for concurrent clients.

chalice local's ThreadedHTTPServer keeps socketserver's default
``request_queue_size`` of 5.  Its accept loop shares the GIL with the threads
that resize, so under `make load` the kernel's accept queue filled (seen with
``ss -ltn``: Recv-Q 6 of Send-Q 5; ``nstat`` TcpExtListenOverflows climbing).
Linux then drops the handshake's last ACK: the client believes it is
connected, the server retransmits its SYN-ACK for up to about two minutes,
latency grows in 1 s, 2 s, 4 s… steps and at 160 clients connections were
reset.  API Gateway has no such queue, so the local stack should not either.

It also keeps a raw ``;`` in the path: chalice local splits URLs with
``urllib.parse.urlparse``, which cuts RFC 2396 path parameters off
(``/resize/300x/a;b.jpg`` matched the key ``a``: another original).
API Gateway keeps the ``;`` in the path, and so does ``urlsplit``.

Usage: the arguments of ``chalice`` itself, e.g. ``chalice_local.py local --port 8000``.
"""

from __future__ import annotations

import socket
import sys
from urllib.parse import urlsplit

from chalice import local
from chalice.cli import main

# The kernel caps it at net.core.somaxconn anyway.
local.ThreadedHTTPServer.request_queue_size = socket.SOMAXCONN
# The route matcher reads only .path and .query, which urlsplit has too.
local.urlparse = urlsplit  # type: ignore[assignment]

if __name__ == "__main__":
    sys.exit(main())
