"""Atomic file writes (temp name, fsync, ``os.replace``), the dataset lock, and JSON/parquet reading."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from vjepa_planning.worldmodel.data.lerobot.format import DatasetError

# --------------------------------------------------------------------------------------------------
# Atomic file helpers
# --------------------------------------------------------------------------------------------------

HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (read in 1 MiB blocks): recorded in the episode meta at commit, checked on open."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def tmp_path(root: Path, name: str) -> Path:
    """A fresh temp name under ``root/.tmp``; encodes pid and host so stale files can be cleaned."""
    return root / ".tmp" / f"tmp-{os.getpid()}-{HOST}-{uuid.uuid4().hex[:8]}-{name}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(src: Path, dst: Path) -> None:
    """``os.replace`` into place (a module-level hook so crash tests can interrupt a commit)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def publish(tmp: Path, dst: Path, fsync: bool) -> None:
    if fsync:
        _fsync_file(tmp)
    _replace(tmp, dst)


def write_json_atomic(root: Path, dst: Path, obj: Any, fsync: bool) -> None:
    tmp = tmp_path(root, dst.name)
    tmp.write_text(json.dumps(obj, indent=4) + "\n")
    publish(tmp, dst, fsync)


def write_parquet_atomic(root: Path, dst: Path, table: pa.Table, fsync: bool) -> None:
    tmp = tmp_path(root, dst.name)
    pq.write_table(table, tmp)
    publish(tmp, dst, fsync)


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """Exclusive dataset lock; the kernel releases it if the holder dies, even by SIGKILL."""
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def chunk_file(episode_index: int, chunks_size: int) -> tuple[int, int]:
    return episode_index // chunks_size, episode_index % chunks_size


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def read_parquet(path: Path, what: str = "parquet file", columns: Sequence[str] | None = None) -> pa.Table:
    if not path.is_file():
        raise DatasetError(path, f"{what} is missing")
    try:
        # ParquetFile.read is several times faster than read_table for many small files.
        with pq.ParquetFile(path) as pf:
            return pf.read(columns=columns)
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(path, f"cannot read {what} (truncated or corrupt?): {e}") from e


def read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise DatasetError(path, f"{what} is missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(path, f"{what} is not valid JSON: {e}") from e


def read_tasks(path: Path) -> list[str]:
    """tasks.parquet as a list indexed by task_index (accepts a `task` column or a pandas index)."""
    table = read_parquet(path, "tasks file")
    task_col = "task" if "task" in table.column_names else "__index_level_0__"
    if task_col not in table.column_names or "task_index" not in table.column_names:
        raise DatasetError(path, "tasks file needs columns 'task' and 'task_index'")
    idx = table.column("task_index").to_pylist()
    names = table.column(task_col).to_pylist()
    tasks: list[str | None] = [None] * len(idx)
    for i, t in zip(idx, names):
        if not isinstance(i, int) or not 0 <= i < len(idx) or tasks[i] is not None or not isinstance(t, str):
            raise DatasetError(path, "task_index must enumerate 0..n-1 exactly once, with string tasks")
        tasks[i] = t
    return [t for t in tasks if t is not None]


def tasks_table(tasks: Sequence[str]) -> pa.Table:
    """task_index and task columns, with the pandas metadata that makes `task` the index, as LeRobot writes
    the file (pandas ``to_parquet`` of a frame indexed by task): LeRobot reads a task's text from that index."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(list(tasks), pa.string())})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
                     "metadata": None},
                    {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
                     "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
