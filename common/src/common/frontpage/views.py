"""The front page and the admin index: plain HTML, served by whichever service the edge
routes `/` and `/admin/` to (deploy/local/render.py, docs/adr/0020)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from common.errors import ApplicationError, ErrorCode, json_error_response
from common.frontpage.links import all_services, tool_links

View = Callable[[HttpRequest], HttpResponse]
READ_METHODS = ("GET", "HEAD")


def read_only(view: View) -> View:
    """GET and HEAD only; any other method answers 405 in the API's JSON error shape
    (csrf-exempt, so that a POST meets this refusal and not the CSRF page)."""

    @csrf_exempt
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method not in READ_METHODS:
            error = ApplicationError(
                ErrorCode.METHOD_NOT_ALLOWED,
                f'Method "{request.method}" not allowed.',
            )
            response = json_error_response(error)
            response["Allow"] = ", ".join(READ_METHODS)
            return response
        return view(request)

    wrapper.__doc__ = view.__doc__
    return wrapper


@read_only
def front_page(request: HttpRequest) -> HttpResponse:
    """`/`: every admin, every service's API docs and health, the operators' tools."""
    context = {"services": all_services(), "tools": tool_links(), "admins_only": False}
    return render(request, "frontpage/index.html", context)


@read_only
def admin_index(request: HttpRequest) -> HttpResponse:
    """`/admin/`: the six admins (each service has its own, under /admin/<service>/)."""
    context = {"services": all_services(), "tools": [], "admins_only": True}
    return render(request, "frontpage/index.html", context)
