"""A password check as a test's client makes it: loopback, the default limits."""

from app.accounts.authentication import PasswordCheck
from app.accounts.throttle import ThrottlePolicy

CHECK = PasswordCheck(address="127.0.0.1", surface="test", policy=ThrottlePolicy())
