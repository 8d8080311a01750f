"""The operator principal, as the command line uses it: test fixtures that go through
the checked services (deploy tokens, group access tokens) act as it."""

from app.accounts.principal import Principal

OPERATOR = Principal.operator()
