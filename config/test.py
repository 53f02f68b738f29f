"""Test settings; the database URL is set per test by tests/conftest.py."""

TESTING = True
SECRET_KEY = "test-secret-key-not-for-production-use-0123456789"
WTF_CSRF_ENABLED = False
RATELIMIT_ENABLED = False
LOGIN_RATE_LIMIT = "1000 per minute"
# Cheap hashes keep the suite fast; the production defaults are argon2id's.
PASSWORD_HASH_PARAMS = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
