"""Watching jobs while they run: samples of what each attempt uses (collect.py), alert rules
(rules.py) evaluated on them and acted on (watch.py), notifiers (notify.py), efficiency reports and
right-sizing advice (report.py), and the Prometheus exposition (prometheus.py)."""
