"""Entry points shared by the services' manage.py and wsgi.py."""

from __future__ import annotations

import os
import sys

from django.core.handlers.wsgi import WSGIHandler

from common.topology import SERVICES


def use_settings(service: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SERVICES[service].settings_module)


def main(service: str) -> None:
    use_settings(service)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


def wsgi_application(service: str) -> WSGIHandler:
    use_settings(service)
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()
