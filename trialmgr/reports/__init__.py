"""Monitoring reports: PDF builders (reportlab), the report archive, schedules and
subscriptions, and the jobs the scheduler process runs."""
