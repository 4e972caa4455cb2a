#!/usr/bin/env python3
"""Streams a completion from `heterokv serve` with the Python standard library only (no pip), the
way an OpenAI client does: POST /v1/completions with "stream": true, read `data: {...}` SSE events
until `data: [DONE]`, print the text as it arrives.
    bench/stream_client.py [--url http://127.0.0.1:8080] [--prompt TEXT] [--max-tokens N] [--chat]
"""
import argparse, json, sys, urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--url", default="http://127.0.0.1:8080")
ap.add_argument("--prompt", default="Once upon a time")
ap.add_argument("--max-tokens", type=int, default=64)
ap.add_argument("--chat", action="store_true", help="use /v1/chat/completions")
args = ap.parse_args()
if args.chat:
    path, body = "/v1/chat/completions", {"messages": [{"role": "user", "content": args.prompt}]}
else:
    path, body = "/v1/completions", {"prompt": args.prompt}
body.update({"max_tokens": args.max_tokens, "stream": True, "stream_options": {"include_usage": True}})
req = urllib.request.Request(args.url + path, data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req) as resp:
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        if data == "[DONE]":
            break
        event = json.loads(data)
        if "error" in event:
            sys.exit("error: " + event["error"]["message"])
        for choice in event["choices"]:
            text = choice["delta"].get("content", "") if args.chat else choice["text"]
            sys.stdout.write(text)
            sys.stdout.flush()
            if choice["finish_reason"]:
                sys.stdout.write("\n[finish_reason: %s]\n" % choice["finish_reason"])
        if event.get("usage"):
            print("[usage: %s]" % json.dumps(event["usage"]))
