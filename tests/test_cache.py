"""FeatureCache: atomic checksummed entries, corruption and partial entries recomputed, stale keys, encode once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from fixtures_data import SMALL_TRAIN, encoder_overrides, make_msrvtt, tiny_models_dir
from safetensors.torch import load_file

from pmrl_bench.cli import main
from pmrl_bench.data import encoding
from pmrl_bench.data.cache import CacheKey, FeatureCache


def _key(**fields) -> CacheKey:
    return CacheKey("ds", "test", "text", "fam-model", {"encoder": {"family": "fam"}, **fields})


def test_store_load_round_trip_and_layout(tmp_path: Path):
    cache = FeatureCache(tmp_path)
    values = torch.randn(3, 5)
    entry = cache.store(_key(), values, ["a#0", "a#1", "b#0"], meta={"notes": {}})
    assert entry == tmp_path / "ds" / "test" / "text" / "fam-model" / _key().digest[:16]
    assert sorted(p.name for p in entry.iterdir()) == ["embeddings.safetensors", "ids.json", "meta.json"]
    hit = cache.load(_key())
    assert hit is not None and hit.ids == ("a#0", "a#1", "b#0") and torch.equal(hit.values, values)
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["n_rows"] == 3 and meta["dim"] == 5 and meta["normalised"] is False and len(meta["sha256"]) == 64
    assert cache.state(_key())[0] == "present"
    assert not list(entry.parent.glob(".*"))  # no temporary folders left behind


def test_key_digest_covers_every_field():
    assert _key(frames=8).digest != _key(frames=4).digest
    assert _key().digest != CacheKey("ds", "train", "text", "fam-model", _key().fields).digest
    assert _key().digest == _key().digest


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "drop_meta", "bad_ids"])
def test_corrupt_or_partial_entries_are_reported_and_ignored(tmp_path: Path, damage: str, capsys):
    cache = FeatureCache(tmp_path)
    entry = cache.store(_key(), torch.randn(4, 3), ["a", "b", "c", "d"])
    emb = entry / "embeddings.safetensors"
    if damage == "flip_byte":
        data = bytearray(emb.read_bytes())
        data[-3] ^= 0xFF
        emb.write_bytes(bytes(data))
    elif damage == "truncate":
        emb.write_bytes(emb.read_bytes()[:40])
    elif damage == "drop_meta":
        (entry / "meta.json").unlink()
    else:
        (entry / "ids.json").write_text('["a", "b", "c", "x"]')
    assert cache.load(_key()) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("feature cache: ") and "recomputing" in err[0]
    assert cache.state(_key())[0] == "corrupt"
    cache.store(_key(), torch.ones(4, 3), ["a", "b", "c", "d"])  # overwriting repairs the entry
    assert torch.equal(cache.load(_key()).values, torch.ones(4, 3))


def test_other_keys_of_the_same_encoder_are_stale(tmp_path: Path):
    cache = FeatureCache(tmp_path)
    cache.store(_key(frames=8), torch.zeros(1, 2), ["a"])
    state, detail = cache.state(_key(frames=4))
    assert state == "stale" and _key(frames=8).digest[:16] in detail
    assert FeatureCache(tmp_path / "empty").state(_key())[0] == "missing"


@pytest.fixture
def msrvtt_setup(tmp_path: Path, tmp_path_factory):
    models = tiny_models_dir(tmp_path_factory)
    data = make_msrvtt(tmp_path / "msrvtt")
    sets = ["--set", f"data_dir={data}", "--set", f"cache_dir={tmp_path / 'cache'}", *encoder_overrides(models),
            "--set", "validation.fraction=0.5"]  # 2 of the 4 training videos (the default 0.1 would carve none)
    return tmp_path, sets


def _count_encoder_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = encoding.run_encoder

    def counting(encoder, inputs, batch_size, desc, progress):
        calls.append(desc)
        return real(encoder, inputs, batch_size, desc, progress)

    monkeypatch.setattr(encoding, "run_encoder", counting)
    return calls


def test_sweep_of_4_methods_x_3_seeds_encodes_each_split_once(msrvtt_setup, monkeypatch: pytest.MonkeyPatch):
    from pmrl_bench import runner

    tmp, sets = msrvtt_setup
    calls = _count_encoder_runs(monkeypatch)
    for method in ("pmrl", "clip", "imagebind", "gram"):
        runner._load_split_cached.cache_clear()  # as if every method ran in its own process
        assert main(["run", "--method", method, "--task", "msrvtt", "--seeds", "0", "1", "2",
                     "--results-dir", str(tmp / "results"), *sets, *SMALL_TRAIN]) == 0
    assert sorted(calls) == sorted(f"msrvtt/{s} {m}" for s in ("train_9k", "test_1k") for m in ("text", "vision", "audio"))
    records = [json.loads(p.read_text()) for p in (tmp / "results").rglob("*.json")]
    assert len(records) == 12 and {r["status"] for r in records} == {"ok"}
    assert len({json.dumps(r["protocol"]["test"], sort_keys=True) for r in records}) == 1


def test_corrupt_cache_is_recomputed_and_stale_keys_are_reported(msrvtt_setup, monkeypatch, capsys):
    tmp, sets = msrvtt_setup
    assert main(["data", "check", "--task", "msrvtt", *sets]) == 1
    assert "missing" in capsys.readouterr().out
    assert main(["data", "extract", "--task", "msrvtt", *sets]) == 0
    out = capsys.readouterr().out
    assert "test_1k): 2 items, text encoded, vision encoded, audio encoded; 1 items without media (first: video6)" in out
    assert main(["data", "check", "--task", "msrvtt", *sets]) == 0
    assert capsys.readouterr().out.count(" present ") == 6

    vision = next((tmp / "cache" / "msrvtt" / "test_1k" / "vision").glob("*/*/embeddings.safetensors"))
    before = load_file(vision)["embeddings"].clone()
    data = vision.read_bytes()
    vision.write_bytes(data[:-8] + b"\x00" * 8)
    assert main(["data", "check", "--task", "msrvtt", *sets]) == 1
    assert "corrupt" in capsys.readouterr().out
    calls = _count_encoder_runs(monkeypatch)
    assert main(["data", "extract", "--task", "msrvtt", *sets]) == 0
    captured = capsys.readouterr()
    assert calls == ["msrvtt/test_1k vision"]
    assert [line for line in captured.err.splitlines() if line.startswith("feature cache:")] == [
        f"feature cache: {vision.parent} is unusable: checksum mismatch in embeddings.safetensors; recomputing"]
    assert torch.equal(load_file(vision)["embeddings"], before)  # deterministic re-encoding

    fewer_frames = [*sets, "--set", "encoders.vision.frames=2"]
    assert main(["data", "check", "--task", "msrvtt", *fewer_frames]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert sum(" stale " in line and "vision" in line for line in lines) == 2


def _store_many(root: str) -> int:
    cache, failures = FeatureCache(root), 0
    for _ in range(30):
        try:
            cache.store(_key(), torch.randn(20, 4), [f"r{j}" for j in range(20)])
        except OSError:
            failures += 1
    return failures


def test_concurrent_writers_of_one_key_do_not_fail(tmp_path: Path):
    """Parallel sweep jobs encode the same split the first time and store the same key at once."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(3) as pool:
        assert pool.map(_store_many, [str(tmp_path)] * 3) == [0, 0, 0]
    assert FeatureCache(tmp_path).load(_key()) is not None
