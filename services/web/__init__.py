"""The one-screen web frontend: a Starlette process that calls the hub (and kitchen, for the public profile)
over gRPC with the signed-in person's own bearer token, as a storefront calls its backends. See
docs/services/web.md."""
