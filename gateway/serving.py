"""``dbx-gateway serve``: uvicorn (uvloop, httptools) running the app that
a factory makes, in one process or in several workers that each bind their
own ``SO_REUSEPORT`` socket and share one metrics directory.

Must not: build the app (``gateway.app``) or read settings.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket

import uvicorn

from gateway.observability.metrics import MultiprocessDir

APP_FACTORY = "gateway.app:create_app"


def serve(
    host: str = "127.0.0.1", port: int = 8000, workers: int = 1, app: str = APP_FACTORY
) -> None:
    """uvicorn with uvloop and httptools, serving the ASGI app that the
    factory ``app`` ("module:function") makes (the benchmark's floor server
    runs on the very same machinery).

    Several workers each bind their own socket with ``SO_REUSEPORT``, so the
    kernel spreads new connections evenly over them; uvicorn's own
    ``--workers`` shares one listening socket and under keep-alive load can
    leave one worker with nearly all connections. The workers' metrics meet
    in one ``PROMETHEUS_MULTIPROC_DIR`` (``MultiprocessDir``)."""
    with MultiprocessDir(workers) as metrics_dir:
        if workers <= 1:
            _uvicorn_server(host, port, app).run()
        else:
            _serve_workers(host, port, workers, app, metrics_dir)


def _serve_workers(
    host: str, port: int, workers: int, app: str, metrics_dir: MultiprocessDir
) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_serve_worker, args=(host, port, app), name=f"dbx-gateway-worker-{i}")
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()

    def stop(signum: int, frame: object) -> None:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # one worker ending (crash or signal) ends the whole server: a supervisor
    # (systemd, Kubernetes) restarts it, which beats running half-size quietly
    while all(proc.is_alive() for proc in procs):
        procs[0].join(timeout=0.5)
    stop(signal.SIGTERM, None)
    for proc in procs:
        proc.join(timeout=15)
        metrics_dir.worker_exited(proc.pid)
    codes = [proc.exitcode for proc in procs]
    if any(code not in (0, -signal.SIGTERM) for code in codes):
        raise SystemExit(f"a worker exited with {codes}")


def _uvicorn_server(host: str, port: int, app: str) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="info",
        # one log line per request costs more CPU than a planned query;
        # requests are counted in /metrics and slow ones logged
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    return uvicorn.Server(config)


def _serve_worker(host: str, port: int, app: str) -> None:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    _uvicorn_server(host, port, app).run(sockets=[sock])
