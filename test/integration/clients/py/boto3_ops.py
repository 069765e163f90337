"""boto3 operations against the orchestrator, one per invocation, driven by boto3.test.ts.

Usage: python3 boto3_ops.py OP [ARGS...]; endpoint, bucket and keys come from S3O_ENDPOINT, S3O_BUCKET,
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Prints one JSON object on stdout; any exception exits non-zero
with its traceback on stderr (botocore's error code and message included).
"""
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MIB = 1024 * 1024
ENDPOINT = os.environ["S3O_ENDPOINT"]
BUCKET = os.environ["S3O_BUCKET"]


def client(signature_version=None):
    # Path style and us-east-1 as the docs show; retries off so a server error surfaces instead of hiding.
    extra = {"signature_version": signature_version} if signature_version else {}
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"},
                 max_pool_connections=32, **extra)
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", config=cfg)


def transfer_config():
    return TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)


def op_versions():
    return {"boto3": boto3.__version__, "botocore": botocore.__version__}


def op_upload(path, key):
    s3 = client()
    s3.upload_file(path, BUCKET, key, Config=transfer_config())
    head = s3.head_object(Bucket=BUCKET, Key=key)
    return {"etag": head["ETag"], "size": head["ContentLength"]}


def op_download(key, path):
    client().download_file(BUCKET, key, path, Config=transfer_config())
    return {"size": os.path.getsize(path)}


def op_put_many(prefix, count):
    s3 = client()
    count = int(count)

    def put(i):
        s3.put_object(Bucket=BUCKET, Key="%s%05d" % (prefix, i), Body=b"k%d" % i)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, range(count)))
    return {"put": count}


def op_list(prefix, page_size):
    pages = client().get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=prefix, PaginationConfig={"PageSize": int(page_size)})
    keys, sizes = [], []
    for page in pages:
        sizes.append(page["KeyCount"])
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return {"keys": keys, "pages": sizes}


def op_delete_prefix(prefix):
    s3 = client()
    deleted, errors = 0, []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if not objs:
            continue
        res = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": objs, "Quiet": False})
        deleted += len(res.get("Deleted", []))
        errors.extend(res.get("Errors", []))
    return {"deleted": deleted, "errors": errors}


def op_put_get(key, text):
    s3 = client()
    s3.put_object(Bucket=BUCKET, Key=key, Body=text.encode())
    return {"body": s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()}


def op_presign(key, signature_version):
    # botocore presigns with SigV2 unless the client is configured with signature_version "s3v4".
    sv = None if signature_version == "default" else signature_version
    url = client(sv).generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300)
    return {"url": url}


OPS = {"presign": op_presign, "versions": op_versions, "upload": op_upload, "download": op_download, "put-many": op_put_many,
       "list": op_list, "delete-prefix": op_delete_prefix, "put-get": op_put_get}

if __name__ == "__main__":
    print(json.dumps(OPS[sys.argv[1]](*sys.argv[2:])))
