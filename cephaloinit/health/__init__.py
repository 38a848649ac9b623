"""The health server child and the probe client.

``server`` is a small HTTP/1.x server on the loop of ``cephaloinit.loop``: one
process, one thread, non-blocking sockets. ``probe`` is the HEALTHCHECK client.
The pure parts live apart so they can be tested on their own: ``http``
(request parsing, response bytes), ``checks`` (liveness, readiness, status),
``metrics`` (Prometheus text) and ``outbound`` (non-blocking connections to
Squid, with deadlines, shared between concurrent requests).
"""
