"""python -m reports view: TensorBoard, the report and the slicing browser, side by side, on localhost.

Starts a real TensorBoard server over RUN/logs (training runs and the TFMA
summaries) and a small HTTP server for RUN/report and the slicing browser
(reports/slices_view.py), prints their URLs as its first lines, and stops
cleanly on Ctrl-C. Both answer only requests whose Host header names the
address they are bound to (reports/host_check.py). With --registry DIR, the
browser and TensorBoard (run `registry`) also show each blessed model's
accuracy in blessing order, this run's candidate last.

Example:
    python -m reports view --run-dir runs/demo
    python -m reports view --run-dir runs/demo --registry models/blessed
    python -m reports view --run-dir runs/demo --port 6006 --report-port 8000
"""

from __future__ import annotations

import argparse
import functools
import html
import http.server
import signal
import stat
import sys
import threading
from pathlib import Path

from evalsuite.cli import refuse_linked_folders
from evalsuite.errors import InputError, run_cli
from evalsuite.run.folder import RunDir
from reports.host_check import LOOPBACK_NAMES, HostCheckedApp, allowed_names, check_bind_host, host_allowed
from reports.slices_page import SLICES_NAME

SIDE_BY_SIDE = """<!doctype html><html lang=en><head><meta charset=utf-8><link rel=icon href="data:,"><title>evalsuite: {run}</title>
<style>html,body{{margin:0;height:100%;font:13px system-ui,sans-serif}}
.bar{{padding:4px 10px;background:#1d2330;color:#fff}} .bar a{{color:#9cc3ff;margin-right:14px}}
.panes{{display:flex;height:calc(100% - 26px)}} iframe{{border:0;flex:1;height:100%}}
iframe+iframe{{border-left:2px solid #1d2330}}</style></head><body>
<div class=bar>{run} &mdash; <a href="{report}" target=_blank>report</a><a href="{slices}" target=_blank>slicing browser</a><a href="{tensorboard}" target=_blank>TensorBoard</a>
&middot; left pane: <a href="{report}" target=left>report</a><a href="{slices}" target=left id=slices-link>slicing browser</a></div>
<div class=panes><iframe title=report name=left src="{report}"></iframe><iframe title=TensorBoard src="{tensorboard}"></iframe></div>
</body></html>"""


class ReportHandler(http.server.SimpleHTTPRequestHandler):
    """Serves RUN/report, plus /side-by-side with the report beside TensorBoard and the live slicing browser."""

    side_by_side = b""
    slices = None  # a reports.slices_view.LivePage
    host_names: frozenset[str] = LOOPBACK_NAMES

    def parse_request(self) -> bool:
        """Any method: a request that does not name this server in its Host header gets 403 (DNS rebinding)."""
        if not super().parse_request():
            return False
        if host_allowed(self.headers.get("Host"), self.host_names, self.server.server_address[1]):
            return True
        self.send_error(403, "Host header does not name this server")
        return False

    def send_head(self):
        """Only plain, visible files inside the report folder: no links, no hidden files, no listings."""
        if not _servable(Path(self.directory), Path(self.translate_path(self.path))):
            self.send_error(404, "File not found")
            return None
        return super().send_head()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/side-by-side":
            self._send_page(self.side_by_side)
            return
        if path == f"/{SLICES_NAME}" and self.slices is not None:
            self._send_page(self.slices.body)
            return
        super().do_GET()

    def _send_page(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # one line per request would drown the URLs
        pass


def _servable(root: Path, path: Path) -> bool:
    """A regular file under `root` reached without a symlink or a hidden name (held or temporary files)."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    if not parts:
        parts = ("index.html",)
    current = root
    if current.is_symlink():
        return False
    for part in parts:
        if part.startswith("."):
            return False
        current = current / part
        if current.is_symlink():
            return False
    return stat.S_ISREG(current.stat().st_mode) if current.exists() else False


def start_tensorboard(logdir: Path, host: str, port: int) -> str:
    """A real TensorBoard server in a background thread; returns its URL."""
    from tensorboard import program

    names = allowed_names(host)

    def host_checked_server(app, flags):  # TensorBoard checks no Host header itself
        return program.create_port_scanning_werkzeug_server(HostCheckedApp(app, names), flags)

    board = program.TensorBoard(server_class=host_checked_server)
    board.configure(argv=[None, "--logdir", str(logdir), "--host", host, "--port", str(port), "--reload_interval", "5"])
    try:
        return board.launch()
    except Exception as error:
        raise InputError(f"TensorBoard could not start on {host}:{port} ({error})") from None


def start_report_server(report_dir: Path, host: str, port: int, tensorboard_url: str, run_name: str, slices=None):
    ReportHandler.host_names = allowed_names(host)
    ReportHandler.slices = slices
    handler = functools.partial(ReportHandler, directory=str(report_dir))
    try:
        server = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        raise InputError(f"report server could not start on {host}:{port} ({error.strerror})") from None
    url = f"http://{host}:{server.server_address[1]}/"
    ReportHandler.side_by_side = SIDE_BY_SIDE.format(
        run=html.escape(run_name),
        report=html.escape(url),
        slices=html.escape(url + SLICES_NAME),
        tensorboard=html.escape(tensorboard_url),
    ).encode("utf-8")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reports view", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; one address, never every interface)",
    )
    parser.add_argument("--port", type=int, default=0, help="TensorBoard port (default: a free one)")
    parser.add_argument("--report-port", type=int, default=0, help="report server port (default: a free one)")
    parser.add_argument(
        "--registry",
        type=Path,
        default=None,
        metavar="DIR",
        help="a registry of blessed models: their accuracy in blessing order, this run last, in the slicing "
        "browser and in TensorBoard (run 'registry', the entry's place as the step)",
    )
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)

    def work() -> int:
        for flag, port in (("--port", args.port), ("--report-port", args.report_port)):
            if not 0 <= port <= 65535:
                raise InputError(f"{flag}: must be a port number in 0..65535, got {port}")
        refusal = check_bind_host(args.host)
        if refusal:
            raise InputError(refusal)
        run = RunDir(args.run_dir)
        refuse_linked_folders(run)
        run.read_manifest()
        if not run.logs_root.is_dir():
            raise InputError(f"{run.logs_root}: no TensorBoard logs in this run folder (train first)")
        if not run.report_index.is_file() or not (run.report_dir / SLICES_NAME).is_file() or not run.stage("report"):
            # A report the manifest does not vouch for may be stale: build it from what is on disk now.
            from reports.build import build_report

            with run:
                build_report(run, log=lambda message: None)
        from reports.slices_view import LivePage

        slices = LivePage(run, args.registry)
        if slices.history is not None:
            from reports.tensorboard_summaries import write_registry_series

            with run:
                write_registry_series(run, slices.history)
        tensorboard_url = start_tensorboard(run.logs_root, args.host, args.port)
        server, report_url = start_report_server(
            run.report_dir, args.host, args.report_port, tensorboard_url, str(run.path), slices
        )
        print(f"tensorboard: {tensorboard_url}", flush=True)
        print(f"report: {report_url}index.html", flush=True)
        print(f"side by side: {report_url}side-by-side", flush=True)
        print(f"slices: {report_url}{SLICES_NAME}", flush=True)
        print("press Ctrl-C to stop", flush=True)
        slices.start_reading_tfma()
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
        slices.stop()
        server.shutdown()
        server.server_close()
        print("stopped", flush=True)
        return 0

    return run_cli(work, debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
