"""Test session setup: everything offline, and no user data or feature cache leaks into the tests."""

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.pop("PMRL_BENCH_DATA", None)
os.environ["PMRL_BENCH_CACHE"] = tempfile.mkdtemp(prefix="pmrl-bench-test-cache-")
