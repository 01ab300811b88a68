"""Fixtures shared by several test modules."""
import pytest


@pytest.fixture
def one_blas_thread():
    """Small matrices gain nothing from BLAS threads, and on a busy 2-core machine threads that
    wait for each other make numpy and scikit-learn many times slower (it changes no result)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
