"""Artefacts every task writes: ``result.json``, PNG plots and ``report.html``.

matplotlib (extra ``[cli]``) is imported only inside the plotting functions.
"""

from diffdsp.report.artefacts import describe_input, to_jsonable, write_json, write_result_json
from diffdsp.report.html import Section, write_report

__all__ = [
    "Section",
    "describe_input",
    "to_jsonable",
    "write_json",
    "write_report",
    "write_result_json",
]
