"""Efficacy: endpoints per trial, measurements per subject and visit with a baseline, change
and percent change from baseline, and the per-cohort summary over time."""
