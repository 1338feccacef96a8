"""The admin HTTP endpoint: Prometheus ``/metrics`` and the identity-assertion JWKS.

``/.well-known/jwks.json`` publishes the public key of the current policy's assertion key, so
upstreams can verify the ``x-extproc-assertion`` JWT; it follows policy reloads.
"""
from __future__ import annotations

import json
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

JWKS_PATH = "/.well-known/jwks.json"


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper must not hold up the next one, nor shutdown


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # scrapes every few seconds must not flood the log
        pass


def admin_app(metrics, store):
    metrics_app = make_wsgi_app(metrics.registry)

    def app(environ, start_response):
        if environ.get("PATH_INFO") != JWKS_PATH:
            return metrics_app(environ, start_response)
        directory = store.current.access
        signer = directory.signer if directory is not None else None
        if signer is None:
            start_response("404 Not Found", [("content-type", "text/plain")])
            return [b"no assertion key configured\n"]
        body = json.dumps(signer.jwks()).encode()
        start_response("200 OK", [("content-type", "application/json"), ("cache-control", "max-age=60")])
        return [body]

    return app


def start_admin(address: str, worker_index: int, metrics, store) -> None:
    """Serve in a daemon thread; worker i listens on port + i."""
    host, _, port = address.rpartition(":")
    server = make_server(host or "127.0.0.1", int(port) + worker_index, admin_app(metrics, store),
                         server_class=_ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="admin-http", daemon=True).start()
