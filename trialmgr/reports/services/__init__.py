"""Report operations: the archive (requests, files, downloads), schedules and
subscriptions, and the numbers the reports print that no other service computes yet."""
