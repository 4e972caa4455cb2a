# python/tests/test_heterokv.py — the heterokv Python module on the public API: errors are
# exceptions with the Status message; with stories260K (../shared, `model` tests): the greedy text
# of `heterokv run` byte for byte, logits, KV statistics under a policy, and score() equal to
# `heterokv eval ppl` on the same window.
import json
import os
import subprocess

import pytest

import heterokv as hkv
from conftest import MODEL, SHARED, TEST_DATA

model_test = pytest.mark.model


# ---- no model needed ----

def test_policy_names_and_errors_without_a_model(tmp_path):
    names = hkv.policy_names()
    for n in ("full", "streaming", "snapkv", "pyramidkv", "h2o", "ems", "heterocache"):
        assert n in names
    with pytest.raises(hkv.Error) as e:
        hkv.Model(str(tmp_path / "missing.gguf"))
    assert "missing.gguf" in str(e.value) and e.value.code == "not found"
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 20)
    with pytest.raises(hkv.Error) as e:
        hkv.Model(str(bad))
    assert "bad.gguf" in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, RuntimeError)


# ---- stories260K ----

@model_test
def test_greedy_text_equals_the_cli_golden(model):
    # `heterokv run -m stories260K.gguf -p "" -n 200 --temp 0 -c 512` prints the prompt's pieces
    # (BOS: none), the generated text and "\n\n": tests/data/golden/stories260K_greedy200.txt
    with open(os.path.join(TEST_DATA, "golden", "stories260K_greedy200.txt"), encoding="utf-8") as f:
        golden = f.read()
    ctx = hkv.Context(model, n_ctx=512)
    ids = []
    text = ctx.generate("", n_predict=200, temp=0, on_token=ids.append)
    assert text + "\n\n" == golden
    assert len(ids) == 200 and ctx.n_past == 200  # BOS + 199 evaluated; the last is not
    assert model.detokenize(ids) == text.lstrip(" ")


@model_test
def test_model_info_tokenizer_and_logits(model):
    info = model.info
    assert info["arch"] == "llama" and info["n_vocab"] == model.n_vocab == 512 and info["n_layer"] > 0
    ids = model.tokenize("Once upon a time")
    assert ids[0] == model.bos and len(ids) > 3
    assert model.detokenize(ids) == "Once upon a time"
    assert model.token_to_piece(ids[1]).decode().strip() != ""
    ctx = hkv.Context(model, n_ctx=128, n_threads=1)
    rows = ctx.eval(ids, all_logits=True)
    assert len(rows) == len(ids) * model.n_vocab
    last = ctx.logits
    assert len(last) == model.n_vocab and list(rows[-model.n_vocab:]) == list(last)
    first = max(range(model.n_vocab), key=lambda i: (last[i], -i))  # argmax, ties to the lowest id
    ctx2 = hkv.Context(model, n_ctx=128, n_threads=1)
    got = []
    ctx2.generate(ids, n_predict=1, temp=0, on_token=got.append)
    assert got == [first]
    assert ctx.eval([first]) is None and ctx.n_past == len(ids) + 1
    ctx.truncate(2)
    assert ctx.n_past == 2
    ctx.reset()
    assert ctx.n_past == 0 and ctx.kv_bytes == 0


@model_test
def test_errors_are_exceptions_with_the_status_message(model):
    def raises(fn, *words, code=None):
        with pytest.raises(hkv.Error) as e:
            fn()
        for w in words:
            assert w in str(e.value), str(e.value)
        if code:
            assert e.value.code == code, e.value.code
        return e.value

    raises(lambda: hkv.Context(model, policy="nope:budget=3"), "nope", code="invalid argument")
    raises(lambda: hkv.Context(model, policy="snapkv:budget=0"), "budget")
    raises(lambda: hkv.Context(model, kv_type="q9"), "q9", "f16")
    raises(lambda: hkv.policy_validate("snapkv:budget=64,bogus=1", model), "bogus")
    hkv.policy_validate("snapkv:budget=64", model, n_ctx=512)
    ctx = hkv.Context(model, n_ctx=16, n_threads=1)
    raises(lambda: ctx.eval([5] * 20), "exceed the context", code="out of range")
    raises(lambda: ctx.eval([100000]), "outside the vocabulary", code="invalid argument")
    raises(lambda: model.detokenize([-1]), "outside the vocabulary")
    raises(lambda: ctx.generate("Once", temp=-1), "temperature")
    raises(lambda: ctx.truncate(5), "truncate")
    raises(lambda: hkv.score(model, "Once upon a time", "full", n_context=0), "context of 0 tokens")
    assert ctx.n_past == 0  # nothing above changed the sequence

    def stop(_):
        raise ValueError("from the callback")

    with pytest.raises(ValueError, match="from the callback"):
        ctx.generate("Once", n_predict=4, on_token=stop)

    def reenter(_):
        ctx.eval([5])

    with pytest.raises(hkv.Error, match="already in use"):
        ctx.generate("Once", n_predict=4, on_token=reenter)


