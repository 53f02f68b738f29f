"""Safety: adverse events, CTCAE lab grading, expedited-reporting clocks, stopping rules,
the follow-on work queue and notifications."""
