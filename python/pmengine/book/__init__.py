"""Books of many accounts: columnar batch input (:mod:`.batch`), Parquet scans
(:mod:`.scan`), Ray Data and Dask adapters (:mod:`.distributed`) and the seeded
synthetic book (:mod:`.synthetic`).

Each module is imported on its own (``from pmengine.book.batch import to_columns``),
so a scan pulls in neither Ray nor Dask.
"""
