"""gunicorn settings for the web UI, read from the appliance config (`[web]`). Used by `appliance web`:

    gunicorn -c <this file> appliance.webapp.wsgi:app

Threads, not processes, carry the concurrency: every open page keeps one Server-Sent Events stream (one
thread) and SQLite serialises writers anyway. `preload_app` stays off so no database connection crosses a fork.
"""

from appliance.config import find_config_path, load_config

_web = load_config(find_config_path(None)).web

bind = [_web.bind]
workers = _web.workers
threads = _web.threads
worker_class = "gthread"
timeout = _web.timeout_s
graceful_timeout = 10
keepalive = 5
preload_app = False
# Each worker listens on its own SO_REUSEPORT socket and the kernel spreads new connections across them. On one
# shared socket the first worker to wake takes every connection opened at once (a dock PC's and a script's
# keep-alive connections all land in one process, the other idle), and their posts queue behind one GIL.
reuse_port = True
accesslog = None
errorlog = "-"
loglevel = "info"
proc_name = "appliance-web"
# SSE streams end by themselves (events.STREAM_LIFETIME_S) and browsers reconnect, so a restart is quick.
# gunicorn 24+ opens a control socket under $HOME; the service user has no home, and nothing uses it.
control_socket_disable = True


def post_worker_init(worker):
    """End the worker's event streams when it is told to stop, then let gunicorn stop it as usual."""
    import signal

    from appliance.webapp.events import SHUTDOWN

    def stop(signum, frame):
        SHUTDOWN.set()
        worker.handle_exit(signum, frame)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGQUIT, lambda signum, frame: (SHUTDOWN.set(), worker.handle_quit(signum, frame)))
