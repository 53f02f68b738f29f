"""Backups: the database, the report files and a manifest in one archive; restored into a
fresh database and checked against the manifest (`flask backup create|restore`)."""
