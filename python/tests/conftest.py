# python/tests/conftest.py — shared fixtures of the heterokv Python tests (run by ctest as
# Python.unit and Python.model; see python/CMakeLists.txt). Tests marked `model` need
# ../shared/models/stories260K.gguf and are skipped when it is absent.
import os

import pytest

SHARED = os.environ.get("HKV_SHARED_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
MODEL = os.path.join(SHARED, "models", "stories260K.gguf")
TEST_DATA = os.environ.get("HKV_TEST_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data"))


def pytest_configure(config):
    config.addinivalue_line("markers", "model: needs ../shared/models/stories260K.gguf")


@pytest.fixture(scope="session")
def model():
    if not os.path.exists(MODEL):
        pytest.skip("needs " + MODEL)
    import heterokv

    return heterokv.Model(MODEL)
