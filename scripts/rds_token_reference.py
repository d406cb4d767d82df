#!/usr/bin/env python3
"""Reference values for the tests in shared/src/aws/db_auth/ (rds_token.rs, secrets_manager.rs)
and shared/src/aws/cache_auth/ (elasticache_token.rs).

Produces, with botocore (the code behind `aws rds generate-db-auth-token`), the RDS IAM auth
token for fixed credentials at a fixed signing time, so the Rust signer can be compared byte
for byte; and the SigV4 Authorization header of the Secrets Manager GetSecretValue request
that db_auth/secrets_manager.rs sends (same headers and body), signed by botocore's SigV4Auth.

ElastiCache IAM auth tokens: botocore has no `generate_..._auth_token` for ElastiCache (nor
has the CLI), so the token is made as AWS's documentation makes it (its Java example, and
the ElastiCache developer toolkit): `GET http://{cache name}/?Action=connect&User={user}`
(plus `&ResourceType=ServerlessCache` for a serverless cache), SigV4 query-presigned for the
service `elasticache`, 900 s, without the `http://`. The presigning here is botocore's own
SigV4QueryAuth, the class `generate_db_auth_token` presigns with, so the reference is
independent of the Rust signer (aws-sigv4) it checks.

    python3 -m pip install botocore
    python3 scripts/rds_token_reference.py

The time is frozen by replacing `botocore.auth.get_current_datetime`, the one clock that
SigV4QueryAuth reads. botocore's pure-Python signer is forced (BOTO_DISABLE_CRT=true): with
awscrt installed (aws-sam-cli brings it) botocore would presign through the CRT, which reads
its own clock and orders the query parameters differently (the signature over the sorted
canonical query is the same either way). Paste the printed lines into the test.
"""
import datetime
import os

os.environ["BOTO_DISABLE_CRT"] = "true"  # before botocore is imported

import json

import botocore.auth
import botocore.session
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# Fixed inputs, mirrored by the Rust test (AWS's documentation example keys, not real ones).
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE/session+token=="
REGION = "us-east-1"
HOST = "leads.proxy-abcdefghijkl.us-east-1.rds.amazonaws.com"
PORT = 5432
USER = "lead_import"
# 2024-01-01T00:00:00Z
SIGNING_TIME = datetime.datetime(2024, 1, 1, 0, 0, 0)

SECRET_ID = "arn:aws:secretsmanager:us-east-1:123456789012:secret:leads/db-AbCdEf"

CACHE_USER = "lead-import-0a1b2c3d4e5f"

ELASTICACHE_CASES = [
    # (name, cache name, serverless, user, session token)
    ("REFERENCE_ELASTICACHE_TOKEN", "lead-import-cache", False, CACHE_USER, None),
    ("REFERENCE_ELASTICACHE_TOKEN_WITH_SESSION", "lead-import-cache", False, CACHE_USER, SESSION_TOKEN),
    ("REFERENCE_ELASTICACHE_SERVERLESS_TOKEN", "lead-import-0a1b2c3d4e5f", True, CACHE_USER, SESSION_TOKEN),
]

CASES = [
    # (name, user, session token)
    ("REFERENCE_TOKEN", USER, None),
    ("REFERENCE_TOKEN_WITH_SESSION", USER, SESSION_TOKEN),
    ("REFERENCE_TOKEN_ODD_USER", "odd user+1@x", None),
]


def token(user, session_token):
    session = botocore.session.Session()
    session.set_credentials(ACCESS_KEY, SECRET_KEY, session_token)
    client = session.create_client("rds", region_name=REGION)
    return client.generate_db_auth_token(DBHostname=HOST, Port=PORT, DBUsername=user, Region=REGION)


def get_secret_value_authorization():
    # The request of secrets_manager.rs's get_secret_value_request: JSON 1.1 protocol, compact body.
    body = json.dumps({"SecretId": SECRET_ID}, separators=(",", ":"))
    request = AWSRequest(
        method="POST",
        url=f"https://secretsmanager.{REGION}.amazonaws.com/",
        data=body.encode(),
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "secretsmanager.GetSecretValue"},
    )
    credentials = Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
    botocore.auth.SigV4Auth(credentials, "secretsmanager", REGION).add_auth(request)
    return request.headers["Authorization"]


def elasticache_token(cache_name, serverless, user, session_token):
    params = {"Action": "connect", "User": user}
    if serverless:
        params["ResourceType"] = "ServerlessCache"
    request = AWSRequest(method="GET", url=f"http://{cache_name}/", params=params)
    credentials = Credentials(ACCESS_KEY, SECRET_KEY, session_token)
    botocore.auth.SigV4QueryAuth(credentials, "elasticache", REGION, expires=900).add_auth(request)
    return request.url[len("http://"):]


def main():
    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda *args, **kwargs: SIGNING_TIME
    assert not botocore.auth.HAS_CRT
    try:
        for name, user, session_token in CASES:
            print(f'const {name}: &str = "{token(user, session_token)}";')
        print(f'const REFERENCE_GET_SECRET_VALUE_AUTHORIZATION: &str = "{get_secret_value_authorization()}";')
        for name, cache_name, serverless, user, session_token in ELASTICACHE_CASES:
            print(f'const {name}: &str = "{elasticache_token(cache_name, serverless, user, session_token)}";')
    finally:
        botocore.auth.get_current_datetime = original


if __name__ == "__main__":
    main()
