"""``report`` and ``serve``: the migration in a browser, as one offline HTML file or a live page."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from aurum_otel.cli.app import cli
from aurum_otel.cli.common import FilePath, FiniteFloat, known_migrations, resolve_name
from aurum_otel.registry import get_registry
from aurum_otel.report import SOURCES, LiveServer, ReportOptions, build_report, parse_since, write_report


def _options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
        click.argument("names", nargs=-1, metavar="[NAME]..."),
        click.option("--source", type=click.Choice(SOURCES), default="file", show_default=True,
                     help="Figures from the metrics file (this host) or Prometheus range queries."),
        click.option("--since", metavar="DURATION",
                     help="The period shown, back from now: 90s, 15m, 1h (default: from the first "
                          "data or transition, at most an hour)."),
        click.option("--prometheus-url", metavar="URL",
                     help="Prometheus (default AURUM_PROMETHEUS_URL or http://127.0.0.1:9090)."),
        click.option("--jaeger-url", metavar="URL",
                     help="Jaeger's query API (default AURUM_JAEGER_URL or http://127.0.0.1:16686)."),
        click.option("--jaeger-ui", metavar="URL",
                     help="Link each trace to this Jaeger UI (the full Jaeger, e.g. docker-compose's)."),
        click.option("--traces", type=click.IntRange(0, 20), default=2, show_default=True,
                     help="Latest mismatches and slowest calls drawn per migration (0: no traces)."),
        click.option("--trace", "trace_ids", multiple=True, metavar="TRACE_ID",
                     help="Also draw this trace (repeatable)."),
        click.option("--service", "services", multiple=True, metavar="SERVICE",
                     help="Search traces of these services only (default: every service)."),
    )):
        f = option(f)
    return f


def _make_options(names: tuple[str, ...], source: str, since: str | None,
                  prometheus_url: str | None, jaeger_url: str | None, jaeger_ui: str | None,
                  traces: int, trace_ids: tuple[str, ...], services: tuple[str, ...],
                  refresh: float | None = None) -> ReportOptions:
    chosen = tuple(resolve_name(n) for n in names) if names else tuple(known_migrations())
    return ReportOptions(chosen, source=source,
                         since=parse_since(since) if since is not None else None,
                         prometheus_url=prometheus_url, jaeger_url=jaeger_url, jaeger_ui=jaeger_ui,
                         traces=traces, trace_ids=trace_ids, services=services or None,
                         refresh=refresh)


@cli.command()
@_options
@click.option("-o", "--output", type=FilePath(dir_okay=False, path_type=Path), required=True,
              help="The HTML file to write (one self-contained file, works offline).")
def report(output: Path, **kwargs: Any) -> None:
    """Write an HTML report: plots of every migration over time, and traces side by side."""
    options = _make_options(**kwargs)
    path = write_report(output, options, get_registry().store)
    click.echo(f"report: {path.resolve()}")


@cli.command()
@_options
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--refresh", type=FiniteFloat(1, 3600), default=10.0, show_default=True,
              help="Seconds between refreshes of the page.")
def serve(port: int, refresh: float, **kwargs: Any) -> None:
    """A live, read-only page on 127.0.0.1 with the report's views, refreshed for a rollout."""
    options = _make_options(**kwargs, refresh=refresh)
    store = get_registry().store
    server = LiveServer(lambda: build_report(options, store), port=port, refresh=refresh).start()
    click.echo(f"serving {server.url} (read-only; Ctrl-C stops)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
