#!/usr/bin/env python3
"""The reference signature of cli/src/auth.rs's test: an import request as `leads --auth iam`
sends it to an API Gateway stage (POST, CSV body, query string, a session token), signed by
botocore's SigV4Auth for the service `execute-api` at a fixed time with AWS's documentation
example keys, so the Rust signer (aws-sigv4) is checked against an independent implementation.

    python3 -m pip install botocore
    python3 scripts/cli_sigv4_reference.py

Paste the printed value into the test. The clock is frozen as in rds_token_reference.py.
"""
import datetime
import os

os.environ["BOTO_DISABLE_CRT"] = "true"  # before botocore is imported

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

URL = (
    "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/leads/import"
    "?importId=0123456789abcdef-p0001&createdBy=ann&delimiter=%2C"
)
BODY = b"email,fullName\nann@example.com,Ann\n"
CREDENTIALS = Credentials(
    "AKIDEXAMPLE",
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "IQoJb3JpZ2luX2VjEXAMPLE/session+token==",
)

botocore.auth.get_current_datetime = lambda: datetime.datetime(2024, 1, 1, 0, 0, 0)
request = AWSRequest(method="POST", url=URL, data=BODY)
botocore.auth.SigV4Auth(CREDENTIALS, "execute-api", "eu-west-1").add_auth(request)
print(request.headers["Authorization"])
