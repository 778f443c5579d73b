"""gRPC `auth.AuthService`: introspection of an access token for other services, and
the staff identity every service's admin logs in with (docs/adr/0019).

Served by `manage.py grpcserve` (settings.GRPC_SERVICERS lists `register`).
"""

from __future__ import annotations

import logging

import grpc

from account_svc.accounts import selectors, services
from account_svc.accounts.models import Customer
from common.auth import InvalidTokenError, verify_access_token
from common.errors import ApplicationError, ErrorCode, abort_grpc
from common.grpc.servicer import answer
from saga_proto import auth_pb2, auth_pb2_grpc

SERVICE_NAME = "auth.AuthService"

logger = logging.getLogger(__name__)


def _identity(customer: Customer) -> auth_pb2.AdminIdentity:
    return auth_pb2.AdminIdentity(
        customer_id=customer.pk,
        email=customer.email,
        first_name=customer.first_name,
        last_name=customer.last_name,
        is_active=customer.is_active,
        is_staff=customer.is_staff,
        is_superuser=customer.is_superuser,
    )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def Auth(
        self, request: auth_pb2.AuthRequest, context: grpc.ServicerContext
    ) -> auth_pb2.AuthResponse:
        """A genuine access token answers its customer id and whether it expired;
        anything else, or a customer no longer active, answers UNAUTHENTICATED."""
        try:
            claims = verify_access_token(request.access_token, allow_expired=True)
        except InvalidTokenError as error:
            abort_grpc(context, error)
        if selectors.customer_get_active(customer_id=claims.customer_id) is None:
            abort_grpc(context, InvalidTokenError("The token's customer is not active."))
        return auth_pb2.AuthResponse(customer_id=claims.customer_id, expired=claims.expired)

    def AdminLogin(
        self, request: auth_pb2.AdminLoginRequest, context: grpc.ServicerContext
    ) -> auth_pb2.AdminIdentity:
        """The staff account the email and password name (services.staff_login)."""

        def call() -> auth_pb2.AdminIdentity:
            customer = services.staff_login(
                email=request.email,
                password=request.password,
                client_ip=request.client_address or None,
            )
            return _identity(customer)

        return answer(context, call, service=SERVICE_NAME, logger=logger)

    def AdminRoles(
        self, request: auth_pb2.AdminRolesRequest, context: grpc.ServicerContext
    ) -> auth_pb2.AdminIdentity:
        """The account's current roles, whatever they are; NOT_FOUND when it is gone."""

        def call() -> auth_pb2.AdminIdentity:
            customer = selectors.customer_get(customer_id=request.customer_id)
            if customer is None:
                raise ApplicationError(ErrorCode.NOT_FOUND, "No such account.")
            return _identity(customer)

        return answer(context, call, service=SERVICE_NAME, logger=logger)


def register(server: grpc.Server) -> list[str]:
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(), server)
    return [SERVICE_NAME]
