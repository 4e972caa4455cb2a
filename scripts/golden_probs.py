#!/usr/bin/env python3
"""Records reference next-token probabilities from llama.cpp's llama-server for a model file.

Usage (needs ../shared/tools/llamacpp-ref set up; run from the repository root):
  python3 scripts/golden_probs.py MODEL.gguf OUT.json [--prompt-file F | --prompt TEXT]
      [--n-predict N] [--n-probs K] [--ctx C] [--port P] [--server-args ARGS] [--max-prompt-tokens N]
      [--start-timeout S]

Writes {"model": basename, "prompt": text, "prompt_tokens": [...], "tokens": [...greedy ids...],
"steps": [{"id": chosen, "top": [[id, logprob], ...]}, ...]} where step i holds the distribution that
produced generated token i (step 0 = after the prompt). Tests compare heterokv's softmax to these.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "..", "shared", "tools", "llamacpp-ref")


def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=3600) as r:  # a 7B model on 2 loaded cores
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--prompt", default="")
    ap.add_argument("--prompt-file")
    ap.add_argument("--n-predict", type=int, default=16)
    ap.add_argument("--n-probs", type=int, default=10)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--port", type=int, default=18931)
    ap.add_argument("--server-args", default="", help="extra llama-server arguments, e.g. \"-fa off\"")
    ap.add_argument("--start-timeout", type=int, default=900, help="seconds to wait for llama-server to load")
    ap.add_argument("--max-prompt-tokens", type=int, default=0,
                    help="keep only the first N prompt tokens (BOS included); 0 = all")
    a = ap.parse_args()
    prompt = open(a.prompt_file, encoding="utf-8").read() if a.prompt_file else a.prompt
    model = os.path.abspath(a.model)
    srv = subprocess.Popen([REF, "llama-server", "-m", model, "--port", str(a.port), "-c", str(a.ctx),
                            "-t", "2", "--host", "127.0.0.1", "-np", "1"] + a.server_args.split(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # a multi-GB model on a loaded machine takes minutes to load (gemma2-2b: 97 s at load 20)
        deadline = time.time() + a.start_timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{a.port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                if srv.poll() is not None:
                    sys.exit(f"llama-server exited with status {srv.returncode}")
                if time.time() > deadline:
                    sys.exit(f"llama-server did not start in {a.start_timeout} s")
                time.sleep(0.5)
        toks = post(a.port, "/tokenize", {"content": prompt, "add_special": True})["tokens"]
        if a.max_prompt_tokens > 0:
            if len(toks) < a.max_prompt_tokens:
                sys.exit(f"the prompt has {len(toks)} tokens, fewer than --max-prompt-tokens {a.max_prompt_tokens}")
            toks = toks[:a.max_prompt_tokens]
        res = post(a.port, "/completion", {"prompt": toks, "n_predict": a.n_predict, "temperature": 0,
                                           "top_k": 1, "n_probs": a.n_probs, "cache_prompt": False,
                                           "samplers": ["top_k"], "return_tokens": True})
        steps = []
        for p in res["completion_probabilities"]:
            steps.append({"id": p["id"], "top": [[t["id"], t["logprob"]] for t in p["top_logprobs"]]})
        out = {"model": os.path.basename(model), "prompt": prompt if a.max_prompt_tokens <= 0 else "", "prompt_tokens": toks,
               "tokens": [s["id"] for s in steps], "steps": steps,
               "command": " ".join(sys.argv)}
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {a.out}: {len(toks)} prompt tokens, {len(steps)} steps")
    finally:
        srv.terminate()
        srv.wait()


if __name__ == "__main__":
    main()
