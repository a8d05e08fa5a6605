"""reprint: news ingestion and near-duplicate grouping (see README.md)."""

import os

# numpy's OpenBLAS starts a thread per core when numpy is imported, and they spin: about 0.06 s of CPU in every
# reprint process, for nothing, since reprint's numpy work is elementwise and never calls BLAS. One thread is
# asked for before numpy can be imported; a value set in the environment is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
