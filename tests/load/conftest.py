"""Load tests share the performance tests' small SQL dataset."""

from tests.performance.conftest import make_dataset

__all__ = ["make_dataset"]
