"""The annotation project: a directory holding ``annotate.db`` (SQLite) and the imported files.

Layout of a project directory::

    annotate.db      every record (users, images, persons, masks, points, clicks)
    images/          imported images, under their (sanitised) COCO ``file_name``
    truth/           dense ground truth of synthetic images (``<image id>.npz``), for the study
    views/           rendered part views (PNG + per-pixel surface points), made on first use

The database runs in WAL mode with ``synchronous=FULL`` and every action is its own committed
transaction, so a killed server loses nothing it answered. Login tokens are stored as SHA-256
hashes (they are 192-bit random strings, so a plain hash is enough).
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator

from densepose.errors import UserError

DB_NAME = "annotate.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    token_hash TEXT UNIQUE NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    file_name TEXT UNIQUE NOT NULL,      -- relative to images/, posix, no '..'
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    source_id INTEGER,                   -- the image id in the imported COCO file
    has_truth INTEGER NOT NULL DEFAULT 0,
    boxes_owner INTEGER REFERENCES users(id),
    boxes_done INTEGER NOT NULL DEFAULT 0, -- 1 once persons are known (COCO import or step 0)
    assignee INTEGER REFERENCES users(id)  -- only this annotator may claim the image's tasks (NULL: anyone)
);
CREATE TABLE IF NOT EXISTS persons (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id),
    x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,   -- COCO xywh
    extra TEXT NOT NULL DEFAULT '{}',    -- iscrowd, keypoints, segmentation, ... kept for export
    truth_instance INTEGER,              -- k of dense/*.npz 'instance' for synthetic images
    owner INTEGER REFERENCES users(id),
    stage TEXT NOT NULL DEFAULT 'parts', -- parts -> points -> done
    dp_masks TEXT,                       -- JSON list of 14 RLE dicts or []; in stage 'parts' the autosaved draft
    review TEXT NOT NULL DEFAULT '',     -- '' (not reviewed) | accepted | rejected
    review_note TEXT NOT NULL DEFAULT '',
    replica_of INTEGER REFERENCES persons(id)  -- a second annotator's copy of a person (same points), for agreement
);
CREATE TABLE IF NOT EXISTS points (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES persons(id),
    idx INTEGER NOT NULL,
    x REAL NOT NULL, y REAL NOT NULL,    -- 0..256 in the box
    part INTEGER NOT NULL,               -- coarse mask part 1..14
    status TEXT NOT NULL DEFAULT 'todo', -- todo | done | skipped
    seq INTEGER,                         -- order of answers, for undo
    face INTEGER, b0 REAL, b1 REAL, b2 REAL,
    I INTEGER, U REAL, V REAL,
    view TEXT, px REAL, py REAL,         -- where the annotator clicked
    user_id INTEGER REFERENCES users(id),
    error REAL,                          -- geodesic error (metres) against the truth, if known
    answered_at REAL,                    -- unix time of the answer (throughput)
    UNIQUE (person_id, idx)
);
CREATE INDEX IF NOT EXISTS points_person ON points(person_id);
CREATE INDEX IF NOT EXISTS persons_image ON persons(image_id);
"""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def connect(project: str | os.PathLike, create: bool = False) -> sqlite3.Connection:
    """Open the project database (autocommit mode: each statement or BEGIN..COMMIT is durable)."""
    project = Path(project)
    path = project / DB_NAME
    if not path.exists() and not create:
        raise UserError(f"{project}: not an annotation project (no {DB_NAME}); run `densepose annotate import` first")
    project.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("PRAGMA foreign_keys=ON")
    if create:
        con.executescript(SCHEMA)
        con.execute("INSERT OR IGNORE INTO meta VALUES ('surface', 'anny')")
    _add_missing_columns(con)
    return con


#: columns added after the first schema: (table, column, declaration), added to older projects on open
LATER_COLUMNS = [
    ("images", "assignee", "INTEGER REFERENCES users(id)"),
    ("persons", "review", "TEXT NOT NULL DEFAULT ''"),
    ("persons", "review_note", "TEXT NOT NULL DEFAULT ''"),
    ("persons", "replica_of", "INTEGER REFERENCES persons(id)"),
    ("points", "answered_at", "REAL"),
]


def _add_missing_columns(con: sqlite3.Connection) -> None:
    for table, column, decl in LATER_COLUMNS:
        have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
        if have and column not in have:
            try:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
            except sqlite3.OperationalError:  # another connection added it first
                pass


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` .. ``COMMIT``: one durable, serialised action (rolled back on error)."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def get_meta(con: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else default


def add_user(project: str | os.PathLike, name: str, admin: bool = False) -> str:
    """Create an annotator (or admin) and return their login token (shown once, stored hashed)."""
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise UserError(f"user name {name!r}: use 1-64 letters, digits, '-', '_' or '.'")
    con = connect(project, create=True)
    token = secrets.token_urlsafe(24)
    try:
        con.execute("INSERT INTO users (name, token_hash, is_admin) VALUES (?, ?, ?)",
                    (name, hash_token(token), int(admin)))
    except sqlite3.IntegrityError:
        raise UserError(f"{project}: user {name!r} already exists") from None
    finally:
        con.close()
    return token


def user_by_token(con: sqlite3.Connection, token: str) -> sqlite3.Row | None:
    return con.execute("SELECT * FROM users WHERE token_hash=?", (hash_token(token),)).fetchone()


def user_by_name(con: sqlite3.Connection, name: str) -> sqlite3.Row:
    row = con.execute("SELECT * FROM users WHERE name=?", (name,)).fetchone()
    if row is None:
        raise UserError(f"no user {name!r} in this project; add one with `densepose annotate add-user`")
    return row


MAX_NAME_CHARS = 255  # one path component on common file systems
MAX_PATH_CHARS = 1024


def safe_relpath(name: str) -> str:
    """A COCO ``file_name`` -> a relative posix path that stays inside its folder, or UserError."""
    if len(name) > MAX_PATH_CHARS:
        raise UserError(f"image file name of {len(name)} characters: at most {MAX_PATH_CHARS} allowed")
    p = PurePosixPath(name.replace("\\", "/"))
    if any(len(part.encode("utf-8")) > MAX_NAME_CHARS for part in p.parts):
        raise UserError(f"image file name {name[:40]!r}...: a folder or file name over {MAX_NAME_CHARS} bytes")
    if not name or p.is_absolute() or any(part in ("..", "") for part in p.parts) or ":" in name:
        raise UserError(f"image file name {name!r} must be a relative path inside the image folder")
    return str(p)


def inside(root: Path, rel: str) -> Path:
    """``root / rel`` resolved, refusing anything that lands outside ``root``."""
    root = root.resolve()
    path = (root / rel).resolve()
    if root != path and root not in path.parents:
        raise UserError(f"path {rel!r} leaves {root}")
    return path


def dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))
