#!/usr/bin/env python3
"""S3 request signing and credential hygiene, against an independent SigV4
verifier written here from the AWS specification (s3rver does not verify
SigV4 signatures at all: it only checks that the access key id exists).

The verifier is a tiny in-memory S3 (ListObjectsV2, GET, PUT, HEAD, DELETE)
on 127.0.0.1 that recomputes every request's AWS4-HMAC-SHA256 signature
with the secret it knows and answers 403 SignatureDoesNotMatch otherwise.

Checks: `drst train --store s3://...` and `drst models list` succeed with the
right secret (so the signatures libcurl makes for us are valid SigV4 and
the payload hashes match the bytes); a GET answered 500 InternalError four
times succeeds on the retry, five times fails naming the status; with a wrong
secret the tool fails
with a message naming the endpoint and the failing operation, and neither
the secret nor the key id appears in stdout or stderr. Also ~/.aws shared
files with AWS_PROFILE."""
import hashlib
import hmac
import os
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY_ID, SECRET = "AKIDTESTSIGV4", "sigv4-secret-Zq93x"
BUCKET = "drst"
objects = {}
seen = {"ok": 0, "bad": 0, "500": 0}
flaky = {}  # key -> how many more GETs of it answer 500 InternalError


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def verify(h):
    auth = h.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    cred = parts["Credential"].split("/")
    if cred[0] != KEY_ID or cred[3] != "s3" or cred[4] != "aws4_request":
        return False
    date, region = cred[1], cred[2]
    signed = parts["SignedHeaders"].split(";")
    u = urllib.parse.urlsplit(h.path)
    q = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    cq = "&".join(sorted(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in q))
    hdrs = "".join(f"{n}:{' '.join(h.headers.get(n, '').split())}\n" for n in signed)
    payload = h.headers.get("x-amz-content-sha256", "")
    creq = "\n".join([h.command, u.path, cq, hdrs, ";".join(signed), payload])
    amzdate = h.headers.get("x-amz-date", "")
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, f"{date}/{region}/s3/aws4_request",
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = sign(sign(sign(sign(("AWS4" + SECRET).encode(), date), region), "s3"), "aws4_request")
    return hmac.compare_digest(hmac.new(k, sts.encode(), hashlib.sha256).hexdigest(), parts["Signature"])


class S3(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, body=b"", etag=None):
        self.send_response(code)
        if etag:
            self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, name):
        self.reply(code, f"<?xml version=\"1.0\"?><Error><Code>{name}</Code><Message>{name}</Message></Error>".encode())

    def handle_any(self):
        n = int(self.headers.get("Content-Length", 0) or 0)
        body = self.rfile.read(n) if n else b""
        if not verify(self):
            seen["bad"] += 1
            return self.error(403, "SignatureDoesNotMatch")
        if self.headers.get("x-amz-content-sha256") != hashlib.sha256(body).hexdigest():
            return self.error(400, "XAmzContentSHA256Mismatch")
        seen["ok"] += 1
        u = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(u.path)
        if not path.startswith(f"/{BUCKET}/"):
            return self.error(404, "NoSuchBucket")
        key = path[len(BUCKET) + 2:]
        if key == "":
            q = dict(urllib.parse.parse_qsl(u.query))
            pre = q.get("prefix", "")
            ks = "".join(f"<Contents><Key>{k}</Key></Contents>" for k in sorted(objects) if k.startswith(pre))
            return self.reply(200, f"<ListBucketResult xmlns=\"x\"><IsTruncated>false</IsTruncated>{ks}</ListBucketResult>".encode())
        if self.command == "PUT":
            objects[key] = body
            return self.reply(200, etag='"%s"' % hashlib.md5(body).hexdigest())
        if self.command == "DELETE":
            objects.pop(key, None)
            return self.reply(204)
        if self.command == "GET" and flaky.get(key, 0) > 0:
            flaky[key] -= 1
            seen["500"] += 1
            return self.error(500, "InternalError")
        if key not in objects:
            return self.error(404, "NoSuchKey")
        etag = '"%s"' % hashlib.md5(objects[key]).hexdigest()
        if self.headers.get("If-None-Match") == etag:
            return self.reply(304, etag=etag)
        return self.reply(200, objects[key], etag=etag)

    do_GET = do_PUT = do_HEAD = do_DELETE = handle_any


