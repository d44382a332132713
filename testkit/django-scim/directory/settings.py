import os

SECRET_KEY = "roster-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_scim",
    "directory",
]
MIDDLEWARE = [
    "directory.auth.BearerToken",
    "django_scim.middleware.SCIMAuthCheckMiddleware",
]
ROOT_URLCONF = "directory.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["ROSTER_TEST_DB"],
    }
}
AUTH_USER_MODEL = "directory.User"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
SCIM_SERVICE_PROVIDER = {
    "NETLOC": "127.0.0.1",
    "SCHEME": "http",
    "GROUP_MODEL": "directory.models.Group",
    "AUTHENTICATION_SCHEMES": [
        {
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication scheme using the OAuth Bearer Token Standard",
        }
    ],
}
LOGGING = {"version": 1, "disable_existing_loggers": True}
