"""WSGI entry point for gunicorn: `gunicorn order_svc.config.wsgi:application`."""

from common.manage import wsgi_application

application = wsgi_application("order")
