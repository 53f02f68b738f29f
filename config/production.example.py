"""Copy to a private path and point TRIALMGR_CONFIG at it.

Secrets may stay in the environment instead (DATABASE_URL, SECRET_KEY).
"""

PRODUCTION = True
# SECRET_KEY = "<64 random characters: python -c 'import secrets; print(secrets.token_urlsafe(48))'>"
SQLALCHEMY_DATABASE_URI = "postgresql+psycopg://trialmgr@db.internal:5432/trialmgr"
SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "pool_size": 10}
SESSION_COOKIE_SECURE = True
REMEMBER_COOKIE_SECURE = True
# The login rate limit counts per worker process by default ("memory://"). For one count
# across gunicorn workers, install the Redis client (pip install "limits[redis]") and set:
# RATELIMIT_STORAGE_URI = "redis://127.0.0.1:6379/0"
