-- CSV import (importer.c).

-- A 64 MiB page cache for this connection while one transaction holds
-- every row (see importer_run).
-- name: cache_size
PRAGMA cache_size = -65536;
