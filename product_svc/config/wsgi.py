"""WSGI entry point for gunicorn: `gunicorn product_svc.config.wsgi:application`."""

from common.manage import wsgi_application

application = wsgi_application("product")
