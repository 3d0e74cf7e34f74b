"""``metric-reader test``: rule unit tests in promtool's file format, plus ``action_test``.

The file format (``_file`` reads a file into ``_model``'s values; the expanding notation in
``_series_desc``), the in-process series store for selector rules (``_series_store``), a
test group evaluated as promtool evaluates it (``_evaluation``, PromQL by ``_promql``) and
the runner (``_runner``) that checks what the rules did against the tests.
"""

from ._runner import UnderGroupName, run_test_file

__all__ = ["UnderGroupName", "run_test_file"]
