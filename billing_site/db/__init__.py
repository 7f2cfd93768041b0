"""PostgreSQL backend: Django's, with a health check that costs no round trip.

Django's CONN_HEALTH_CHECKS runs `SELECT 1` before the first query of every request that
reuses a persistent connection: one more round trip on each credit check and charge. A
connection that died while idle (PostgreSQL restarted, the backend was terminated, a
proxy dropped it) almost always says so on its socket: the server sends an error and
closes, so the socket turns readable. `is_usable` therefore polls the socket without
waiting and only falls back to Django's `SELECT 1` when something is waiting there. A
connection that dies silently (a cable pulled) fails its next query instead: that request
answers 503 (billing_site.middleware), Django drops the broken connection at the end of
it (`errors_occurred`), and the next request connects afresh.
"""
