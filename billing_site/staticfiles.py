"""Static files: hashed and compressed after `collectstatic`, plain names before it.

whitenoise's manifest storage answers 500 on every page that links a static file
("Missing staticfiles manifest entry") when `collectstatic` never ran, e.g. gunicorn
started straight from a checkout. Then this storage gives the files' plain names and
settings turn on WHITENOISE_USE_FINDERS, so whitenoise serves them from the apps'
directories: the docs and the admin work, uncompressed and without long-lived caching,
and a warning says what to run.
"""

from __future__ import annotations

import logging
from typing import Any

from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class StaticFilesStorage(CompressedManifestStaticFilesStorage):  # type: ignore[misc]  # whitenoise is untyped
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.collected = self.read_manifest() is not None
        self._warned = False

    def stored_name(self, name: str) -> str:
        # collectstatic itself never calls this (it hashes through _stored_name), so the
        # warning comes from a server that serves pages, once per process.
        if self.collected:
            return str(super().stored_name(name))
        if not self._warned:
            self._warned = True
            logger.warning(
                "collectstatic has not run (no %s in STATIC_ROOT): static files are served from the "
                "apps' directories, uncompressed; run `manage.py collectstatic` before starting the server",
                self.manifest_name,
            )
        return str(self.clean_name(name))
