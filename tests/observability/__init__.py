"""Metrics, logs, alerts and the dashboard, checked against real tools (T-O1..T-O3)."""
