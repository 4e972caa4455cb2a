# python/tests/conftest.py — shared fixtures of the heterokv Python tests (run by ctest as
# Python.unit and Python.model; see python/CMakeLists.txt). Tests marked `model` need
# ../shared/models/stories260K.gguf and are skipped when it is absent.
import os

import pytest

SHARED = os.environ.get("HKV_SHARED_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
MODEL = os.path.join(SHARED, "models", "stories260K.gguf")
RETRIEVAL = os.path.join(SHARED, "models", "retrieval-1.4M.gguf")  # head_dim 32: can hold q8_0 / q4_0 / hq4 rows
TEST_DATA = os.environ.get("HKV_TEST_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data"))


def pytest_configure(config):
    config.addinivalue_line("markers", "model: needs ../shared/models/stories260K.gguf")


@pytest.fixture(scope="session")
def model():
    if not os.path.exists(MODEL):
        pytest.skip("needs " + MODEL)
    import heterokv

    return heterokv.Model(MODEL)


@pytest.fixture(scope="session")
def retrieval():
    if not os.path.exists(RETRIEVAL):
        pytest.skip("needs " + RETRIEVAL)
    import heterokv

    return heterokv.Model(RETRIEVAL)
