"""WSGI entry point for gunicorn: `gunicorn account_svc.config.wsgi:application`."""

from common.manage import wsgi_application

application = wsgi_application("account")
