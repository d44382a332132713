"""A stock django-scim2 service for roster's tests, set up as its documentation says: a user
model and a group model with django-scim2's mixins, its URLs under /scim/v2/, and a bearer
token checked before django-scim2's own authentication check.

    python serve.py --port PORT --db FILE --token TOKEN

Serves http://127.0.0.1:PORT/scim/v2/ until killed. Nothing here changes how django-scim2
answers: what it keeps, refuses or leaves out is the library's own behaviour.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    os.environ["ROSTER_TEST_DB"] = args.db
    os.environ["ROSTER_TEST_TOKEN"] = args.token
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "directory.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)
    call_command(
        "runserver",
        f"127.0.0.1:{args.port}",
        use_reloader=False,
        use_threading=True,
        verbosity=0,
    )


if __name__ == "__main__":
    main()
