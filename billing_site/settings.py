"""Settings for CIRIS Billing, read from the environment (django-environ).

Every environment variable named here is part of the operator contract (docs/configuration.md):
change a name and deployment scripts break. Defaults are safe for `make run`; production refuses to
start without a secret key.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env (written by `make run`, never committed) configures development runs, so
# `manage.py create_api_key` works in a plain shell. Real environment variables win.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key-never-use-in-production")
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
    if not SECRET_KEY:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off (set it, or set DJANGO_DEBUG=1 for development)."
        )

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
# The admin behind an HTTPS proxy posts forms from these origins, e.g. https://billing.example.com.
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- Security (SecurityMiddleware's headers on every response) ---
# TLS ends at the load balancer: trust its X-Forwarded-Proto only when told it exists.
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "djstripe",
    "accounts",
    "ledger",
    "charges",
    "purchases",
    "webhooks",
    "usage",
    "backoffice",
    "tools",
    "stores",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Request id, metrics, body-size limit, 503 for database outages, JSON error answers.
    "billing_site.middleware.ApiEdgeMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "backoffice.middleware.StripNulFromAdminRequests",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "billing_site.urls"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "billing_site.wsgi.application"

# --- Database -------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DB_STATEMENT_TIMEOUT_MS = env.int("DB_STATEMENT_TIMEOUT_MS", default=5000)
DB_CONNECT_TIMEOUT_S = env.int("DB_CONNECT_TIMEOUT_S", default=3)
# DATABASE_URL points at PgBouncer (transaction pooling): see the PostgreSQL branch below.
DB_PGBOUNCER = env.bool("DB_PGBOUNCER", default=False)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite has no row locks: IMMEDIATE transactions take the write lock at BEGIN, so
    # two charges for one account serialize instead of both reading the old balance.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": DB_STATEMENT_TIMEOUT_MS / 1000}
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    # A dead database must answer 503 quickly, never hang a worker.
    _db_options["connect_timeout"] = DB_CONNECT_TIMEOUT_S
    if DB_PGBOUNCER:
        # PgBouncer in transaction pooling: each transaction may run on another server
        # connection, so nothing may live in a session. No server-side (named) cursors; no
        # prepared statements (Django's default client-side binding, prepare_threshold None);
        # no startup `options` (PgBouncer refuses them): the timeouts that the `else` branch
        # passes there are set on the server side instead, by PgBouncer's connect_query or
        # ALTER ROLE ... SET (README: Deployment).
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        for _name in ("pool", "server_side_binding", "prepare_threshold", "assume_role", "options"):
            if _db_options.get(_name) not in (None, False):
                raise ImproperlyConfigured(f"DB_PGBOUNCER=1: the database option {_name!r} needs a session; remove it.")
    else:
        # A stuck lock must answer 503 quickly too.
        _db_options["options"] = (
            f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS} -c lock_timeout={DB_STATEMENT_TIMEOUT_MS}"
            # A worker killed mid-transaction must not leave its row locks behind for long.
            f" -c idle_in_transaction_session_timeout={DB_STATEMENT_TIMEOUT_MS * 2}"
        )
    # Persistent connections (to PostgreSQL, or to PgBouncer), checked before each request
    # reuses one (see billing_site.db: the check is a local socket poll, not a SELECT 1).
    DATABASES["default"]["ENGINE"] = "billing_site.db"
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
                # A cache outage degrades to database lookups; it never fails a charge.
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    DJANGO_REDIS_IGNORE_EXCEPTIONS = True
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "billing"}}

# --- Auth, i18n, static ---------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "billing_site.staticfiles.StaticFilesStorage"
    },
}
# Before `collectstatic` ran (no manifest), whitenoise serves the apps' own files instead of
# 500s on every page with a static link (see billing_site.staticfiles).
WHITENOISE_USE_FINDERS = DEBUG or not (STATIC_ROOT / "staticfiles.json").is_file()

# Bodies over 64 KiB are refused with 413 (see billing_site.middleware).
MAX_REQUEST_BODY_BYTES = 64 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# --- Billing --------------------------------------------------------------------------
BILLING_FREE_USES = env.int("BILLING_FREE_USES", default=3)
BILLING_USE_PRICE_MINOR = env.int("BILLING_USE_PRICE_MINOR", default=100)
BILLING_PACK_PRICE_MINOR = env.int("BILLING_PACK_PRICE_MINOR", default=500)
BILLING_PACK_USES = env.int("BILLING_PACK_USES", default=20)
BILLING_CURRENCY = env.str("BILLING_CURRENCY", default="USD").upper()
# Free uses per account per UTC day, spent before the others (0: off, the guide's behaviour).
BILLING_DAILY_FREE_USES = env.int("BILLING_DAILY_FREE_USES", default=0)
if (
    BILLING_USE_PRICE_MINOR <= 0
    or BILLING_PACK_USES <= 0
    or BILLING_PACK_PRICE_MINOR <= 0
    or BILLING_FREE_USES < 0
    or not 0 <= BILLING_DAILY_FREE_USES <= 10**6
):
    raise ImproperlyConfigured(
        "BILLING_* amounts must be positive (BILLING_FREE_USES and BILLING_DAILY_FREE_USES may be 0)."
    )
# Suspend an account at once when a chargeback finds its credit already spent (off: flag only).
BILLING_SUSPEND_ON_CHARGEBACK_SHORTFALL = env.bool("BILLING_SUSPEND_ON_CHARGEBACK_SHORTFALL", default=False)

# --- API keys and REST framework ------------------------------------------------------
API_KEYS_REQUIRED = env.bool("API_KEYS_REQUIRED", default=True)
# How long a verified key stays cached. Revocation deletes the cache entry at once; with
# a per-process cache (no REDIS_URL) other processes see it within this many seconds.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=30)

# --- User ID tokens (the CIRIS agent on phones and desktops: docs/mobile.md) ---------------
# Empty: sign-in with that provider is refused (401). Android apps list the web client id.
GOOGLE_OAUTH_CLIENT_IDS = env.list("GOOGLE_OAUTH_CLIENT_IDS", default=[])
GOOGLE_OAUTH_JWKS_URL = env.str("GOOGLE_OAUTH_JWKS_URL", default="https://www.googleapis.com/oauth2/v3/certs")
APPLE_OAUTH_CLIENT_IDS = env.list("APPLE_OAUTH_CLIENT_IDS", default=[])
APPLE_OAUTH_JWKS_URL = env.str("APPLE_OAUTH_JWKS_URL", default="https://appleid.apple.com/auth/keys")
# How long each process keeps a provider's key set, and the least time between two refetches
# that an unknown key id triggers (so forged kids cannot make us hammer the provider).
ID_TOKEN_JWKS_CACHE_SECONDS = env.int("ID_TOKEN_JWKS_CACHE_SECONDS", default=3600)
ID_TOKEN_JWKS_COOLDOWN_SECONDS = env.int("ID_TOKEN_JWKS_COOLDOWN_SECONDS", default=30)
# A revocation is seen at once with a shared cache (REDIS_URL); with a per-process cache,
# other processes see it within this many seconds.
REVOKED_TOKEN_CACHE_SECONDS = env.int("REVOKED_TOKEN_CACHE_SECONDS", default=60)

RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
RATE_LIMIT_PER_KEY = env.str("RATE_LIMIT_PER_KEY", default="6000/min")
RATE_LIMIT_PER_USER = env.str("RATE_LIMIT_PER_USER", default="600/min")
# Failed API-key attempts per client address before its further failures answer 429.
RATE_LIMIT_AUTH_FAILURES = env.str("RATE_LIMIT_AUTH_FAILURES", default="30/min")
# With REDIS_URL each process sends its counts to Redis after this many requests or this
# many milliseconds, whichever first: no round trip per request. The price is accuracy
# across processes: at most limit + 2 x processes x batch per window (billing_site.ratelimit).
RATE_LIMIT_BATCH = env.int("RATE_LIMIT_BATCH", default=20)
RATE_LIMIT_FLUSH_MS = env.int("RATE_LIMIT_FLUSH_MS", default=1000)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.auth.HasApiScope"],
    "DEFAULT_PARSER_CLASSES": ["billing_site.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON is the only representation: no per-request negotiation over Accept headers.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "billing_site.api.JSONOnlyNegotiation",
    "EXCEPTION_HANDLER": "billing_site.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # ASCII-escaped JSON: an error that echoes a client's lone surrogate still renders.
    "UNICODE_JSON": False,
    # One class for both scopes (per key, per end user), on counters batched to Redis
    # (billing_site.ratelimit). It reads RATE_LIMIT_* at request time, so
    # RATE_LIMIT_ENABLED=0 makes it a no-op.
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.BillingRateThrottle"],
    # Trusted proxies in front of the service: the client address for rate limits is then
    # taken from X-Forwarded-For that many hops from the right; 0 = the socket peer.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "CIRIS Billing API",
    "DESCRIPTION": (
        "Credit billing for AI agents: check credit before an interaction, charge after it. "
        "New users get free uses, then buy credit packs through Stripe. "
        'Errors are JSON `{"detail": "...", "code": "..."}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"PurchaseStatusEnum": "purchases.models.PurchaseStatus"},
}

# --- Google Play (stores app) ---------------------------------------------------------
# Unset service account: Play verification answers 503 until configured.
GOOGLE_PLAY_SERVICE_ACCOUNT_FILE = env.str("GOOGLE_PLAY_SERVICE_ACCOUNT_FILE", default="")
# The API root google-api-python-client takes as api_endpoint (a local fake in tests).
GOOGLE_PLAY_API_URL = env.str("GOOGLE_PLAY_API_URL", default="https://androidpublisher.googleapis.com/")
GOOGLE_PLAY_PACKAGE_NAMES = env.list("GOOGLE_PLAY_PACKAGE_NAMES", default=[])
GOOGLE_PLAY_TIMEOUT_S = env.float("GOOGLE_PLAY_TIMEOUT_S", default=10.0)
# The Pub/Sub push subscription's OIDC token: its audience and its service account.
GOOGLE_PLAY_PUBSUB_AUDIENCE = env.str("GOOGLE_PLAY_PUBSUB_AUDIENCE", default="")
GOOGLE_PLAY_PUBSUB_SERVICE_ACCOUNT = env.str("GOOGLE_PLAY_PUBSUB_SERVICE_ACCOUNT", default="")

# --- App Store (stores app) -----------------------------------------------------------
# Unset key or roots: App Store verification answers 503 until configured.
APPLE_STOREKIT_KEY_ID = env.str("APPLE_STOREKIT_KEY_ID", default="")
APPLE_STOREKIT_ISSUER_ID = env.str("APPLE_STOREKIT_ISSUER_ID", default="")
APPLE_STOREKIT_PRIVATE_KEY_FILE = env.str("APPLE_STOREKIT_PRIVATE_KEY_FILE", default="")
APPLE_STOREKIT_BUNDLE_ID = env.str("APPLE_STOREKIT_BUNDLE_ID", default="")
APPLE_STOREKIT_APP_APPLE_ID = env.int("APPLE_STOREKIT_APP_APPLE_ID", default=None)
APPLE_STOREKIT_ENVIRONMENT = env.str("APPLE_STOREKIT_ENVIRONMENT", default="Production")
if APPLE_STOREKIT_ENVIRONMENT not in ("Production", "Sandbox"):
    raise ImproperlyConfigured("APPLE_STOREKIT_ENVIRONMENT must be Production or Sandbox.")
# Apple's Root CA - G3 (DER or PEM files, comma-separated): the library does not ship it.
APPLE_STOREKIT_ROOT_CERTIFICATES = env.list("APPLE_STOREKIT_ROOT_CERTIFICATES", default=[])
# Replaces Apple's API host (a local fake): Production at the URL, Sandbox under /sandbox.
APPLE_STOREKIT_API_URL = env.str("APPLE_STOREKIT_API_URL", default="")
# Production first; look a transaction up in the Sandbox when Production does not know it
# (App Review buys there, and so can TestFlight testers, for free): off unless asked for.
APPLE_STOREKIT_SANDBOX_FALLBACK = env.bool("APPLE_STOREKIT_SANDBOX_FALLBACK", default=False)
# Revocation (OCSP) checks of Apple's chain, a call to Apple per new chain: on, as Apple
# advises; off only for a local fake, whose test certificates name no OCSP responder.
APPLE_STOREKIT_ONLINE_CHECKS = env.bool("APPLE_STOREKIT_ONLINE_CHECKS", default=True)

# --- Stripe (dj-stripe) ---------------------------------------------------------------
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# The one dj-stripe WebhookEndpoint row whose deliveries are processed (the row
# `manage.py setup_stripe_webhook` makes); any other endpoint's URL answers 404.
STRIPE_WEBHOOK_ENDPOINT_ID = env.str("STRIPE_WEBHOOK_ENDPOINT_ID", default="ciris_billing_webhook")
_stripe_api_host = env.str("STRIPE_API_HOST", default="")
if _stripe_api_host:
    # dj-stripe points the stripe library's global api_base at this host when the
    # setting exists at all, so define it only when configured (localstripe in tests).
    STRIPE_API_HOST = _stripe_api_host
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith("sk_live_")
if STRIPE_LIVE_MODE:
    STRIPE_LIVE_SECRET_KEY = STRIPE_SECRET_KEY
else:
    STRIPE_TEST_SECRET_KEY = STRIPE_SECRET_KEY
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
# Verified deliveries go to our handler (store the Event, move the money), not dj-stripe's receivers.
DJSTRIPE_WEBHOOK_EVENT_CALLBACK = "webhooks.handlers.process_delivery"

# --- Logging --------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
# One JSON object per line; every line made while a request runs carries its request_id
# (X-Request-ID, see billing_site.request_context). Extra fields given with `extra=` appear
# as keys (account_id, amount_minor, outcome, ...). Written by a background thread
# (billing_site.logs).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "billing_site.request_context.RequestIdLogFilter"}},
    "formatters": {
        "json": {"()": "billing_site.logs.json_formatter"},
        "console": {"format": "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s]: %(message)s"},
    },
    "handlers": {
        "default": {
            "()": "billing_site.logs.QueuedStreamHandler",
            "filters": ["request_id"],  # on the request's thread, where the id is known
            "formatter": "json" if LOG_FORMAT == "json" else "console",
        }
    },
    "root": {"handlers": ["default"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.db.backends": {"level": "WARNING"},
    },
}

OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

SILENCED_SYSTEM_CHECKS = ["djstripe.W002"]