def main():
    drst = os.environ.get("DRST_BIN")
    if not drst:
        print("DRST_BIN not set: skipped")
        sys.exit(77)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), S3)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{srv.server_address[1]}"
    tmp = tempfile.mkdtemp(prefix="drst-sigv4-")
    data = os.path.join(tmp, "d.csv")
    with open(data, "w") as f:
        f.write("a,b,output_rate\n")
        for i in range(120):
            a, b = (i * 37 % 101) / 101.0, (i * 53 % 97) / 97.0
            f.write(f"{a},{b},{3 * a - b + 2}\n")
    base = dict(os.environ, HOME=tmp, DRST_S3_ENDPOINT=endpoint, AWS_REGION="eu-west-3",
                DRST_S3_DRAIN_TIMEOUT="20")
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        base.pop(k, None)

    def run(args, env, spool):
        e = dict(env, DRST_S3_SPOOL=os.path.join(tmp, spool))
        return subprocess.run([drst] + args, env=e, capture_output=True, text=True, timeout=120)

    good = dict(base, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET)
    p = run(["train", "--data", data, "--model", "ridge", "--store", "s3://drst/sig", "--quiet"], good, "s1")
    if p.returncode != 0:
        fail(f"train with the right secret failed: {p.stderr}")
    key = p.stdout.strip()
    if ("sig/" + key) not in objects or "sig/models/latest" not in objects:
        fail(f"uploads missing after train: {sorted(objects)}")
    if objects["sig/models/latest"].decode().split("\n")[0] != key:
        fail("models/latest does not name the trained model")
    p = run(["models", "list", "--store", "s3://drst/sig"], good, "s2")
    if p.returncode != 0 or key not in p.stdout:
        fail(f"models list with the right secret: rc={p.returncode} {p.stdout} {p.stderr}")
    if seen["bad"]:
        fail(f"{seen['bad']} requests with a valid secret failed SigV4 verification")
    print(f"right secret: {seen['ok']} requests verified, 0 rejected")

    # 500 InternalError is retried (four times): S3 asks clients to; four in
    # a row are absorbed, five are reported with the status
    flaky["sig/models/latest"] = 4
    p = run(["models", "show", "latest", "--store", "s3://drst/sig"], good, "s5")
    if p.returncode != 0 or key not in p.stdout or seen["500"] != 4:
        fail(f"GET after four 500s: rc={p.returncode} 500s served={seen['500']} {p.stderr}")
    flaky["sig/models/latest"] = 5
    p = run(["models", "show", "latest", "--store", "s3://drst/sig"], good, "s6")
    if p.returncode == 0 or "500" not in p.stderr or flaky["sig/models/latest"] != 0:
        fail(f"GET after five 500s: rc={p.returncode} left={flaky['sig/models/latest']} {p.stderr}")
    print(f"500 InternalError: 4 retried away, 5 reported ({p.stderr.strip()})")

    # the AWS shared files with a named profile
    os.makedirs(os.path.join(tmp, ".aws"))
    with open(os.path.join(tmp, ".aws", "credentials"), "w") as f:
        f.write(f"[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n"
                f"[ci]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n")
    with open(os.path.join(tmp, ".aws", "config"), "w") as f:
        f.write("[profile ci]\nregion = ap-south-1\n")
    p = run(["models", "show", "latest", "--store", "s3://drst/sig"], dict(base, AWS_PROFILE="ci"), "s3")
    if p.returncode != 0 or key not in p.stdout:
        fail(f"profile 'ci' from ~/.aws: rc={p.returncode} {p.stderr}")

    bad = dict(base, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY="WRONG-" + SECRET[::-1])
    for args in (["models", "list", "--store", "s3://drst/sig"],
                 ["train", "--data", data, "--model", "ridge", "--store", "s3://drst/sig", "--quiet"]):
        p = run(args, bad, "s4")
        out = p.stdout + p.stderr
        if p.returncode == 0:
            fail(f"{args[0]} with a wrong secret succeeded")
        for must in (endpoint, "ListObjectsV2", "SignatureDoesNotMatch", "403"):
            if must not in p.stderr:
                fail(f"error of '{args[0]}' lacks '{must}': {p.stderr!r}")
        for secret in (SECRET, SECRET[::-1], KEY_ID):
            if secret in out:
                fail(f"a credential appears in the output of '{args[0]}'")
        print(f"wrong secret, {args[0]}: {p.stderr.strip()}")
    print("ok")


if __name__ == "__main__":
    main()
