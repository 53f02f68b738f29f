"""Efficacy operations: endpoints (a trial's definitions), measurements (entry, corrections,
change from baseline), summary (per cohort and visit, over time)."""