@model_test
def test_kv_bytes_under_a_policy_are_below_full(model):
    prompt = "Once upon a time, there was a little girl named Lily. " * 6
    stats = {}
    for policy in ("full", "snapkv:budget=32", "streaming:budget=32"):
        ctx = hkv.Context(model, n_ctx=512, n_threads=1, policy=policy)
        ctx.generate(prompt, n_predict=100, temp=0, ignore_eos=True)
        stats[policy] = s = ctx.kv_stats()
        assert s.bytes_in_use == ctx.kv_bytes > 0 and s.type == "f16"
        assert len(s.n_slot) == s.n_layer * s.n_head_kv and sum(s.n_slot) == s.slots_total
        assert s.bytes_in_use <= hkv.kv_bytes_bound(model, len(model.tokenize(prompt)), 100, n_ctx=512,
                                                    policy=policy)
    full = stats["full"]
    assert max(stats["streaming:budget=32"].n_slot) < min(full.n_slot)
    for policy in ("snapkv:budget=32", "streaming:budget=32"):
        assert stats[policy].bytes_in_use < full.bytes_in_use, policy


@model_test
def test_score_equals_eval_ppl_on_the_same_window(model):
    text_file = os.path.join(SHARED, "data", "text", "stories260K-generated.txt")
    with open(text_file, encoding="utf-8") as f:
        text = f.read()
    w, c = 128, 64
    window = [model.bos] + model.tokenize(text, add_special=False)[: w - 1]
    policies = ["snapkv:budget=32", "streaming:budget=32"]
    res = hkv.score(model, window, ["full"] + policies, n_context=c, n_threads=1)
    full = res[0]  # `full` as a policy: equal to the baseline
    assert full.policy == "full" and full.n_scored == w - c
    assert full.kld_mean == 0.0 and full.top1 == 1.0 and 1.0 < full.ppl < 100.0
    for r in res[1:]:
        assert r.kld_mean > 0.0 and r.kv_bytes_end < full.kv_bytes_end
    one = hkv.score(model, window, "snapkv:budget=32", n_context=c, n_threads=1)
    assert one.policy == "snapkv:budget=32" and one.ppl == res[1].ppl
    cli = os.environ.get("HKV_BIN")
    if not cli:
        pytest.skip("HKV_BIN (the heterokv CLI) not set")
    args = [cli, "eval", "ppl", "-m", MODEL, "-f", text_file, "--window", str(w), "--context", str(c),
            "--max-windows", "1", "-t", "1", "-o", "json"]
    for p in policies:
        args += ["--policy", p]
    out = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    by_policy = {r["policy"]: r for r in out["results"]}
    for r in res:
        e = by_policy[r.policy]
        assert r.n_scored == e["n_scored"]
        for k, v in (("ppl", r.ppl), ("kld_mean", r.kld_mean), ("kld_max", r.kld_max), ("top1", r.top1),
                     ("kv_bytes_context", r.kv_bytes_context), ("kv_bytes_end", r.kv_bytes_end)):
            assert v == pytest.approx(e[k], rel=1e-9, abs=1e-12), (r.policy, k)


@model_test
def test_kv_types_of_k_and_v_and_per_head_precision(retrieval):
    # type_k / type_v (llama.cpp's -ctk / -ctv) each size their rows: q8_0 rows are 34 bytes per 32
    # values against f16's 64, so K-only q8_0 sits between f16 and all-q8_0; a policy's kv= option
    # gives heads their own types, which kv_stats() lists per head.
    prompt = list(range(1, 200))
    bytes_of = {}
    for name, kw in (("f16", {}), ("k8", {"type_k": "q8_0"}), ("kv8", {"kv_type": "q8_0"}),
                     ("v4", {"type_v": "q4_0", "type_k": "f16", "kv_type": "q8_0"})):
        ctx = hkv.Context(retrieval, n_ctx=256, n_threads=1, **kw)
        ctx.eval(prompt)
        s = ctx.kv_stats()
        bytes_of[name] = s.bytes_in_use
        assert (s.type, s.type_v) == {"f16": ("f16", "f16"), "k8": ("q8_0", "f16"), "kv8": ("q8_0", "q8_0"),
                                      "v4": ("f16", "q4_0")}[name]
        assert s.head_types == []
        assert s.bytes_in_use <= hkv.kv_bytes_bound(retrieval, len(prompt), 0, n_ctx=256, **kw)
    assert bytes_of["f16"] > bytes_of["k8"] > bytes_of["kv8"]
    assert bytes_of["f16"] > bytes_of["v4"] > bytes_of["kv8"]
    with pytest.raises(hkv.Error, match="q9"):
        hkv.Context(retrieval, type_v="q9")
    taxonomy = os.path.join(TEST_DATA, "heterocache", "retrieval-1.4M_topk0.2.json")
    ctx = hkv.Context(retrieval, n_ctx=256, n_threads=1,
                      policy="heterocache:taxonomy=" + taxonomy + ",ratio=0.75,kv=anchor:q8_0/satellite:q4_0")
    ctx.eval(prompt)
    heads = ctx.kv_stats().head_types
    assert len(heads) == ctx.kv_stats().n_layer * ctx.kv_stats().n_head_kv
    # the taxonomy's 12 heads: 4 anchors, 1 satellite, 6 volatile and 1 pivot (these two keep f16)
    assert (heads.count(("q8_0", "q8_0")), heads.count(("q4_0", "q4_0")), heads.count(("f16", "f16"))) == (4, 1, 7)
