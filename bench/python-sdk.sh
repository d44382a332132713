#!/usr/bin/env bash
# roster's enumeration next to what admins script instead: listing all users of the same
# fake-graph tenant with Microsoft's official Python Graph SDK (msgraph-sdk), in one run.
# The SDK is installed in its own venv under the work directory; its base URL points at the fake.
# roster reads the whole tenant (users, groups, members, recycle bins); the SDK
# lists users only.
#
#   bench/python-sdk.sh [--users N] [--groups M] [--work DIR]
set -euo pipefail
users=100000 groups=10000 work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --groups) groups=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
cargo build --release -q -p roster
roster=$PWD/target/release/roster
work=${work:-$(mktemp -d)}
mkdir -p "$work"
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q 'msgraph-sdk>=1,<2'
fi
[ -f "$work/tenant-$users.json" ] || "$roster" fixture generate --users "$users" --groups "$groups" --seed 1 \
  --out "$work/tenant-$users.json" 2>/dev/null
secret=bench-secret-$$
"$roster" fake-graph --tenant "$work/tenant-$users.json" --client-secret "$secret" > "$work/fake.url" 2>/dev/null &
fake=$!
trap 'kill $fake 2>/dev/null' EXIT
for _ in $(seq 100); do [ -s "$work/fake.url" ] && break; sleep 0.1; done
url=$(head -n 1 "$work/fake.url")
tenant=7d3c2b1a-0f9e-4d8c-8b7a-6f5e4d3c2b1a

cat > "$work/list_users.py" <<'PY'
"""List every user of a Graph tenant with the official SDK, pages of 999, as an admin script would."""
import asyncio, json, sys, time, urllib.parse, urllib.request

from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator, BaseBearerTokenAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

base, tenant, secret = sys.argv[1], sys.argv[2], sys.argv[3]
host = urllib.parse.urlparse(base).hostname

class Token(AccessTokenProvider):
    def __init__(self, token):
        self.token = token
    async def get_authorization_token(self, uri, additional_authentication_context=None):
        return self.token
    def get_allowed_hosts_validator(self):
        return AllowedHostsValidator([host])

async def main():
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "bench", "client_secret": secret,
                                   "scope": base + "/.default"}).encode()
    token = json.load(urllib.request.urlopen(f"{base}/{tenant}/oauth2/v2.0/token", form))["access_token"]
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(Token(token)))
    adapter.base_url = base + "/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    start = time.perf_counter()
    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        select=["id", "displayName", "userPrincipalName", "mail", "givenName", "surname", "department", "jobTitle",
                "userType", "accountEnabled"], top=999)
    page = await client.users.get(request_configuration=RequestConfiguration(query_parameters=query))
    users = len(page.value)
    while page.odata_next_link:
        page = await client.users.with_url(page.odata_next_link).get()
        users += len(page.value)
    print(json.dumps({"users": users, "seconds": time.perf_counter() - start}))

asyncio.run(main())
PY

sdk=$("$work/venv/bin/python" "$work/list_users.py" "$url" "$tenant" "$secret")
export ROSTER_STORE=$work/sdk-store ROSTER_CLIENT_SECRET=$secret
rm -rf "$ROSTER_STORE"
"$roster" org add live --tenant "$tenant" --auth client-secret --client-id 0b9f8e7d-6c5b-4a39-8281-706f5e4d3c2b \
  --graph-url "$url" --login-url "$url" >/dev/null
start=$(date +%s.%N)
"$roster" record live --out "$work/recorded.json" 2> "$work/record.err"
end=$(date +%s.%N)
python3 - "$sdk" "$start" "$end" "$(grep -o '[0-9]* users, [0-9]* groups' "$work/record.err")" <<'PY'
import json, sys
sdk = json.loads(sys.argv[1])
roster = float(sys.argv[3]) - float(sys.argv[2])
print(f"msgraph-sdk (Python): {sdk['users']} users listed in {sdk['seconds']:.2f} s")
print(f"roster: whole tenant ({sys.argv[4]}, members, recycle bins) read and written as a fixture in {roster:.2f} s")
print(f"ratio: roster is {sdk['seconds'] / roster:.1f}x faster while reading more (target >= 10x)")
PY
