# CIRIS Billing: gunicorn on a slim Python, as a non-root user.
#   docker build -t ciris-billing .
#   docker run -p 8000:8000 -e DJANGO_SECRET_KEY=... -e DATABASE_URL=postgres://... ciris-billing
# docker-compose.yml runs it with PostgreSQL and Redis.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GUNICORN_BIND=0.0.0.0:8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/billing-metrics

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
# psycopg[binary] and the other wheels need no compiler.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .

# The metrics directory first: anything that imports prometheus_client with
# PROMETHEUS_MULTIPROC_DIR set needs it to exist. Static files (admin, API docs) are
# collected at build time and served by whitenoise, compressed, with hashed names; the
# key is a placeholder (collectstatic touches no secret and no database), and its
# metrics go nowhere (gunicorn starts with an empty directory anyway).
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin billing \
    && mkdir -p /tmp/billing-metrics \
    && chown billing /tmp/billing-metrics \
    && env -u PROMETHEUS_MULTIPROC_DIR DJANGO_SECRET_KEY=collectstatic-only \
       python manage.py collectstatic --no-input --verbosity 0

USER 10001

EXPOSE 8000

# /health answers 503 while the database is down (see README: Deployment).
# Three failed checks 5 s apart: unhealthy within about 15 s of an outage.
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "billing_site.healthcheck"]

# Behind a TLS proxy, set FORWARDED_ALLOW_IPS to the proxy's address (never *: any client
# could then claim HTTPS with X-Forwarded-Proto).
# gunicorn.conf.py: workers from the CPU count (GUNICORN_WORKERS / WEB_CONCURRENCY override),
# graceful shutdown on SIGTERM (docker stop), JSON access log.
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
