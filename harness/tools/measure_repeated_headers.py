#!/usr/bin/env python3
"""Measures which repeated header lines Envoy joins into one value (harness/src/codec.rs lists).

Starts a router-only Envoy (HTTP/1.1 and HTTP/2 downstream, AUTO codec) in front of a raw
socket upstream, then for every candidate name:
  - request side: sends the name twice (curl, HTTP/1.1 and HTTP/2 prior knowledge) and reads the
    raw lines the upstream received;
  - response side: the upstream answers with the name twice and the script reads what curl got.
Prints `name  request-h1  request-h2  response-h1  response-h2` with `joined` / `separate` /
what else was seen (Envoy strips or overwrites some headers).

usage: measure_repeated_headers.py [ENVOY_BINARY]   (default: target/envoy-venv/bin/envoy)
Needs curl with HTTP/2. Ports 19930-19932.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

NAMES = """accept accept-encoding accept-language access-control-request-headers
access-control-request-method authorization authentication cache-control cdn-loop content-encoding
content-type cookie etag forwarded grpc-accept-encoding grpc-timeout if-match if-none-match
if-modified-since if-unmodified-since if-range last-modified origin pragma referer user-agent vary
via x-client-trace-id x-custom x-api-key x-forwarded-for x-forwarded-host x-forwarded-proto
x-forwarded-port x-request-id traceparent tracestate baggage b3 x-b3-traceid proxy-status
x-envoy-decorator-operation x-envoy-attempt-count x-envoy-original-path proxy-authorization
www-authenticate set-cookie location date age expires access-control-allow-origin
access-control-allow-credentials access-control-expose-headers grpc-status grpc-message
x-envoy-degraded x-envoy-ratelimited content-language retry-after""".split()

LISTEN, ADMIN, UPSTREAM = 19930, 19931, 19932

BOOTSTRAP = f"""
admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {ADMIN}}}}}}}
static_resources:
  listeners:
  - name: l
    address: {{socket_address: {{address: 127.0.0.1, port_value: {LISTEN}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: x
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: v
              domains: ["*"]
              routes: [{{match: {{prefix: "/"}}, route: {{cluster: up}}}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: up
    type: STATIC
    load_assignment:
      cluster_name: up
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {UPSTREAM}}}}}}}}}]}}]
"""


def upstream():
    """GET /req: echoes the request lines as JSON. GET /resp?n=name: answers with `name` twice."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", UPSTREAM))
    s.listen(16)

    def handle(c):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                return
            data += chunk
        lines = data.split(b"\r\n\r\n")[0].decode("latin1").split("\r\n")
        target = lines[0].split(" ")[1]
        if target.startswith("/resp"):
            name = urllib.parse.parse_qs(urllib.parse.urlparse(target).query)["n"][0].encode()
            extra = b"%s: v1\r\n%s: v2\r\n" % (name, name)
            body = b"ok"
        else:
            extra = b""
            body = json.dumps([l.split(":", 1) for l in lines[1:]]).encode()
        c.sendall(b"HTTP/1.1 200 OK\r\n" + extra + b"content-length: %d\r\n\r\n" % len(body) + body)
        c.close()

    while True:
        conn, _ = s.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def verdict(values, v1, v2):
    if values == [f"{v1},{v2}"]:
        return "joined"
    if values == [f"{v1}; {v2}"]:
        return "joined;"
    if values == [v1, v2]:
        return "separate"
    return repr(values)


def curl(args, h2):
    cmd = ["curl", "-s"] + (["--http2-prior-knowledge"] if h2 else []) + args
    return subprocess.run(cmd, capture_output=True, text=True).stdout


def request_side(name, h2):
    v1, v2 = ("c1=1", "c2=2") if name == "cookie" else ("v1", "v2")
    out = curl([f"localhost:{LISTEN}/req", "-H", f"{name}: {v1}", "-H", f"{name}: {v2}"], h2)
    try:
        lines = json.loads(out)
    except ValueError:
        return "no response"
    return verdict([v.strip() for k, v in lines if k.lower() == name], v1, v2)


def response_side(name, h2):
    out = curl(["-D", "-", "-o", os.devnull, f"localhost:{LISTEN}/resp?n={name}"], h2)
    lines = [l.split(":", 1) for l in out.splitlines()[1:] if ":" in l]
    return verdict([v.strip() for k, v in lines if k.lower() == name], "v1", "v2")


def main():
    envoy = sys.argv[1] if len(sys.argv) > 1 else "target/envoy-venv/bin/envoy"
    threading.Thread(target=upstream, daemon=True).start()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(BOOTSTRAP)
    proc = subprocess.Popen(
        [envoy, "-c", f.name, "--concurrency", "1", "-l", "error", "--base-id", "31"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if curl([f"localhost:{ADMIN}/ready"], False).strip() == "LIVE":
                break
            time.sleep(0.1)
        print(f"{'name':40} req-h1     req-h2     resp-h1    resp-h2")
        for name in NAMES:
            cols = [request_side(name, False), request_side(name, True),
                    response_side(name, False), response_side(name, True)]
            print(f"{name:40} " + " ".join(f"{c:10}" for c in cols))
    finally:
        proc.terminate()
        proc.wait()
        os.unlink(f.name)


if __name__ == "__main__":
    main()
