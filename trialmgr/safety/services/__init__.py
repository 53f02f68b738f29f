"""Safety operations, one module per sub-domain: adverse_events (records, versions, reviews),
labs (results and grading), clocks (expedited reporting), stopping (rules and pauses), work
(the follow-on work queue), notify (in-app and e-mail notices), dictionary (MedDRA import)."""
