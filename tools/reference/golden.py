#!/usr/bin/env python3
"""Packs a heterokv dump and the reference runs on it into a small golden file for CI
(tests/data/fidelity/, read by tests/model/test_fidelity.cpp, which never runs Python).

The golden holds what the test needs to rerun heterokv on the same windows and check it against
the references without them: the eval settings and each window's token ids; Hugging Face's
full-cache logits of the first and last scored prediction of each window; per reference run the
positions each (layer, KV head) kept after the context (as [first, last] ranges), the positions
that tie at the budget's boundary (HeteroCache, Knorm: scores equal within compare.TIE_REL, where
either choice is right), and the reference's mean KL(full || ref) over the window's scored tokens; whether
heterokv must reproduce the kept positions exactly (EXACT) or is pinned by the agreement it had
(mean Jaccard) when the golden was made; heterokv's own KLD then, for reference.

Standard library only. See make_goldens.sh for the commands that made the committed goldens.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import TIE_REL  # noqa: E402


def ranges(positions):
    out = []
    for p in sorted(positions):
        if out and p == out[-1][1] + 1:
            out[-1][1] = p
        else:
            out.append([p, p])
    return out


def boundary_ties(kept, scores):
    """Positions whose score ties (within TIE_REL) with the weakest kept or the strongest dropped one."""
    if not scores or not kept or len(kept) == len(scores):
        return []
    ks = set(kept)
    weakest = min(scores[p] for p in kept)
    strongest = max(s for p, s in enumerate(scores) if p not in ks)
    band = [p for p, s in enumerate(scores)
            if abs(s - weakest) <= TIE_REL * abs(weakest) or abs(s - strongest) <= TIE_REL * abs(strongest)]
    return band if len(band) > 1 else []


# References whose kept positions heterokv must reproduce exactly (up to boundary ties); the others
# are other readings of the method (docs/fidelity.md says why) and are pinned by their agreement.
EXACT = ("kvpress StreamingLLMPress", "kvpress SnapKVPress", "kvpress KnormPress", "kvpress TOVAPress",
         "HeteroCache reference")


def jaccard_mean(a, b):
    js = []
    for la, lb in zip(a, b):
        for ha, hb in zip(la, lb):
            u = len(set(ha) | set(hb))
            js.append(1.0 if u == 0 else len(set(ha) & set(hb)) / u)
    return sum(js) / len(js)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dump", help="PREFIX.json of heterokv eval ppl --dump")
    ap.add_argument("ref", help="run_reference.py output on that dump")
    ap.add_argument("--text", required=True, help="the text file, relative to ../shared")
    ap.add_argument("--ctx", type=int, required=True, help="the -c given to eval ppl")
    ap.add_argument("--command", action="append", default=[], help="a command that made the golden (repeatable)")
    ap.add_argument("--versions", default="", help="versions of the references, recorded as given")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    with open(a.dump) as f:
        dump = json.load(f)
    with open(a.ref) as f:
        ref = json.load(f)
    n_scored, n_vocab = dump["scored"], dump["n_vocab"]
    g = {"format": "heterokv-fidelity-golden-1", "model": dump["model"], "text": a.text, "ctx": a.ctx,
         "window": dump["window"], "context": dump["context"], "max_windows": len(dump["windows"]),
         "kv_type": dump["kv_type"], "tie_rel": TIE_REL, "versions": a.versions, "commands": a.command,
         "windows": [], "runs": []}
    for w in dump["windows"]:
        g["windows"].append({"start": w["start"], "tokens": w["tokens"]})
    hruns = {(r["window"], dump["policies"][r["policy"]]): r for r in dump["runs"]}
    hf_rows = ref.get("hf_rows", {})
    for iw, w in enumerate(g["windows"]):
        rows = hf_rows.get(str(iw))
        if rows:
            w["hf_first_row"] = [round(x, 5) for x in rows[0]]
            w["hf_last_row"] = [round(x, 5) for x in rows[1]]
    for r in ref["runs"]:
        sc = (r.get("extra") or {}).get("scores64")
        kept = r["kept"]
        hkv = hruns[(r["window"], r["policy"])]
        entry = {"window": r["window"], "policy": r["policy"], "reference": r["reference"],
                 "exact": r["reference"] in EXACT, "jaccard_mean": round(jaccard_mean(hkv["kept"], kept), 6),
                 "kld_mean": sum(r["kld"]) / len(r["kld"]), "kld_mean_heterokv": sum(hkv["kld"]) / len(hkv["kld"]),
                 "kept": [[ranges(h) for h in layer] for layer in kept]}
        if sc:
            ties = []
            for il, layer in enumerate(kept):
                for ih, h in enumerate(layer):
                    t = boundary_ties(h, sc[il][ih])
                    if t:
                        ties.append([il, ih, t])
            entry["ties"] = ties
        g["runs"].append(entry)
    tmp = a.output + ".tmp"
    with open(tmp, "w") as f:
        json.dump(g, f, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, a.output)
    print(f"{a.output}: {len(g['windows'])} windows, {len(g['runs'])} reference runs, "
          f"{os.path.getsize(a.output)} bytes")


if __name__ == "__main__":
    main()
