"""The bearer token: a request that carries it acts as the service account."""
import hmac
import os



class ServiceAccount:
    """Whoever holds the token; not a user of the directory."""

    is_authenticated = True
    is_active = True


class BearerToken:
    def __init__(self, get_response):
        self.get_response = get_response
        self.token = os.environ["ROSTER_TEST_TOKEN"]

    def __call__(self, request):
        given = request.headers.get("Authorization", "")
        if given.startswith("Bearer ") and hmac.compare_digest(given[7:], self.token):
            request.user = ServiceAccount()
        return self.get_response(request)
