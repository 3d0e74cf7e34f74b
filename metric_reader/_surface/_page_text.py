"""The pieces of text the status page is made of: its style sheet, escaping, times and
durations as a person reads them, values and labels as Prometheus writes them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from html import escape

from ._status_doc import JsonNumber

CSS = """
:root { color-scheme: light; --ok: #1a7f37; --ok-bg: #dafbe1; --pending: #8a5a00;
  --pending-bg: #fff1b8; --firing: #c5221f; --firing-bg: #ffe3e0; --muted: #59636e;
  --line: #d8dee4; --head: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
  sans-serif; color: #1f2328; background: #fff; }
header { padding: 14px 24px 12px; background: #24292f; color: #fff; display: flex;
  flex-wrap: wrap; align-items: baseline; gap: 6px 18px; }
header h1 { margin: 0; font-size: 20px; font-weight: 600; }
header h1 small { font-weight: 400; color: #b6bec8; font-size: 13px; margin-left: 4px; }
header .facts { color: #d0d7de; }
header .facts b { color: #fff; }
header a { color: #9ecbff; }
main { padding: 8px 24px 32px; max-width: 1400px; }
h2 { font-size: 17px; margin: 22px 0 2px; display: flex; align-items: center; gap: 10px;
  flex-wrap: wrap; }
.about { color: var(--muted); margin: 2px 0 8px; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo,
  Consolas, monospace; font-size: 12.5px; }
.about code { color: #1f2328; background: var(--head); padding: 1px 5px; border-radius: 4px;
  overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 6px; }
table.series { table-layout: fixed; }
table.series td { overflow-wrap: anywhere; }
table.series td.num { white-space: normal; }
h2 { overflow-wrap: anywhere; }
pre.expr { margin: 4px 0 8px; padding: 6px 10px; background: var(--head); border-radius: 4px;
  white-space: pre-wrap; overflow-wrap: anywhere; max-height: 16em; overflow: auto;
  color: #1f2328; }
td code.expr { white-space: pre-wrap; overflow-wrap: anywhere; }
nav.jump { margin: 12px 0 0; padding: 8px 14px; border: 1px solid var(--line);
  border-radius: 4px; background: var(--head); }
.state.inactive { color: var(--muted); background: var(--head); border: 1px solid var(--line); }
.state.failing { color: var(--firing); background: #fff; border: 1px solid var(--firing); }
.errornote { margin: 4px 0 6px; padding: 6px 12px; border-left: 4px solid var(--firing);
  background: #fff6f5; overflow-wrap: anywhere; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--head); font-weight: 600; font-size: 12px; color: var(--muted);
  text-transform: uppercase; letter-spacing: .03em; white-space: nowrap; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.firing td { background: #fff6f5; }
tr.firing td:first-child { box-shadow: inset 4px 0 var(--firing); }
tr.pending td:first-child { box-shadow: inset 4px 0 #d4a72c; }
.state { display: inline-block; white-space: nowrap; min-width: 64px; text-align: center;
  padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 700;
  text-transform: uppercase;
  letter-spacing: .04em; }
.state.ok { color: var(--ok); background: var(--ok-bg); }
.state.pending { color: var(--pending); background: var(--pending-bg); }
.state.firing { color: #fff; background: var(--firing); }
.state.none { color: var(--muted); background: var(--head); }
.state.nodata { color: #fff; background: #6e7781; }
tr.nodata td:first-child { box-shadow: inset 4px 0 #6e7781; }
.nodatanote { margin: 4px 0 6px; padding: 6px 12px; border-left: 4px solid #6e7781;
  background: var(--head); }
.state.ready { color: #fff; background: #1f883d; }
.state.notready { color: #fff; background: var(--firing); }
.level { display: block; margin-top: 2px; font-size: 11.5px; color: var(--muted); }
.hard { display: block; margin-top: 4px; }
.running { color: #0969da; font-weight: 600; }
td.right, th.right { text-align: right; }
.label { display: inline-block; margin: 1px 4px 1px 0; padding: 0 6px; border: 1px solid
  var(--line); border-radius: 4px; background: #fff; overflow-wrap: anywhere; }
.label .k { color: #0550ae; }
.label .v { color: #0a3069; }
.nolabels { color: var(--muted); font-style: italic; }
.muted { color: var(--muted); }
.good { color: var(--ok); font-weight: 600; }
.bad { color: var(--firing); font-weight: 600; }
.error { color: var(--firing); overflow-wrap: anywhere; }
.count { font-size: 13px; font-weight: 400; color: var(--muted); }
.more { color: var(--muted); font-style: italic; padding: 4px 10px; }
.problems { margin: 16px 0 0; padding: 8px 14px; border: 1px solid #ffb3ad;
  border-left: 4px solid var(--firing); border-radius: 4px; background: #fff6f5; }
.problems ul { margin: 4px 0 0; padding-left: 18px; }
.paused { border: 2px solid var(--firing); background: #ffdcd8; }
footer { color: var(--muted); font-size: 12px; padding: 0 24px 24px; }
td.spark { padding: 3px 6px; }
td.spark svg { display: block; background: #fff; border: 1px solid var(--line);
  border-radius: 3px; }
"""


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def _span(seconds: float) -> str:
    """A coarse, readable duration: ``45s``, ``3m05s``, ``2h10m``, ``4d3h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


class Clock:
    def __init__(self, now: str | None) -> None:
        self.now = _parse(now)

    def at(self, stamp: str | None, *, ago: bool = True) -> str:
        """``08:31:10`` (the date too when not today), with the full time as a tooltip."""
        when = _parse(stamp)
        if when is None:
            return '<span class="muted">never</span>'
        same_day = self.now is not None and when.date() == self.now.date()
        text = when.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")
        if ago and self.now is not None:
            text += f" ({_span((self.now - when).total_seconds())} ago)"
        return f'<span title="{esc(stamp)}">{esc(text)}</span>'

    def ago(self, stamp: str | None) -> str:
        """``17s ago``, with the full time as a tooltip."""
        when = _parse(stamp)
        if when is None:
            return '<span class="muted">never</span>'
        if self.now is None:
            return self.at(stamp)
        lasted = _span((self.now - when).total_seconds())
        return f'<span title="{esc(stamp)}">{esc(lasted)} ago</span>'

    def since(self, stamp: str | None, *, short: bool = False) -> str:
        """How long a state has lasted, and since when."""
        when = _parse(stamp)
        if when is None:
            return '<span class="muted">&mdash;</span>'
        lasted = _span((self.now - when).total_seconds()) if self.now is not None else "?"
        if short:
            return f'<span title="{esc(stamp)}">for {esc(lasted)}</span>'
        return (
            f'<span title="{esc(stamp)}">for <b>{esc(lasted)}</b>'
            f'<span class="level">since {esc(when.strftime("%H:%M:%S"))}</span></span>'
        )


def number_cell(value: JsonNumber) -> str:
    """A series value as the page shows it: thousands separated, or 6 significant digits;
    the text ``/api/status`` gives for NaN and the infinities as it is."""
    if value is None:
        return '<span class="muted">&mdash;</span>'
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and number == int(number) and abs(number) < 1e15:
            return esc(f"{int(number):,}")
        return esc(f"{number:.6g}")
    return esc(value)


def _label_value(value: str) -> str:
    """As Prometheus writes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels_html(labels: Mapping[str, str]) -> str:
    if not labels:
        return '<span class="nolabels">no labels</span>'
    return "".join(
        f'<span class="label mono"><span class="k">{esc(name)}</span>='
        f'<span class="v">"{esc(_label_value(str(value)))}"</span></span>'
        for name, value in sorted(labels.items())
    )


def as_float(value: JsonNumber) -> float | None:
    """A value of ``recent`` back as a float; None (no value) for NaN and what is not one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return None if math.isnan(value) else float(value)
    return {"+Inf": math.inf, "-Inf": -math.inf}.get(str(value))
