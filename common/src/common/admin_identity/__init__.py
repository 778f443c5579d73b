"""One identity for every service's Django admin (docs/adr/0019).

A staff or superuser account of the account service logs into each of the six admins
with its email and password. The account service checks them (gRPC
`auth.AuthService/AdminLogin`, throttled as its API's login is) and answers the roles;
each other service keeps a shadow user (no usable password) that mirrors them, and asks
again on every admin request (`AdminRoles`), so a revoked role ends access at once.

- `identity`: what the account service answers, and its refusals, by gRPC;
- `backends`: `AccountServiceBackend` (login and per-request roles, in the five
  services whose users are shadows), `StaffViewsBackend` (staff may view, every
  service);
- `forms`: the admin login form, which tells a throttled login and an unreachable
  account service apart from wrong credentials;
- `middleware`: an admin page whose roles cannot be checked answers 503, not 500.
"""
