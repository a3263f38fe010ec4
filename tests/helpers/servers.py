"""Local network peers for download tests: an HTTP server on 127.0.0.1, and a port nothing
listens on (what "offline" looks like). Nothing here reaches the internet."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def closed_port():
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """Serves ``routes[path] = (body, cut)``.

    A ``cut`` route announces twice the body's length, sends half of it and closes.
    """

    def __init__(self):
        self.routes = {}
        self.hits = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                if self.path not in server.routes:
                    self.send_error(404)
                    return
                body, cut = server.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) * (2 if cut else 1)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if cut else body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def serve(self, path, body, cut=False):
        self.routes[path] = (body, cut)
        return self.base + path
