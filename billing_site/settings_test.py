"""Test settings: real PostgreSQL from DATABASE_URL, fast and quiet."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Stripe test keys (the shape dj-stripe accepts). STRIPE_API_HOST points at a closed port so
# no test can reach the real Stripe; the localstripe fixture (tests/localstripe.py) points
# it at a localstripe server on loopback.
os.environ.setdefault("STRIPE_SECRET_KEY", "sk_test_cirisbillingtests0000000000")
os.environ.setdefault("STRIPE_PUBLISHABLE_KEY", "pk_test_cirisbillingtests0000000000")
os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_cirisbillingtests0000000000")
os.environ.setdefault("STRIPE_API_HOST", "http://127.0.0.1:9")
# The Apple fake's test chain names no OCSP responder (tests/apple.py configures the rest).
os.environ.setdefault("APPLE_STOREKIT_ONLINE_CHECKS", "0")

from billing_site.settings import *  # noqa: F403

# The manifest storage needs collectstatic; tests serve plain static files.
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {**REST_FRAMEWORK, "TEST_REQUEST_DEFAULT_FORMAT": "json"}  # noqa: F405
# Serve static files (the docs' local assets) without collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
