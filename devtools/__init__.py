"""Local stand-ins for outside services (Google, Apple) used by tests and walk-throughs.

Nothing here is imported by the running service; every fake listens on 127.0.0.1 only.
"""
