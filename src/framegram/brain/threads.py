"""One BLAS thread for the many small factorisations of a fit.

The HRF delay search and the banded random search factorise hundreds of small matrices ([n_train,
F], F ~ 20-100); OpenBLAS splits each over its threads, and on 2 busy cores a 360 x 100 SVD took
62 ms with 2 threads against 2.7 ms with one. The big products over all voxels keep every thread.
"""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
