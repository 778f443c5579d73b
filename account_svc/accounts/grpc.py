"""gRPC `auth.AuthService`: introspection of an access token for other services.

Served by `manage.py grpcserve` (settings.GRPC_SERVICERS lists `register`).
"""

from __future__ import annotations

import grpc

from account_svc.accounts import selectors
from common.auth import InvalidTokenError, verify_access_token
from common.errors import abort_grpc
from saga_proto import auth_pb2, auth_pb2_grpc

SERVICE_NAME = "auth.AuthService"


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


def register(server: grpc.Server) -> list[str]:
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(), server)
    return [SERVICE_NAME]
