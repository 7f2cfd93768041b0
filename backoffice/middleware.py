"""NUL bytes never reach the database from an admin page.

PostgreSQL refuses NUL in text parameters (psycopg raises before sending the query), so a
NUL in any admin filter, search or object id was a 500. One mechanism for every admin
page, ours and any app's: on /admin/ paths NUL is stripped from the query string's keys and
values (the page then answers for what is left, like any other odd value), and a path with
NUL in it is a 404. Form fields need nothing: Django's CharField refuses NUL already.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse, QueryDict

ADMIN_PREFIX = "/admin/"
_NUL = "\x00"


class StripNulFromAdminRequests:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(ADMIN_PREFIX):
            if _NUL in request.path_info:
                raise Http404("No such page.")
            query = request.GET.urlencode()
            if "%00" in query:  # encoded, a NUL is "%00" and nothing else is ("%" is "%25")
                request.GET = QueryDict(query.replace("%00", ""))
        return self.get_response(request)
