"""Aggregation of stored runs into tidy pandas tables (and, later, statistics, figures and documents)."""
from .stats import Interval, area_under_curve, bootstrap_ci, paired_difference, time_to_threshold, verdict
from .tables import history_table, runs_table, study_summary

__all__ = ["Interval", "area_under_curve", "bootstrap_ci", "history_table", "paired_difference", "runs_table",
           "study_summary", "time_to_threshold", "verdict"]
