"""Reports built only from stored records: ``REPORT.md``, pandas tables and matplotlib figures.

A workload may add its own section with a module ``nodebench/report/<workload>.py`` defining
``section(df, meta_list, out_dir) -> str``: ``df`` holds the records of that workload's runs (with
``preset``, ``device`` and ``status`` columns), ``meta_list`` their meta dicts, and ``out_dir`` the
report folder, where figures may be written (link them relative to it, e.g. ``figures/x.png``).
"""

from nodebench.report._build import build_report, figure_rows
from nodebench.report._tables import final_values, markdown_table

__all__ = ["build_report", "figure_rows", "final_values", "markdown_table"]
