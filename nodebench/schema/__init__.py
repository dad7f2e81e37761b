"""What each workload's records mean, for the reports: one small module per workload, standard library only.

``nodebench.schema.<workload>`` holds the record vocabulary the workload writes and its report reads:
variant naming (and how to parse it), what ``step`` means for encoded series, which metrics are figure
data rather than final values (``FIGURE_METRICS``), preset names, and the paper's published targets.
Workloads import their schema to write records; reports import only schemas (never workload or model
code), so a report runs on a machine that has the records and nothing else. This package imports
nothing of nodebench.
"""

#: The presets every workload defines (``nodebench reproduce`` runs these).
PRESET_NAMES = ("smoke", "standard", "paper")
