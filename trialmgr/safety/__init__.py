"""Safety: rules that judge a subject's data for harm (lab grading per CTCAE v5.0)."""
