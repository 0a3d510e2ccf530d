"""coderflash repository indexer: tree-sitter definitions/references/imports in SQLite, ranked with PageRank.

Public API (see ``indexer.api.Index``)::

    from indexer import Index, IndexSettings
    idx = Index.open(root, cache_dir)
    stats = idx.build()
    idx.definitions("foo"); idx.ranked_files({"src/app.py": 1.0})
"""

from .api import Index, db_path_for
from .models import Definition, FileInfo, Import, IndexStats, Reference
from .settings import DEFAULT_SECRET_GLOBS, IndexSettings, is_secret_path

__all__ = [
    "Index", "IndexSettings", "Definition", "Reference", "FileInfo", "Import", "IndexStats",
    "is_secret_path", "DEFAULT_SECRET_GLOBS", "db_path_for",
]
