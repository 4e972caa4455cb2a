#!/usr/bin/env python3
"""Load test for `heterokv serve` (stdlib only): N concurrent keep-alive connections send
/v1/completions requests (streaming and not, alternating) for a fixed time; reports requests,
errors by status, latency percentiles and the server's RSS sampled from /proc/PID/status.
    bench/server_load.py --port 8080 --pid PID [--connections 32] [--seconds 300] [--out result.json]
Loopback only: the host is 127.0.0.1.
"""
import argparse, http.client, json, random, statistics, sys, threading, time

def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None

def worker(args, stop_at, wid, results, lock):
    rng = random.Random(wid)
    conn = None
    words = ["Once", "upon", "a", "time", "there", "was", "a", "little", "girl", "named", "Lily", "who", "loved"]
    i = 0
    while time.time() < stop_at:
        i += 1
        stream = (i + wid) % 2 == 0
        body = {"prompt": " ".join(rng.choice(words) for _ in range(rng.randint(1, 40))),
                "max_tokens": rng.randint(8, args.max_tokens), "temperature": 0.8, "seed": rng.randint(0, 1 << 30),
                "stream": stream}
        if rng.random() < 0.25:
            body["kv_policy"] = "streaming:budget=32"
        t0 = time.time()
        status, err = None, None
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=120)
            conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            status = resp.status
            data = resp.read()
            if status == 200:
                if stream:
                    text = data.decode()
                    if not text.rstrip().endswith("data: [DONE]"):
                        err = "stream without [DONE]"
                else:
                    json.loads(data)["choices"][0]["text"]
            if resp.getheader("Connection", "").lower() == "close":
                conn.close(); conn = None
        except Exception as e:  # connection-level failure: counted as an error
            err = type(e).__name__
            if conn is not None:
                conn.close()
            conn = None
        dt = time.time() - t0
        with lock:
            results.append((t0, status, err, dt, stream))
        if status == 503:
            time.sleep(0.2)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    results, lock = [], threading.Lock()
    start = time.time()
    stop_at = start + args.seconds
    rss = []
    threads = [threading.Thread(target=worker, args=(args, stop_at, w, results, lock)) for w in range(args.connections)]
    for t in threads:
        t.start()
    while time.time() < stop_at:
        rss.append((round(time.time() - start, 1), rss_kb(args.pid)))
        sys.stderr.write("\rload: %4.0f s, %6d requests, RSS %s kB" % (time.time() - start, len(results), rss[-1][1]))
        time.sleep(5)
    for t in threads:
        t.join()
    rss.append((round(time.time() - start, 1), rss_kb(args.pid)))
    sys.stderr.write("\n")
    by_status = {}
    errors = {}
    for _, st, err, _, _ in results:
        by_status[str(st)] = by_status.get(str(st), 0) + 1
        if err:
            errors[err] = errors.get(err, 0) + 1
    lat = sorted(dt for _, st, err, dt, _ in results if st == 200 and not err)
    pct = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else None
    first = [r for t, r in rss if 10 <= t <= 70 and r]  # first minute after a 10 s warm-up
    last = [r for t, r in rss if t >= args.seconds - 60 and r]
    summary = {
        "connections": args.connections, "seconds": args.seconds, "requests": len(results),
        "by_status": by_status, "errors": errors,
        "ok_per_s": round(by_status.get("200", 0) / args.seconds, 2),
        "latency_s_200": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": lat[-1] if lat else None},
        "rss_kb_first_minute": {"min": min(first), "max": max(first), "mean": int(statistics.mean(first))} if first else None,
        "rss_kb_last_minute": {"min": min(last), "max": max(last), "mean": int(statistics.mean(last))} if last else None,
        "rss_kb_samples": rss,
    }
    if first and last:
        summary["rss_last_vs_first_minute"] = round(statistics.mean(last) / statistics.mean(first), 4)
    out = json.dumps(summary, indent=1)
    print(out)
    if args.out:
        with open(args.out, "w") as f:
            f.write(out + "\n")
    bad = sum(n for s, n in by_status.items() if s not in ("200", "503")) + sum(errors.values())
    return 1 if bad else 0

if __name__ == "__main__":
    sys.exit(main())
