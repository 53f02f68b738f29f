"""Defaults: the embedded SQLite database under instance/, development-safe settings.

Loaded first; a file named by TRIALMGR_CONFIG and then environment variables
(DATABASE_URL, SECRET_KEY, TRIALMGR_ENV) override it.
"""

# None means: derive `sqlite:///<instance>/trialmgr.db` at start-up.
SQLALCHEMY_DATABASE_URI = None
SQLALCHEMY_ENGINE_OPTIONS: dict = {}

# In production a real SECRET_KEY must be given (env or config file); outside
# production one is generated once and kept in instance/secret_key.
PRODUCTION = False
SECRET_KEY = None

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = False  # forced on in production
REMEMBER_COOKIE_HTTPONLY = True
PERMANENT_SESSION_LIFETIME = 8 * 3600
WTF_CSRF_TIME_LIMIT = 8 * 3600

# Accounts
PASSWORD_MIN_LENGTH = 12
LOGIN_MAX_FAILURES = 5
LOGIN_LOCKOUT_MINUTES = 15
API_TOKEN_TTL_HOURS = 12

# Mail (standard library smtplib): off while MAIL_SERVER is None. Used to tell the owner
# of an account that it was locked. MAIL_USE_TLS is STARTTLS; MAIL_USE_SSL is implicit TLS
# (port 465).
MAIL_SERVER = None
MAIL_PORT = 25
MAIL_USE_TLS = False
MAIL_USE_SSL = False
MAIL_USERNAME = None
MAIL_PASSWORD = None
MAIL_DEFAULT_SENDER = "trialmgr@localhost"
MAIL_TIMEOUT = 10

# Rate limits on credential endpoints (per client address).
RATELIMIT_ENABLED = True
RATELIMIT_STORAGE_URI = "memory://"
RATELIMIT_HEADERS_ENABLED = True
LOGIN_RATE_LIMIT = "20 per minute"

# Links in e-mails point here (the address users reach the service at).
PUBLIC_BASE_URL = "http://127.0.0.1:5000"

# Reports: a failed report is tried again after REPORT_RETRY_SECONDS, doubling each time
# (at most 6 hours apart), REPORT_MAX_ATTEMPTS times in all.
REPORT_RETRY_SECONDS = 300
REPORT_MAX_ATTEMPTS = 5
# Tests only: hold each report run this long before its file is renamed into place.
REPORT_TEST_DELAY_SECONDS = 0

# The scheduler process (`flask scheduler run`): the SQLite leader lease (renewed every
# third of it), how often a standby tries to take over, how often schedules are re-read
# and failed reports retried, and how late a missed fire time is still caught up (once).
SCHEDULER_LEASE_SECONDS = 30
SCHEDULER_POLL_SECONDS = 5
SCHEDULER_SYNC_SECONDS = 30
SCHEDULER_RETRY_SECONDS = 60
SCHEDULER_MISFIRE_GRACE_SECONDS = 31 * 24 * 3600

# Uploaded documents (approval letters) and generated reports live under instance/.
MAX_CONTENT_LENGTH = 12 * 1024 * 1024
UPLOAD_MAX_BYTES = 10 * 1024 * 1024

# API (flask-smorest)
API_TITLE = "trialmgr"
API_VERSION = "v1"
OPENAPI_VERSION = "3.0.3"
OPENAPI_URL_PREFIX = "/api/v1"
OPENAPI_JSON_PATH = "openapi.json"
API_PAGE_SIZE = 100
API_MAX_PAGE_SIZE = 1000
# Every operation needs a bearer token unless it says otherwise (POST /auth/tokens).
API_SPEC_OPTIONS = {"security": [{"bearerAuth": []}]}
