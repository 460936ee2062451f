"""Aggregation of stored runs into tidy pandas tables (and, later, statistics, figures and documents)."""
from .tables import history_table, runs_table, study_summary

__all__ = ["history_table", "runs_table", "study_summary"]
