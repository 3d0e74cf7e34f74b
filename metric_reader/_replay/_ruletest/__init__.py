"""``metric-reader test``: rule unit tests in promtool's file format, plus ``action_test``.

The file format (``_file`` reads a file into ``_model``'s values; the expanding notation in
``_series_desc``), the in-process series store for selector rules (``_series_store``), the
throwaway Prometheus that answers expressions (``_throwaway``, fed through ``_remote_write``
when a series holds ``stale``) and the runner (``_runner``) that replays every rule of a
file over the input series.
"""

from ._runner import UnderGroupName, run_test_file

__all__ = ["UnderGroupName", "run_test_file"]
