"""The report side: tidy tables, statistics, figures and documents built from the results folder alone
(through ablations.results, the results contract; never the training stack)."""
from .stats import Interval, area_under_curve, t_interval, time_to_threshold
from .tables import history_table, runs_table, study_summary

__all__ = ["Interval", "area_under_curve", "history_table", "runs_table", "study_summary", "t_interval",
           "time_to_threshold"]
