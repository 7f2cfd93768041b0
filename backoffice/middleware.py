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


def _without_nul(query: QueryDict) -> QueryDict:
    clean = QueryDict(mutable=True)
    for key, values in query.lists():
        clean.setlist(key.replace(_NUL, ""), [value.replace(_NUL, "") for value in values])
    clean._mutable = False
    return clean


def _has_nul(query: QueryDict) -> bool:
    return any(_NUL in key or any(_NUL in value for value in values) for key, values in query.lists())


class StripNulFromAdminRequests:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(ADMIN_PREFIX):
            if _NUL in request.path_info:
                raise Http404("No such page.")
            if _has_nul(request.GET):
                request.GET = _without_nul(request.GET)
        return self.get_response(request)
