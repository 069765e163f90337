"""Reads objects with boto3 and reports exactly what the reader got, for the response-framing tests.

Usage: python3 boto3_get.py KEY [RANGE|-] [PART|-]; endpoint, bucket and keys come from S3O_ENDPOINT, S3O_BUCKET,
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Prints one JSON object: {"ok": true, "length", "sha256",
"content_length"} when get_object and Body.read() both returned (what an application would store), or
{"ok": false, "error", "code", "status", "message"} when boto3 raised. Retries are off, so what the
server answered is what is reported.
"""
import hashlib
import json
import os
import sys

import boto3
import botocore
from botocore.config import Config


def main(key, rng="-", part="-"):
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"},
                 read_timeout=30, connect_timeout=10)
    s3 = boto3.client("s3", endpoint_url=os.environ["S3O_ENDPOINT"], region_name="us-east-1", config=cfg)
    params = {"Bucket": os.environ["S3O_BUCKET"], "Key": key}
    if rng != "-":
        params["Range"] = rng
    if part != "-":
        params["PartNumber"] = int(part)
    try:
        res = s3.get_object(**params)
        body = res["Body"].read()
        return {"ok": True, "length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                "content_length": res.get("ContentLength"), "boto3": boto3.__version__}
    except botocore.exceptions.ClientError as e:
        err = e.response.get("Error", {})
        return {"ok": False, "error": type(e).__name__, "code": err.get("Code"), "message": err.get("Message"),
                "status": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"), "boto3": boto3.__version__}
    except Exception as e:  # noqa: BLE001 - any failure to read is what the test wants to see
        return {"ok": False, "error": type(e).__name__, "message": str(e), "boto3": boto3.__version__}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
