"""The local Dask cluster of executor ``local-dask``: mutual TLS on every message port, and no web server at all.

A Dask scheduler runs whatever a connected client submits, so its message ports (scheduler, nannies, workers)
speak TLS with a throw-away certificate authority that exists only in this process and its workers
(``Security.temporary()``): no other account can connect. That covers only the message ports: a scheduler and
every worker also start a Tornado HTTP server, even with ``dashboard_address=None`` (the scheduler on 8787 or
near), plain HTTP without authentication, whose routes (``/info/logs/<worker>.html``,
``/info/call-stacks/<worker>.html``, ``/metrics``...) show logs and stack traces to any local account. Their
classes here (:class:`NoWebScheduler`, :class:`NoWebWorker`) start that server without ever binding it.
"""
from __future__ import annotations

import logging
from typing import Any

from distributed import Nanny, Scheduler, SpecCluster, Worker
from distributed.security import Security


def local_cluster_security() -> Security:
    """Mutual TLS with a throw-away CA for the local cluster of executor ``local-dask``.

    Its scheduler and workers listen on loopback ports, and a Dask scheduler runs whatever a connected client
    submits: without TLS any other account on a shared machine that finds the port can run code as this user.
    The temporary certificates exist only in this process's memory (and its workers'), so only they can connect.
    """
    return Security.temporary()


class _NoWeb:
    """Mixin: the node's HTTP application exists (the node's code refers to it) but never listens on a port."""

    def start_http_server(self, routes: Any, dashboard_address: Any, default_port: int = 0,
                          ssl_options: Any = None) -> None:
        from distributed.http.routing import RoutingApplication
        from tornado.httpserver import HTTPServer

        self.http_application = RoutingApplication([])
        self.http_server = HTTPServer(self.http_application)  # never .listen(): no socket, no service entry


class NoWebScheduler(_NoWeb, Scheduler):
    """A scheduler without its HTTP server (no dashboard, no /info, /metrics or /health)."""


class NoWebWorker(_NoWeb, Worker):
    """A worker without its HTTP server."""


def local_tls_cluster(n_workers: int, security: Any, threads_per_worker: int = 1, asynchronous: bool = False,
                      silence_logs: int = logging.WARN) -> SpecCluster:
    """A cluster of ``n_workers`` worker processes (each under a nanny) and a scheduler, all on 127.0.0.1, all
    message ports ``tls://`` with ``security``, no HTTP server anywhere. Used as prefect-dask's ``cluster_class``."""
    common = {"host": "127.0.0.1", "protocol": "tls://", "security": security}
    scheduler = {"cls": NoWebScheduler, "options": {**common, "port": 0, "dashboard": False,
                                                    "dashboard_address": None}}
    worker = {"cls": Nanny, "options": {**common, "worker_class": NoWebWorker, "nthreads": threads_per_worker,
                                        "dashboard": False, "dashboard_address": None,
                                        "silence_logs": silence_logs}}
    return SpecCluster(scheduler=scheduler, workers={i: worker for i in range(n_workers)}, worker=worker,
                       security=security, asynchronous=asynchronous, silence_logs=silence_logs)
