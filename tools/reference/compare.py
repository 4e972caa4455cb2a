#!/usr/bin/env python3
"""Compares heterokv's policies with the reference implementations on the same windows.

Inputs: a heterokv dump (`heterokv eval ppl --dump PREFIX`: PREFIX.json) and the reference runs of
run_reference.py on that dump (REF.json). For every reference run that names a heterokv policy,
per (window, layer, KV head): the Jaccard index |A & B| / |A | B| of the positions each kept after
the context, and per implementation the mean KL(full || policy) over the scored tokens (each
against its own full cache on the same tokens). Where the reference recorded its selection scores
(HeteroCache), heads whose kept sets differ only by a tie at the budget's boundary (scores equal
to TIE_REL) are also counted as identical "up to ties". Prints a markdown table.

Only the Python standard library is needed (runs anywhere).
"""
import argparse
import json
import math
import statistics


def jaccard(a, b):
    a, b = set(a), set(b)
    u = len(a | b)
    return 1.0 if u == 0 else len(a & b) / u


TIE_REL = 1e-5  # two scores this close (relative) are a tie for float32 arithmetic


def differs_only_by_ties(a, b, scores):
    """True when the positions kept by one side only all score within TIE_REL of each other, i.e.
    the two selections differ only in how a tie at the budget's boundary was broken."""
    diff = set(a) ^ set(b)
    if not diff or len(a) != len(b):
        return not diff
    vals = [scores[i] for i in diff]
    hi, lo = max(vals), min(vals)
    return hi - lo <= TIE_REL * abs(hi)


def load_runs(dump):
    runs = {}
    for r in dump["runs"]:
        runs[(r["window"], dump["policies"][r["policy"]])] = r
    return runs


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def compare(hkv, ref):
    hruns = load_runs(hkv)
    rows = []
    for rr in ref["runs"]:
        if rr.get("policy") is None or rr["reference"] == "full":
            continue
        hr = hruns.get((rr["window"], rr["policy"]))
        if hr is None:
            continue
        heads = [(il, ih) for il in range(len(hr["kept"])) for ih in range(len(hr["kept"][il]))]
        js = [jaccard(hr["kept"][il][ih], rr["kept"][il][ih]) for il, ih in heads]
        sc = (rr.get("extra") or {}).get("scores64")
        ties = [differs_only_by_ties(hr["kept"][il][ih], rr["kept"][il][ih], sc[il][ih]) if sc and sc[il][ih]
                else hr["kept"][il][ih] == rr["kept"][il][ih] for il, ih in heads]
        counts = [len(hr["kept"][il][ih]) == len(rr["kept"][il][ih]) for il, ih in heads]
        rows.append({"policy": rr["policy"], "reference": rr["reference"], "window": rr["window"],
                     "jaccard": js, "up_to_ties": ties, "counts": counts, "kld_hkv": mean(hr["kld"]), "kld_ref": mean(rr["kld"]),
                     "kl_cross": mean(rr.get("kl_hkv", [])) if rr.get("kl_hkv") else float("nan")})
    # aggregate over windows, keeping the order of first appearance
    order, agg = [], {}
    for r in rows:
        key = (r["policy"], r["reference"])
        if key not in agg:
            order.append(key)
            agg[key] = []
        agg[key].append(r)
    table = []
    for key in order:
        rs = agg[key]
        js = [j for r in rs for j in r["jaccard"]]
        ties = [t for r in rs for t in r["up_to_ties"]]
        counts = [c for r in rs for c in r["counts"]]
        kh = mean([r["kld_hkv"] for r in rs])
        kr = mean([r["kld_ref"] for r in rs])
        diffs = [r["kld_hkv"] - r["kld_ref"] for r in rs]
        se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
        table.append({"policy": key[0], "reference": key[1], "windows": len(rs), "jaccard_mean": mean(js),
                      "jaccard_min": min(js), "identical": sum(1 for j in js if j == 1.0) / len(js),
                      "identical_up_to_ties": sum(ties) / len(ties), "counts_equal": sum(counts) / len(counts),
                      "kld_hkv": kh, "kld_ref": kr, "rel": (kh - kr) / kr if kr > 0 else float("nan"),
                      "diff_se": se, "kl_cross": mean([r["kl_cross"] for r in rs])})
    return table


def markdown(table):
    out = ["| policy (heterokv spec) | reference | windows | kept-index Jaccard mean / min | heads identical "
           "(up to ties) | head budgets equal | KLD heterokv | KLD reference | heterokv vs ref | KL(hkv ‖ ref) |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for t in table:
        rel = "n/a" if math.isnan(t["rel"]) else f"{100 * t['rel']:+.1f}% (±{100 * t['diff_se'] / t['kld_ref']:.1f})" \
            if t["kld_ref"] > 0 and not math.isnan(t["diff_se"]) else f"{100 * t['rel']:+.1f}%"
        cross = "n/a" if math.isnan(t["kl_cross"]) else f"{t['kl_cross']:.2e}"
        ties = "" if t["identical_up_to_ties"] == t["identical"] else f" ({100 * t['identical_up_to_ties']:.1f}%)"
        out.append(f"| `{t['policy']}` | {t['reference']} | {t['windows']} | {t['jaccard_mean']:.4f} / "
                   f"{t['jaccard_min']:.3f} | {100 * t['identical']:.1f}%{ties} | {100 * t['counts_equal']:.1f}% | "
                   f"{t['kld_hkv']:.5f} | {t['kld_ref']:.5f} | "
                   f"{rel} | {cross} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("hkv_dump", help="PREFIX.json written by heterokv eval ppl --dump PREFIX")
    ap.add_argument("ref", help="JSON written by run_reference.py")
    ap.add_argument("--json", help="also write the table as JSON here")
    a = ap.parse_args()
    with open(a.hkv_dump) as f:
        hkv = json.load(f)
    with open(a.ref) as f:
        ref = json.load(f)
    table = compare(hkv, ref)
    print(markdown(table))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(table, f, indent=1)


if __name__ == "__main__":
    main()
