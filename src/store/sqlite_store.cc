// The SQLite backend of accord/store.h.
//
// One connection per Store, opened in WAL mode with foreign keys on, `secure_delete` and the
// caller's busy timeout and sync level. Every statement is prepared once at open and reused; text
// and blobs are bound without copies. The schema is versioned in `meta.schema_version` and
// migrated on open by `kMigrations` inside one write transaction.
//
// Thread safety: one Store per thread (the connection is opened SQLITE_OPEN_NOMUTEX). Separate
// processes are serialised by SQLite's file locks.
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "accord/clock.h"
#include "accord/store.h"
#include "sqlite_util.h"

namespace accord {
namespace {

using sqlite_internal::BoundStatement;
using sqlite_internal::DamageWatch;
using sqlite_internal::DbPtr;
using sqlite_internal::DecodeStringList;
using sqlite_internal::EncodeStringList;
using sqlite_internal::Prepare;
using sqlite_internal::SqliteError;
using sqlite_internal::StmtPtr;

// --- schema ---
//
// Conventions: STRICT tables; instants are INTEGER microseconds since the epoch; lists of strings
// are TEXT holding a JSON array of strings; keys and envelopes are BLOBs. Columns that would be
// SQL keywords are suffixed: `to_party`, `from_party`, `by_party`. Lists of history are read in
// order of `at`, then of insertion (rowid): each history table has an index on (object_id, at),
// whose entries end in the rowid, so that order comes straight from the index.

// Version 0 -> 1: the first schema.
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE objects (
  id TEXT PRIMARY KEY NOT NULL,
  originator TEXT NOT NULL,
  level TEXT NOT NULL,
  topics TEXT NOT NULL CHECK (json_valid(topics)),
  compartments TEXT NOT NULL CHECK (json_valid(compartments)),
  rel_to TEXT NOT NULL CHECK (json_valid(rel_to)),
  version INTEGER NOT NULL,
  ciphertext BLOB NOT NULL,
  wrapped_key BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  destroyed_at INTEGER,
  received_from TEXT NOT NULL
) STRICT;

CREATE TABLE releases (
  object_id TEXT NOT NULL REFERENCES objects (id),
  to_party TEXT NOT NULL,
  at INTEGER NOT NULL,
  agreement TEXT NOT NULL,
  level TEXT NOT NULL,
  package_id TEXT NOT NULL
) STRICT;
CREATE INDEX releases_by_object ON releases (object_id, at);

CREATE TABLE forwards (
  object_id TEXT NOT NULL REFERENCES objects (id),
  from_party TEXT NOT NULL,
  to_party TEXT NOT NULL,
  at INTEGER NOT NULL,
  agreement TEXT NOT NULL,
  package_id TEXT NOT NULL
) STRICT;
CREATE INDEX forwards_by_object ON forwards (object_id, at);

CREATE TABLE consents (
  object_id TEXT NOT NULL REFERENCES objects (id),
  to_party TEXT NOT NULL,
  at INTEGER NOT NULL,
  notice BLOB NOT NULL
) STRICT;
CREATE INDEX consents_by_object ON consents (object_id, at);

CREATE TABLE reclassifications (
  object_id TEXT NOT NULL REFERENCES objects (id),
  version INTEGER NOT NULL,
  level TEXT NOT NULL,
  at INTEGER NOT NULL,
  notice BLOB NOT NULL
) STRICT;
CREATE INDEX reclassifications_by_object ON reclassifications (object_id, at);

CREATE TABLE destructions (
  object_id TEXT NOT NULL REFERENCES objects (id),
  at INTEGER NOT NULL,
  scope TEXT NOT NULL CHECK (scope IN ('local', 'everywhere')),
  by_party TEXT NOT NULL,
  notice BLOB NOT NULL
) STRICT;
CREATE INDEX destructions_by_object ON destructions (object_id, at);

CREATE TABLE reports (
  object_id TEXT NOT NULL REFERENCES objects (id),
  by_party TEXT NOT NULL,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  text TEXT NOT NULL,
  notice BLOB NOT NULL
) STRICT;
CREATE INDEX reports_by_object ON reports (object_id, at);

-- No foreign key to objects: a package may arrive before the object it carries is stored.
CREATE TABLE packages (
  id TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL,
  object_id TEXT NOT NULL,
  from_party TEXT NOT NULL,
  at INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  bytes BLOB NOT NULL
) STRICT;

-- No foreign key to packages: a receipt may be for a package this node sent.
CREATE TABLE receipts (
  package_id TEXT NOT NULL,
  by_party TEXT NOT NULL,
  at INTEGER NOT NULL,
  bytes BLOB NOT NULL,
  PRIMARY KEY (package_id, by_party)
) STRICT;

CREATE TABLE subjects (
  id TEXT PRIMARY KEY NOT NULL,
  clearance TEXT NOT NULL,
  need_to_know TEXT NOT NULL CHECK (json_valid(need_to_know)),
  compartments TEXT NOT NULL CHECK (json_valid(compartments))
) STRICT;

CREATE TABLE partners (
  party TEXT PRIMARY KEY NOT NULL,
  sign_public BLOB NOT NULL CHECK (length(sign_public) = 32),
  wrap_public BLOB NOT NULL CHECK (length(wrap_public) = 32)
) STRICT;
)sql";

// Version 2: the audit log. Entries by index; the complete-subtree hashes proofs read (level 0
// holds the leaf hashes; version 3 moves them); evidence of partners' rewritten logs.
constexpr std::string_view kSchemaV2 = R"sql(
CREATE TABLE log_entries (
  idx INTEGER PRIMARY KEY CHECK (idx >= 0),
  entry BLOB NOT NULL
) STRICT;
CREATE TABLE log_nodes (
  level INTEGER NOT NULL CHECK (level >= 0 AND level < 64),
  idx INTEGER NOT NULL CHECK (idx >= 0),
  hash BLOB NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;
CREATE TABLE log_evidence (
  origin TEXT NOT NULL,
  earlier TEXT NOT NULL,
  later TEXT NOT NULL,
  reason TEXT NOT NULL,
  at INTEGER NOT NULL
) STRICT;
)sql";

// Version 3: the log's tree in tiles. Each entry's row holds its leaf hash (moved from level 0
// of log_nodes), and log_nodes keeps only subtrees of 16 leaves or more (level 4 up): the
// levels below are recomputed from the 16 leaf hashes of a tile, read in one range. An append
// then writes about 1.125 rows per entry instead of 3, and a proof reads one range of leaf
// hashes instead of four point lookups. Both tables are rebuilt (SQLite cannot add a CHECK or a
// NOT NULL column without a default), in index order. An entry whose level-0 hash is missing (a
// damaged file) gets 32 zero bytes rather than being dropped: `log verify` then names it.
constexpr std::string_view kSchemaV3 = R"sql(
CREATE TABLE log_entries_v3 (
  idx INTEGER PRIMARY KEY CHECK (idx >= 0),
  entry BLOB NOT NULL,
  leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32)
) STRICT;
INSERT INTO log_entries_v3 (idx, entry, leaf_hash)
  SELECT e.idx, e.entry,
         coalesce((SELECT n.hash FROM log_nodes n WHERE n.level = 0 AND n.idx = e.idx),
                  zeroblob(32))
  FROM log_entries e ORDER BY e.idx;
DROP TABLE log_entries;
ALTER TABLE log_entries_v3 RENAME TO log_entries;
CREATE TABLE log_nodes_v3 (
  level INTEGER NOT NULL CHECK (level >= 4 AND level < 64),
  idx INTEGER NOT NULL CHECK (idx >= 0),
  hash BLOB NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;
INSERT INTO log_nodes_v3 (level, idx, hash)
  SELECT level, idx, hash FROM log_nodes WHERE level >= 4 ORDER BY level, idx;
DROP TABLE log_nodes;
ALTER TABLE log_nodes_v3 RENAME TO log_nodes;
)sql";

// Version 4: federation. The outbox of envelopes for partners' nodes; `state` is 0 pending, 1
// delivered (a receipt came back), 2 failed for good (the partner refused it).
constexpr std::string_view kSchemaV4 = R"sql(
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  to_party TEXT NOT NULL,
  kind TEXT NOT NULL,
  object_id TEXT NOT NULL,
  envelope BLOB NOT NULL,
  queued_us INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_us INTEGER NOT NULL,
  last_error TEXT NOT NULL DEFAULT '',
  state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
  done_us INTEGER NOT NULL DEFAULT 0,
  UNIQUE (id, to_party)
) STRICT;
CREATE INDEX outbox_due ON outbox (to_party, next_attempt_us, seq) WHERE state = 0;
)sql";

// Version 5: the log's tree in tiles of height 4 at every level (store.h, docs/ledger.md), in
// one table keyed by `id` = level·2^48 + index, so that a proof reads one row per four levels of
// the tree; `log_nodes` goes. The entries keep their leaf hashes. The tiles are filled by
// MigrateLogToTiles between the two scripts.
constexpr std::string_view kSchemaV5 = R"sql(
CREATE TABLE log_tiles (
  id INTEGER PRIMARY KEY CHECK (id >= 0),
  hashes BLOB NOT NULL CHECK (length(hashes) = 960)
) STRICT;
)sql";
constexpr std::string_view kSchemaV5Finish = "DROP TABLE log_nodes;";

// Version 6: a package is keyed by its sender and the sender's id, and so is a receipt this node
// gives (`from_party`, the package's sender; this node's party for a receipt it received), so
// that a partner that learns another's id (a notice goes to every holder) cannot take it first
// and have the other's package refused as a replay. Existing rows keep their meaning: a receipt
// this node gave is for the package of that id it holds.
constexpr std::string_view kSchemaV6 = R"sql(
CREATE TABLE packages_v6 (
  id TEXT NOT NULL,
  kind TEXT NOT NULL,
  object_id TEXT NOT NULL,
  from_party TEXT NOT NULL,
  at INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  bytes BLOB NOT NULL,
  PRIMARY KEY (from_party, id)
) STRICT;
INSERT INTO packages_v6 (id, kind, object_id, from_party, at, received_at, bytes)
  SELECT id, kind, object_id, from_party, at, received_at, bytes FROM packages ORDER BY rowid;
DROP TABLE packages;
ALTER TABLE packages_v6 RENAME TO packages;
CREATE INDEX packages_by_object ON packages (object_id);
CREATE TABLE receipts_v6 (
  package_id TEXT NOT NULL,
  from_party TEXT NOT NULL,
  by_party TEXT NOT NULL,
  at INTEGER NOT NULL,
  bytes BLOB NOT NULL,
  PRIMARY KEY (package_id, from_party, by_party)
) STRICT;
INSERT INTO receipts_v6 (package_id, from_party, by_party, at, bytes)
  SELECT r.package_id,
         coalesce((SELECT p.from_party FROM packages p
                   WHERE p.id = r.package_id
                     AND r.by_party = (SELECT value FROM meta WHERE key = 'party')),
                  (SELECT value FROM meta WHERE key = 'party'), ''),
         r.by_party, r.at, r.bytes
  FROM receipts r ORDER BY r.rowid;
DROP TABLE receipts;
ALTER TABLE receipts_v6 RENAME TO receipts;
)sql";
static_assert(kLogTileHeight == 4 && kLogTileMaxLevel == 16, "kSchemaV5 keys tiles by level·2^48");

// Version 7 (decision #85): a copy erased before EraseObjectCopy emptied its packages still had
// its release and forward packages whole, with the sealed payload and its data key.
constexpr std::string_view kSchemaV7 = R"sql(
UPDATE packages SET bytes = X''
  WHERE kind IN ('release', 'forward')
    AND object_id IN (SELECT id FROM objects WHERE destroyed_at IS NOT NULL);
)sql";

// Version 8 (decision #86): the checkpoints of partners' logs that came as evidence, in the
// order they came (seq), and whether a consistency proof has shown them on the chain this node
// witnesses (state 1) or not (2). A checkpoint is kept once: one shown again is not proved
// again. The note is emptied once settled (a fork's is in log_evidence).
constexpr std::string_view kSchemaV8 = R"sql(
CREATE TABLE shown_checkpoints (
  seq INTEGER PRIMARY KEY,
  origin TEXT NOT NULL,
  size INTEGER NOT NULL CHECK (size > 0),
  root BLOB NOT NULL CHECK (length(root) = 32),
  note TEXT NOT NULL,
  at INTEGER NOT NULL,
  state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
  UNIQUE (origin, size, root)
) STRICT;
CREATE INDEX shown_checkpoints_unproved ON shown_checkpoints (origin, size) WHERE state = 0;
)sql";

// Version 9: a destroyed copy's releases and forwards leave no more and keep no payload in the
// outbox (EraseObjectCopy does both from now on; this does them for copies destroyed before),
// and an index finds an object's envelopes for it. Two more let the outbox be counted and its
// undelivered envelopes listed without reading the rows, whose envelopes come before the
// columns read (SQLite walks a large value's overflow pages to reach the columns after it).
constexpr std::string_view kSchemaV9 = R"sql(
CREATE INDEX outbox_object ON outbox (object_id);
CREATE INDEX outbox_states ON outbox (to_party, state);
CREATE INDEX outbox_undelivered ON outbox (state, seq) WHERE state != 1;
UPDATE outbox
  SET state = 2, done_us = (SELECT destroyed_at FROM objects WHERE id = outbox.object_id),
      last_error = 'the object was destroyed before delivery'
  WHERE state = 0 AND kind IN ('release', 'forward')
    AND object_id IN (SELECT id FROM objects WHERE destroyed_at IS NOT NULL);
UPDATE outbox SET envelope = X''
  WHERE kind IN ('release', 'forward')
    AND object_id IN (SELECT id FROM objects WHERE destroyed_at IS NOT NULL);
)sql";

// Version 10 (decision #109): an object's label holds its originator's commitment to the sealed
// content; objects made before have none.
constexpr std::string_view kSchemaV10 = R"sql(
ALTER TABLE objects ADD COLUMN commitment TEXT NOT NULL DEFAULT '';
)sql";

// Version 11 (decision #108): when this node saw each partner's log at which size, from the
// partner itself; an envelope whose entry came after such a size may not be dated before it.
constexpr std::string_view kSchemaV11 = R"sql(
CREATE TABLE witnessings (
  origin TEXT NOT NULL,
  size INTEGER NOT NULL CHECK (size >= 0),
  at INTEGER NOT NULL,
  PRIMARY KEY (origin, size)
) STRICT, WITHOUT ROWID;
)sql";

// Version 12 (decision #183): an outbox row's envelope (up to a 64 MiB package) lives in a table
// of its own. SQLite writes a row anew, overflow pages and all, whenever an update changes its
// size; with the envelope in the row, each attempt, delivery or refusal rewrote (and, under
// `secure_delete`, zeroed) the whole envelope, and every list of the queue walked each row's
// overflow chain to reach the columns after it. Received packages are indexed by sender and kind
// as well as object, so that the orders a copy's originator gave are found without reading what
// other partners sent about the same id (Store::ListOrders). The copy needs free disk of about
// three times the outbox's envelopes, in one transaction.
constexpr std::string_view kSchemaV12 = R"sql(
CREATE TABLE outbox_envelopes (
  seq INTEGER PRIMARY KEY,
  envelope BLOB NOT NULL
) STRICT;
INSERT INTO outbox_envelopes (seq, envelope) SELECT seq, envelope FROM outbox;
ALTER TABLE outbox DROP COLUMN envelope;
DROP INDEX packages_by_object;
CREATE INDEX packages_by_object ON packages (object_id, from_party, kind);
)sql";

constexpr int kLogTileIdShift = 48;
constexpr int64_t LogTileId(int32_t level, uint64_t index) {
  return static_cast<int64_t>((uint64_t{static_cast<uint32_t>(level)} << kLogTileIdShift) | index);
}

Status Exec(sqlite3* db, std::string_view sql, std::string_view action);

// Hashes the three levels above the 16 leaf hashes of a tile of level 0 into their slots, as
// RFC 9162 does: SHA-256(0x01 || left || right). (merkle::NodeHash is the same, but the store
// sits below the ledger, DESIGN §5, and this runs only in a migration.)
void FillTileAboveLeaves(std::span<uint8_t> tile) {
  std::array<uint8_t, 65> pair;
  pair[0] = 0x01;
  for (int k = 1; k < kLogTileHeight; ++k) {
    for (uint64_t j = 0; j < (kLogTileWidth >> k); ++j) {
      const auto left = tile.subspan(32 * LogTileSlot(k - 1, 2 * j), 64);  // left, then right
      std::copy(left.begin(), left.end(), pair.begin() + 1);
      const auto hash = Sha256(pair);
      std::copy(hash.begin(), hash.end(),
                tile.begin() + static_cast<ptrdiff_t>(32 * LogTileSlot(k, j)));
    }
  }
}

// Fills `log_tiles` from a version 4 log: the tiles of level 0 from the entries' leaf hashes and
// the three levels above them, hashed here (version 4 did not store them); the others from
// `log_nodes`, which holds every complete subtree of 16 leaves or more. A hash that is missing
// (a damaged file) is left as 32 zero bytes rather than dropped: `log verify` names it.
Status FillLogTiles(sqlite3* db) {
  ACCORD_ASSIGN_OR_RETURN(const StmtPtr size_stmt,
                          Prepare(db, "SELECT coalesce(max(idx) + 1, 0) FROM log_entries"));
  uint64_t size = 0;
  {
    BoundStatement size_query(db, size_stmt.get());
    ACCORD_ASSIGN_OR_RETURN(const bool has_size, size_query.Step("migrate the log: its size"));
    if (has_size) size = static_cast<uint64_t>(size_query.ColumnInt(0));
  }
  ACCORD_ASSIGN_OR_RETURN(const StmtPtr insert_stmt,
                          Prepare(db, "INSERT INTO log_tiles (id, hashes) VALUES (?1, ?2)"));
  ACCORD_ASSIGN_OR_RETURN(
      const StmtPtr leaves_stmt,
      Prepare(db, "SELECT idx, leaf_hash FROM log_entries WHERE idx >= ?2 AND idx < ?3"));
  ACCORD_ASSIGN_OR_RETURN(
      const StmtPtr nodes_stmt,
      Prepare(db, "SELECT idx, hash FROM log_nodes WHERE level = ?1 AND idx >= ?2 AND idx < ?3"));
  constexpr uint64_t kChunk = 4096;  // tiles filled in memory at a time
  for (int32_t level = 0; level < kLogTileMaxLevel; ++level) {
    const uint64_t tiles = size >> (kLogTileHeight * (level + 1));
    if (tiles == 0) break;
    for (uint64_t first = 0; first < tiles; first += kChunk) {
      const uint64_t count = std::min(kChunk, tiles - first);
      std::vector<uint8_t> hashes(count * kLogTileBytes, 0);
      for (int k = 0; k < (level == 0 ? 1 : kLogTileHeight); ++k) {
        const int shift = kLogTileHeight - k;  // tile = idx >> shift
        BoundStatement read(db, level == 0 ? leaves_stmt.get() : nodes_stmt.get());
        if (level > 0) read.BindInt(1, kLogTileHeight * level + k);
        read.BindInt(2, static_cast<int64_t>(first << shift));
        read.BindInt(3, static_cast<int64_t>((first + count) << shift));
        for (;;) {
          ACCORD_ASSIGN_OR_RETURN(const bool row, read.Step("migrate the log: read its hashes"));
          if (!row) break;
          const auto idx = static_cast<uint64_t>(read.ColumnInt(0));
          const ByteView hash = read.ColumnBlobView(1);
          if (hash.size() != 32) continue;
          const uint64_t offset = ((idx >> shift) - first) * kLogTileBytes +
                                  32 * LogTileSlot(k, idx & ((kLogTileWidth >> k) - 1));
          std::copy(hash.begin(), hash.end(), hashes.begin() + static_cast<ptrdiff_t>(offset));
        }
      }
      for (uint64_t t = 0; t < count; ++t) {
        if (level == 0)
          FillTileAboveLeaves(std::span(hashes).subspan(t * kLogTileBytes, kLogTileBytes));
        BoundStatement insert(db, insert_stmt.get());
        insert.BindInt(1, LogTileId(level, first + t));
        insert.BindBlob(2, ByteView(hashes).subspan(t * kLogTileBytes, kLogTileBytes));
        ACCORD_RETURN_IF_ERROR(insert.Run("migrate the log: insert a tile"));
      }
    }
  }
  return OkStatus();
}

Status MigrateLogToTiles(sqlite3* db) {
  ACCORD_RETURN_IF_ERROR(FillLogTiles(db));  // its statements are finalized before the DROPs
  return Exec(db, kSchemaV5Finish, "migrate the log: drop the subtrees");
}

// kMigrations[v] takes a database from schema version v to v + 1 (version 0: no `meta` table):
// its script, then its code if any.
// INVARIANT: a script is never edited once released; a change is a new entry.
struct Migration {
  std::string_view sql;
  Status (*code)(sqlite3*) = nullptr;
};
const std::array<Migration, kStoreSchemaVersion> kMigrations = {{
    {kSchemaV1},
    {kSchemaV2},
    {kSchemaV3},
    {kSchemaV4},
    {kSchemaV5, MigrateLogToTiles},
    {kSchemaV6},
    {kSchemaV7},
    {kSchemaV8},
    {kSchemaV9},
    {kSchemaV10},
    {kSchemaV11},
    {kSchemaV12},
}};

// How many tiles one query fetches: an inclusion proof in a log of up to 2^32 entries reads at
// most eight (one per level of tiles).
constexpr size_t kLogTilesPerQuery = 8;
// Log entries inserted by one statement: a multi-row INSERT runs the statement machinery once
// for many rows, which batched appends notice.
constexpr size_t kLogEntriesPerInsert = 32;

constexpr std::string_view kSchemaVersionKey = "schema_version";

constexpr std::string_view kObjectColumns =
    "id, originator, level, topics, compartments, rel_to, version, ciphertext, wrapped_key, "
    "created_at, destroyed_at, received_from, commitment";

// --- small helpers ---

std::string LowerFirst(std::string text) {
  if (!text.empty()) {
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  }
  return text;
}

Code CodeForErrno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return Code::kNotFound;
    case EACCES:
    case EPERM:
    case EROFS:
      return Code::kPermissionDenied;
    default:
      return Code::kInternal;
  }
}

// Creates the database file with mode 0600 if it does not exist yet, whatever the umask. SQLite
// gives the -wal and -shm files it creates the mode of the database file.
Status CreatePrivateFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return OkStatus();
    }
    const int err = errno;
    return Fail(CodeForErrno(err),
                "cannot create `" + path + "`: " + LowerFirst(std::strerror(err)));
  }
  const int chmod_rc = ::fchmod(fd, 0600);
  const int err = errno;
  ::close(fd);
  if (chmod_rc != 0) {
    return Fail(CodeForErrno(err),
                "cannot set the mode of `" + path + "`: " + LowerFirst(std::strerror(err)));
  }
  return OkStatus();
}

// Runs SQL without results (pragmas that return nothing, migration scripts).
Status Exec(sqlite3* db, std::string_view sql, std::string_view action) {
  const std::string text(sql);  // sqlite3_exec needs a terminated string
  const int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    return tl::unexpected<Error>(SqliteError(db, rc, action));
  }
  return OkStatus();
}

// The first column of the first row of a one-off query, as text; nullopt without a row.
Result<std::optional<std::string>> QueryText(sqlite3* db, std::string_view sql,
                                             std::string_view action) {
  Result<StmtPtr> stmt = Prepare(db, sql);
  if (!stmt) {
    // Preparing reads the schema, so it is where a file that cannot be read fails: the error
    // names what was being done, not the SQL.
    return tl::unexpected<Error>(SqliteError(db, sqlite3_extended_errcode(db), action));
  }
  BoundStatement st(db, stmt->get());
  ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step(action));
  if (!row) {
    return std::nullopt;
  }
  return st.ColumnText(0);
}

// What every write is told once a sync of `file` failed with `why` (WriteTurns::StopWrites).
std::string SyncFailedRefusal(const std::string& file, std::string_view why) {
  return "an earlier sync of `" + file + "` failed (" + LowerFirst(std::string(why)) +
         "), so what it covered may not be on disk: restart the node";
}

tl::unexpected<Error> Corrupt(std::string_view what, std::string_view key) {
  return Fail(Code::kDataLoss,
              "corrupt " + std::string(what) + " of `" + std::string(key) + "` in the store");
}

std::string_view ScopeName(DestructionScope scope) {
  return scope == DestructionScope::kEverywhere ? "everywhere" : "local";
}

// SQLite's own busy handler sleeps ever longer, up to 100 ms per try: a connection that waits
// while another commits small transactions back to back (a node's server thread and its
// federation thread) waits a second or more. This one polls every 50 µs at first and every
// millisecond at most, until `timeout_ms` (carried in `arg`) has passed.
int BusyHandler(void* arg, int count) {
  const int64_t timeout_us = static_cast<int64_t>(reinterpret_cast<intptr_t>(arg)) * 1000;
  const int64_t sleep_us = std::min<int64_t>(int64_t{50} << std::min(count, 5), 1000);
  // Tries 0-4 sleep 50-800 µs (1.55 ms in all), then 1 ms each.
  const int64_t waited_us = count < 5 ? (int64_t{50} << count) - 50 : 1550 + (count - 5) * 1000;
  if (waited_us >= timeout_us) return 0;
  std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
  return 1;
}

// Waits up to `timeout_ms` for a lock another connection holds (0: fails at once).
void SetBusyWait(sqlite3* db, int timeout_ms) {
  if (timeout_ms <= 0) {
    sqlite3_busy_handler(db, nullptr, nullptr);
  } else {
    sqlite3_busy_handler(db, BusyHandler,
                         reinterpret_cast<void*>(static_cast<intptr_t>(timeout_ms)));
  }
}

// Applies the connection settings. Not persistent except journal_mode, so done at every open.
// kFailedPrecondition, before anything changes the file, for a database that is not a store.
Status Configure(sqlite3* db, const SqliteOptions& options) {
  sqlite3_extended_result_codes(db, 1);
  SetBusyWait(db, options.busy_timeout_ms);
  // Two processes switching a new file to WAL at once can see SQLITE_BUSY without the busy
  // handler being called (SQLite avoids a deadlock there), so retry until the busy timeout; not
  // a full disk, also kUnavailable (decision #175), which fails at once.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options.busy_timeout_ms);
  const auto query = [&](std::string_view sql, std::string_view action) {
    auto result = QueryText(db, sql, action);
    while (!result && result.error().code == Code::kUnavailable &&
           (sqlite3_extended_errcode(db) & 0xff) != SQLITE_FULL &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      result = QueryText(db, sql, action);
    }
    return result;
  };
  // The first statement reads the file: a file that is not a database fails here with NOTADB.
  // Another program's database (schema objects but no `meta` table) is refused while it is
  // still as it was: not switched to WAL, not migrated as if it were an empty store.
  ACCORD_ASSIGN_OR_RETURN(
      const std::optional<std::string> foreign,
      query("SELECT EXISTS (SELECT 1 FROM sqlite_schema) AND NOT EXISTS (SELECT 1 FROM "
            "sqlite_schema WHERE type = 'table' AND name = 'meta')",
            "read schema"));
  if (foreign == "1") {
    return Fail(Code::kFailedPrecondition, "a SQLite database but not an accord store");
  }
  auto mode = query("PRAGMA journal_mode=WAL", "set journal mode");
  if (!mode) {
    return tl::unexpected(mode.error());
  }
  if (!mode->has_value() || **mode != "wal") {
    return Fail(Code::kInternal,
                "sqlite: set journal mode: got `" + mode->value_or("") + "` instead of `wal`");
  }
  ACCORD_RETURN_IF_ERROR(Exec(db, "PRAGMA foreign_keys=ON", "enable foreign keys"));
  ACCORD_RETURN_IF_ERROR(Exec(db, "PRAGMA secure_delete=ON", "enable secure delete"));
  // 64 MiB of page cache (SQLite's default is 2 MiB): random reads of a large home mostly hit it.
  ACCORD_RETURN_IF_ERROR(Exec(db, "PRAGMA cache_size=-65536", "set the cache size"));
  ACCORD_RETURN_IF_ERROR(
      Exec(db, options.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
           "set synchronous"));
  // Foreign keys are silently ignored by a library built without them: make sure they are on.
  ACCORD_ASSIGN_OR_RETURN(const std::optional<std::string> fk,
                          QueryText(db, "PRAGMA foreign_keys", "read foreign keys"));
  if (fk != "1") {
    return Fail(Code::kInternal, "sqlite: foreign keys could not be enabled");
  }
  return OkStatus();
}

// Reads the schema version: 0 for a database without our `meta` table.
Result<int> ReadSchemaVersion(sqlite3* db) {
  ACCORD_ASSIGN_OR_RETURN(
      const std::optional<std::string> has_meta,
      QueryText(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'",
                "read schema"));
  if (!has_meta.has_value()) {
    return 0;
  }
  ACCORD_ASSIGN_OR_RETURN(
      const std::optional<std::string> text,
      QueryText(db, "SELECT value FROM meta WHERE key = 'schema_version'", "read schema version"));
  int version = 0;
  if (!text.has_value() || text->empty()) {
    return OwnStateDamaged("no schema version");
  }
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), version);
  if (ec != std::errc() || end != text->data() + text->size() || version < 1) {
    return OwnStateDamaged("malformed schema version `" + *text + "`");
  }
  return version;
}

// kFailedPrecondition for a schema newer than this program knows.
Status CheckNotNewer(int version) {
  if (version > kStoreSchemaVersion) {
    return Fail(Code::kFailedPrecondition, "schema version " + std::to_string(version) +
                                               " is newer than this program's " +
                                               std::to_string(kStoreSchemaVersion));
  }
  return OkStatus();
}

Status MigrateLocked(sqlite3* db) {
  ACCORD_ASSIGN_OR_RETURN(const int version, ReadSchemaVersion(db));
  ACCORD_RETURN_IF_ERROR(CheckNotNewer(version));
  if (version == kStoreSchemaVersion) {
    return OkStatus();
  }
  for (int v = version; v < kStoreSchemaVersion; ++v) {
    const Migration& m = kMigrations[static_cast<size_t>(v)];
    ACCORD_RETURN_IF_ERROR(Exec(db, m.sql, "migrate to schema version " + std::to_string(v + 1)));
    if (m.code != nullptr) ACCORD_RETURN_IF_ERROR(m.code(db));
  }
  ACCORD_ASSIGN_OR_RETURN(const StmtPtr set,
                          Prepare(db,
                                  "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value"));
  const std::string version_text = std::to_string(kStoreSchemaVersion);
  BoundStatement st(db, set.get());
  st.BindText(1, kSchemaVersionKey);
  st.BindText(2, version_text);
  return st.Run("set schema version");
}

// Migrates inside one write transaction (reading the version again under the lock), so that two
// processes opening a new file at once migrate it once, and a failed migration leaves the file as
// it was. True when the checkpoint after a migration could not run, so that the store owes it.
Result<bool> Migrate(sqlite3* db) {
  // The common case, a current schema, needs only a read: no write lock, so opening does not wait
  // for another process's write transaction. Nor does a schema too new, refused at once.
  ACCORD_ASSIGN_OR_RETURN(const int version, ReadSchemaVersion(db));
  ACCORD_RETURN_IF_ERROR(CheckNotNewer(version));
  if (version == kStoreSchemaVersion) {
    return false;
  }
  ACCORD_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE", "begin migration"));
  Status result = MigrateLocked(db);
  if (result.has_value()) {
    result = Exec(db, "COMMIT", "commit migration");
  }
  if (!result.has_value() && sqlite3_get_autocommit(db) == 0) {
    (void)Exec(db, "ROLLBACK", "roll back migration");  // the first error is the one to report
  }
  if (!result.has_value()) {
    return tl::unexpected(std::move(result).error());
  }
  // A migration may erase (version 7): the pages it freed, zeroed in the WAL by secure_delete,
  // replace the old ones in the database file now. Best effort: another process's reader makes
  // it fail, and the store then owes it (retried after its next commit and at its close).
  return sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr) !=
         SQLITE_OK;
}

// --- the store ---

// Every statement the store runs, prepared once.
struct Statements {
  StmtPtr begin;
  StmtPtr begin_read;
  StmtPtr commit;
  StmtPtr rollback;
  StmtPtr savepoint;
  StmtPtr synchronous_normal;
  StmtPtr synchronous_full;
  StmtPtr release_savepoint;
  StmtPtr rollback_to_savepoint;
  StmtPtr get_meta;
  StmtPtr set_meta;
  StmtPtr insert_witnessing;
  StmtPtr latest_witnessing;
  StmtPtr witnessing_at_or_below;
  StmtPtr insert_object;
  StmtPtr get_object;
  StmtPtr list_objects;
  StmtPtr list_object_labels;
  StmtPtr update_sealed;
  StmtPtr reinstate_object_copy;
  StmtPtr erase_object_copy;
  StmtPtr insert_release;
  StmtPtr list_releases;
  StmtPtr insert_forward;
  StmtPtr list_forwards;
  StmtPtr insert_consent;
  StmtPtr list_consents;
  StmtPtr insert_reclassification;
  StmtPtr list_reclassifications;
  StmtPtr insert_destruction;
  StmtPtr list_destructions;
  StmtPtr insert_report;
  StmtPtr list_reports;
  StmtPtr insert_package;
  StmtPtr has_package;
  StmtPtr list_packages;
  StmtPtr list_orders;
  StmtPtr get_package;
  StmtPtr erase_package_payloads;
  StmtPtr cancel_object_deliveries;
  StmtPtr erase_outbox_payloads;
  StmtPtr insert_receipt;
  StmtPtr list_receipts;
  StmtPtr get_receipt;
  StmtPtr enqueue;
  StmtPtr enqueue_envelope;
  StmtPtr due_deliveries;
  StmtPtr list_outbox;
  StmtPtr list_outbox_all;
  StmtPtr count_outbox;
  StmtPtr list_undelivered;
  StmtPtr record_attempt;
  StmtPtr record_unreachable;
  StmtPtr mark_delivered;
  StmtPtr attempts_after;
  StmtPtr bring_forward_attempts;
  StmtPtr get_queued;
  StmtPtr get_queued_no_envelope;
  StmtPtr queued_for;
  StmtPtr pending_envelope;
  StmtPtr put_subject;
  StmtPtr get_subject;
  StmtPtr delete_subject;
  StmtPtr list_subjects;
  StmtPtr put_partner;
  StmtPtr get_partner;
  StmtPtr list_partners;
  StmtPtr insert_log_entry;
  StmtPtr insert_log_entries;  // kLogEntriesPerInsert rows
  StmtPtr insert_log_tile;
  StmtPtr log_size;
  StmtPtr read_log_entries;
  StmtPtr read_log_leaf_hashes;
  StmtPtr read_log_tile;   // one id
  StmtPtr read_log_tiles;  // kLogTilesPerQuery ids
  StmtPtr insert_evidence;
  StmtPtr list_evidence;
  StmtPtr keep_shown_checkpoint;
  StmtPtr list_shown_checkpoints;
  StmtPtr settle_shown_checkpoint;
  StmtPtr count_shown_checkpoints;
  StmtPtr largest_shown_above;
  StmtPtr shown_mark;
};

Result<Statements> PrepareAll(sqlite3* db) {
  Statements s;
  const auto prep = [db](StmtPtr& slot, std::string_view sql) -> Status {
    ACCORD_ASSIGN_OR_RETURN(slot, Prepare(db, sql));
    return OkStatus();
  };
  const std::string object_columns(kObjectColumns);
  ACCORD_RETURN_IF_ERROR(prep(s.begin, "BEGIN IMMEDIATE"));
  ACCORD_RETURN_IF_ERROR(prep(s.begin_read, "BEGIN DEFERRED"));
  ACCORD_RETURN_IF_ERROR(prep(s.commit, "COMMIT"));
  ACCORD_RETURN_IF_ERROR(prep(s.rollback, "ROLLBACK"));
  ACCORD_RETURN_IF_ERROR(prep(s.savepoint, "SAVEPOINT nested"));
  ACCORD_RETURN_IF_ERROR(prep(s.synchronous_normal, "PRAGMA synchronous=NORMAL"));
  ACCORD_RETURN_IF_ERROR(prep(s.synchronous_full, "PRAGMA synchronous=FULL"));
  ACCORD_RETURN_IF_ERROR(prep(s.release_savepoint, "RELEASE nested"));
  ACCORD_RETURN_IF_ERROR(prep(s.rollback_to_savepoint, "ROLLBACK TO nested"));
  ACCORD_RETURN_IF_ERROR(prep(s.get_meta, "SELECT value FROM meta WHERE key = ?1"));
  ACCORD_RETURN_IF_ERROR(
      prep(s.insert_witnessing,
           "INSERT INTO witnessings (origin, size, at) VALUES (?1, ?2, ?3) "
           "ON CONFLICT (origin, size) DO UPDATE SET at = max(at, excluded.at)"));
  ACCORD_RETURN_IF_ERROR(prep(s.latest_witnessing,
                              "SELECT size, at FROM witnessings WHERE origin = ?1 "
                              "ORDER BY size DESC LIMIT 1"));
  ACCORD_RETURN_IF_ERROR(prep(s.witnessing_at_or_below,
                              "SELECT size, at FROM witnessings WHERE origin = ?1 AND size <= ?2 "
                              "AND at <= ?3 ORDER BY size DESC LIMIT 1"));
  ACCORD_RETURN_IF_ERROR(prep(s.set_meta,
                              "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                              "ON CONFLICT (key) DO UPDATE SET value = excluded.value"));
  ACCORD_RETURN_IF_ERROR(prep(s.insert_object, "INSERT INTO objects (" + object_columns +
                                                   ") VALUES "
                                                   "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                                                   "?11, ?12, ?13)"));
  ACCORD_RETURN_IF_ERROR(
      prep(s.get_object, "SELECT " + object_columns + " FROM objects WHERE id = ?1"));
  ACCORD_RETURN_IF_ERROR(
      prep(s.list_objects, "SELECT " + object_columns + " FROM objects ORDER BY id"));
  // The columns of kObjectColumns with the sealed ones empty, then the ciphertext's length: no
  // payload is copied, though SQLite still walks its overflow pages to reach the columns after
  // it (decision 90).
  ACCORD_RETURN_IF_ERROR(
      prep(s.list_object_labels,
           "SELECT id, originator, level, topics, compartments, rel_to, "
           "version, X'', X'', created_at, destroyed_at, received_from, "
           "commitment, length(ciphertext) FROM objects WHERE id > ?1 ORDER BY id "
           "LIMIT ?2"));
  ACCORD_RETURN_IF_ERROR(prep(s.update_sealed,
                              "UPDATE objects SET level = ?2, version = ?3, ciphertext = ?4, "
                              "wrapped_key = ?5 WHERE id = ?1 AND destroyed_at IS NULL"));
  ACCORD_RETURN_IF_ERROR(prep(s.reinstate_object_copy,
                              "UPDATE objects SET level = ?2, version = ?3, ciphertext = ?4, "
                              "wrapped_key = ?5, created_at = ?6, received_from = ?7, "
                              "destroyed_at = NULL WHERE id = ?1"));
  ACCORD_RETURN_IF_ERROR(prep(s.erase_object_copy,
                              "UPDATE objects SET ciphertext = X'', wrapped_key = X'', "
                              "destroyed_at = ?2 WHERE id = ?1"));
  ACCORD_RETURN_IF_ERROR(prep(s.insert_release,
                              "INSERT INTO releases (object_id, to_party, at, agreement, level, "
                              "package_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_releases,
                              "SELECT object_id, to_party, at, agreement, level, package_id "
                              "FROM releases WHERE object_id = ?1 ORDER BY at, rowid"));
  ACCORD_RETURN_IF_ERROR(prep(s.insert_forward,
                              "INSERT INTO forwards (object_id, from_party, to_party, at, "
                              "agreement, package_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_forwards,
                              "SELECT object_id, from_party, to_party, at, agreement, package_id "
                              "FROM forwards WHERE object_id = ?1 ORDER BY at, rowid"));
  ACCORD_RETURN_IF_ERROR(prep(s.insert_consent,
                              "INSERT INTO consents (object_id, to_party, at, notice) "
                              "VALUES (?1, ?2, ?3, ?4)"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_consents,
                              "SELECT object_id, to_party, at, notice FROM consents "
                              "WHERE object_id = ?1 ORDER BY at, rowid"));
  ACCORD_RETURN_IF_ERROR(prep(s.insert_reclassification,
                              "INSERT INTO reclassifications (object_id, version, level, at, "
                              "notice) VALUES (?1, ?2, ?3, ?4, ?5)"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_reclassifications,
                              "SELECT object_id, version, level, at, notice FROM "
                              "reclassifications WHERE object_id = ?1 ORDER BY at, rowid"));
  ACCORD_RETURN_IF_ERROR(prep(s.insert_destruction,
                              "INSERT INTO destructions (object_id, at, scope, by_party, notice) "
                              "VALUES (?1, ?2, ?3, ?4, ?5)"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_destructions,
                              "SELECT object_id, at, scope, by_party, notice FROM destructions "
                              "WHERE object_id = ?1 ORDER BY at, rowid"));
  ACCORD_RETURN_IF_ERROR(prep(s.insert_report,
                              "INSERT INTO reports (object_id, by_party, at, kind, text, notice) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_reports,
                              "SELECT object_id, by_party, at, kind, text, notice FROM reports "
                              "WHERE object_id = ?1 ORDER BY at, rowid"));
  ACCORD_RETURN_IF_ERROR(prep(s.insert_package,
                              "INSERT INTO packages (id, kind, object_id, from_party, at, "
                              "received_at, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  ACCORD_RETURN_IF_ERROR(
      prep(s.has_package, "SELECT 1 FROM packages WHERE from_party = ?1 AND id = ?2"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_packages,
                              "SELECT id, kind, object_id, from_party, at, received_at, bytes "
                              "FROM packages WHERE object_id = ?1 ORDER BY rowid"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_orders,
                              "SELECT id, kind, object_id, from_party, at, received_at, bytes "
                              "FROM packages WHERE object_id = ?1 AND from_party = ?2 AND kind IN "
                              "('consent', 'reclassify', 'destroy') ORDER BY rowid"));
  ACCORD_RETURN_IF_ERROR(prep(s.get_package,
                              "SELECT id, kind, object_id, from_party, at, received_at, bytes "
                              "FROM packages WHERE from_party = ?1 AND id = ?2"));
  // A release or forward package holds the payload sealed under a data key wrapped to this
  // party: erased with the copy, or the copy could be opened again from it.
  // A destroyed copy's payload leaves no more: its releases and forwards not yet delivered are
  // given up, and the envelopes of all of them (ciphertext and wrapped key) erased.
  ACCORD_RETURN_IF_ERROR(
      prep(s.cancel_object_deliveries,
           "UPDATE outbox SET state = 2, done_us = ?2, last_error = 'the object was destroyed "
           "before delivery' WHERE object_id = ?1 AND kind IN ('release', 'forward') AND "
           "state = 0"));
  ACCORD_RETURN_IF_ERROR(prep(s.erase_outbox_payloads,
                              "UPDATE outbox_envelopes SET envelope = X'' WHERE seq IN (SELECT seq "
                              "FROM outbox WHERE object_id = ?1 AND kind IN ('release', "
                              "'forward'))"));
  ACCORD_RETURN_IF_ERROR(prep(s.erase_package_payloads,
                              "UPDATE packages SET bytes = X'' WHERE object_id = ?1 AND kind IN "
                              "('release', 'forward')"));
  ACCORD_RETURN_IF_ERROR(prep(s.insert_receipt,
                              "INSERT INTO receipts (package_id, from_party, by_party, at, bytes) "
                              "VALUES (?1, ?2, ?3, ?4, ?5)"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_receipts,
                              "SELECT package_id, from_party, by_party, at, bytes FROM receipts "
                              "ORDER BY at, rowid"));
  ACCORD_RETURN_IF_ERROR(prep(s.get_receipt,
                              "SELECT package_id, from_party, by_party, at, bytes FROM receipts "
                              "WHERE package_id = ?1 AND from_party = ?2 AND by_party = ?3"));
  ACCORD_RETURN_IF_ERROR(prep(s.enqueue,
                              "INSERT INTO outbox (id, to_party, kind, object_id, queued_us, "
                              "next_attempt_us) VALUES (?1, ?2, ?3, ?4, ?5, ?5)"));
  // A row left by an outbox row deleted by hand, whose seq SQLite then gives again, is replaced.
  ACCORD_RETURN_IF_ERROR(prep(s.enqueue_envelope,
                              "INSERT INTO outbox_envelopes (seq, envelope) VALUES (?1, ?2) "
                              "ON CONFLICT (seq) DO UPDATE SET envelope = excluded.envelope"));
  const std::string outbox_state_columns =
      "queued_us, attempts, next_attempt_us, last_error, state, done_us FROM outbox ";
  const std::string outbox_columns =
      "SELECT seq, id, to_party, kind, object_id, (SELECT envelope FROM outbox_envelopes e WHERE "
      "e.seq = outbox.seq), " +
      outbox_state_columns;
  const std::string outbox_columns_no_envelope =
      "SELECT seq, id, to_party, kind, object_id, X'', " + outbox_state_columns;
  // Strictly in queue order: nothing queued after an envelope that is not due yet (one backing
  // off from a failed attempt, as a restarted node finds it) is due either (decision 39). The
  // first such one is found in the index of pending envelopes by time (outbox_due).
  // ?1 the partner, ?2 the time; the limit's parameter follows.
  const std::string due_in_queue_order =
      "WHERE state = 0 AND to_party = ?1 AND next_attempt_us <= ?2 AND seq < "
      "(SELECT IFNULL(MIN(seq), 9223372036854775807) FROM outbox INDEXED BY outbox_due "
      "WHERE state = 0 AND to_party = ?1 AND next_attempt_us > ?2) ORDER BY seq LIMIT ";
  // The envelopes' bytes are not read here but by seq, once DueDeliveries has counted them
  // against its budget (their lengths come from the records' headers).
  ACCORD_RETURN_IF_ERROR(
      prep(s.due_deliveries,
           "SELECT seq, id, to_party, kind, object_id, X'', queued_us, attempts, next_attempt_us, "
           "last_error, state, done_us, (SELECT length(envelope) FROM outbox_envelopes e WHERE "
           "e.seq = outbox.seq) FROM outbox " +
               due_in_queue_order + "?3"));
  ACCORD_RETURN_IF_ERROR(
      prep(s.list_outbox, outbox_columns + "WHERE to_party = ?1 ORDER BY state != 0, seq"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_outbox_all, outbox_columns + "ORDER BY state != 0, seq"));
  ACCORD_RETURN_IF_ERROR(prep(s.count_outbox,
                              "SELECT to_party, state, COUNT(*) FROM outbox GROUP BY to_party, "
                              "state ORDER BY to_party"));
  // `state` is 0 or 2 here: ordered by it, the partial index gives the rows in order, and the
  // scan stops at the limit (`state != 0` would sort every undelivered row first).
  ACCORD_RETURN_IF_ERROR(
      prep(s.list_undelivered,
           outbox_columns_no_envelope + "WHERE state != 1 ORDER BY state, seq LIMIT ?1"));
  ACCORD_RETURN_IF_ERROR(prep(s.record_attempt,
                              "UPDATE outbox SET attempts = attempts + 1, last_error = ?3, "
                              "next_attempt_us = ?4, state = ?5, done_us = ?6 "
                              "WHERE id = ?1 AND to_party = ?2 AND state = 0"));
  // The envelopes due_deliveries lists, by the same rule.
  ACCORD_RETURN_IF_ERROR(
      prep(s.record_unreachable,
           "UPDATE outbox SET attempts = attempts + 1, last_error = ?3, next_attempt_us = ?4 "
           "WHERE seq IN (SELECT seq FROM outbox " +
               due_in_queue_order + "?5)"));
  ACCORD_RETURN_IF_ERROR(prep(s.attempts_after,
                              "SELECT 1 FROM outbox INDEXED BY outbox_due WHERE state = 0 AND "
                              "to_party = ?1 AND next_attempt_us > ?2 LIMIT 1"));
  ACCORD_RETURN_IF_ERROR(prep(s.bring_forward_attempts,
                              "UPDATE outbox SET next_attempt_us = ?2 "
                              "WHERE state = 0 AND to_party = ?1 AND next_attempt_us > ?2"));
  ACCORD_RETURN_IF_ERROR(prep(s.mark_delivered,
                              "UPDATE outbox SET state = 1, done_us = ?3 "
                              "WHERE id = ?1 AND to_party = ?2 AND state != 1"));
  ACCORD_RETURN_IF_ERROR(prep(s.get_queued, outbox_columns + "WHERE id = ?1 AND to_party = ?2"));
  ACCORD_RETURN_IF_ERROR(prep(s.get_queued_no_envelope,
                              outbox_columns_no_envelope + "WHERE id = ?1 AND to_party = ?2"));
  ACCORD_RETURN_IF_ERROR(
      prep(s.queued_for, "SELECT to_party FROM outbox WHERE id = ?1 ORDER BY seq"));
  ACCORD_RETURN_IF_ERROR(
      prep(s.pending_envelope,
           // A pending row whose bytes are missing (a damaged store) gives an empty envelope,
           // which the federation's check of its own signature gives up (decision #97), rather
           // than no row, which would read as delivered since and hold the rest of its queue.
           "SELECT e.envelope FROM outbox o LEFT JOIN outbox_envelopes e ON e.seq = o.seq WHERE "
           "o.seq = ?1 AND o.state = 0"));
  ACCORD_RETURN_IF_ERROR(prep(s.put_subject,
                              "INSERT INTO subjects (id, clearance, need_to_know, compartments) "
                              "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET "
                              "clearance = excluded.clearance, need_to_know = "
                              "excluded.need_to_know, compartments = excluded.compartments"));
  ACCORD_RETURN_IF_ERROR(prep(s.get_subject,
                              "SELECT id, clearance, need_to_know, compartments FROM subjects "
                              "WHERE id = ?1"));
  ACCORD_RETURN_IF_ERROR(prep(s.delete_subject, "DELETE FROM subjects WHERE id = ?1"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_subjects,
                              "SELECT id, clearance, need_to_know, compartments FROM subjects "
                              "ORDER BY id"));
  ACCORD_RETURN_IF_ERROR(prep(s.put_partner,
                              "INSERT INTO partners (party, sign_public, wrap_public) "
                              "VALUES (?1, ?2, ?3) ON CONFLICT (party) DO UPDATE SET "
                              "sign_public = excluded.sign_public, "
                              "wrap_public = excluded.wrap_public"));
  ACCORD_RETURN_IF_ERROR(prep(s.get_partner,
                              "SELECT party, sign_public, wrap_public FROM partners "
                              "WHERE party = ?1"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_partners,
                              "SELECT party, sign_public, wrap_public FROM partners "
                              "ORDER BY party"));
  ACCORD_RETURN_IF_ERROR(prep(
      s.insert_log_entry, "INSERT INTO log_entries (idx, entry, leaf_hash) VALUES (?1, ?2, ?3)"));
  {
    std::string sql = "INSERT INTO log_entries (idx, entry, leaf_hash) VALUES ";
    for (size_t k = 0; k < kLogEntriesPerInsert; ++k) {
      sql += (k == 0 ? "(?" : ", (?") + std::to_string(3 * k + 1) + ", ?" +
             std::to_string(3 * k + 2) + ", ?" + std::to_string(3 * k + 3) + ")";
    }
    ACCORD_RETURN_IF_ERROR(prep(s.insert_log_entries, sql));
  }
  ACCORD_RETURN_IF_ERROR(
      prep(s.insert_log_tile, "INSERT INTO log_tiles (id, hashes) VALUES (?1, ?2)"));
  ACCORD_RETURN_IF_ERROR(prep(s.read_log_leaf_hashes,
                              "SELECT idx, leaf_hash FROM log_entries WHERE idx >= ?1 AND "
                              "idx < ?2 ORDER BY idx"));
  ACCORD_RETURN_IF_ERROR(prep(s.log_size, "SELECT coalesce(max(idx) + 1, 0) FROM log_entries"));
  ACCORD_RETURN_IF_ERROR(prep(s.read_log_entries,
                              "SELECT idx, entry FROM log_entries WHERE idx >= ?1 AND idx < ?2 "
                              "ORDER BY idx"));
  {
    // A rowid IN list is one point lookup per id; unused ids are bound to -1.
    std::string sql = "SELECT id, hashes FROM log_tiles WHERE id IN (";
    for (size_t k = 0; k < kLogTilesPerQuery; ++k) {
      sql += (k == 0 ? "?" : ", ?") + std::to_string(k + 1);
    }
    ACCORD_RETURN_IF_ERROR(prep(s.read_log_tiles, sql + ")"));
    ACCORD_RETURN_IF_ERROR(prep(s.read_log_tile, "SELECT id, hashes FROM log_tiles WHERE id = ?1"));
  }
  ACCORD_RETURN_IF_ERROR(prep(s.insert_evidence,
                              "INSERT INTO log_evidence (origin, earlier, later, reason, at) "
                              "VALUES (?1, ?2, ?3, ?4, ?5)"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_evidence,
                              "SELECT origin, earlier, later, reason, at FROM log_evidence "
                              "ORDER BY at, rowid"));
  ACCORD_RETURN_IF_ERROR(prep(s.keep_shown_checkpoint,
                              "INSERT INTO shown_checkpoints (origin, size, root, note, at) "
                              "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING"));
  ACCORD_RETURN_IF_ERROR(prep(s.list_shown_checkpoints,
                              "SELECT origin, size, root, note, at, seq FROM shown_checkpoints "
                              "WHERE origin = ?1 AND size <= ?2 AND state = 0 "
                              "ORDER BY size, root LIMIT ?3"));
  ACCORD_RETURN_IF_ERROR(prep(s.settle_shown_checkpoint,
                              "UPDATE shown_checkpoints SET state = ?4, note = '' "
                              "WHERE origin = ?1 AND size = ?2 AND root = ?3 AND state = 0"));
  ACCORD_RETURN_IF_ERROR(
      prep(s.count_shown_checkpoints,
           "SELECT count(*) FROM shown_checkpoints WHERE origin = ?1 AND state = 0"));
  ACCORD_RETURN_IF_ERROR(prep(s.largest_shown_above,
                              "SELECT origin, size, root, note, at, seq FROM shown_checkpoints "
                              "WHERE origin = ?1 AND size > ?2 AND state = 0 AND seq <= ?3 "
                              "ORDER BY size DESC LIMIT 1"));
  ACCORD_RETURN_IF_ERROR(prep(s.shown_mark, "SELECT coalesce(max(seq), 0) FROM shown_checkpoints"));
  return s;
}

// Reads all rows of `st` through `read(st)` (which returns Result<T>).
template <typename T, typename ReadRow>
Result<std::vector<T>> Collect(BoundStatement& st, std::string_view action, std::string_view key,
                               ReadRow read) {
  std::vector<T> rows;
  while (true) {
    ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step(action, key));
    if (!row) {
      return rows;
    }
    ACCORD_ASSIGN_OR_RETURN(T value, read(st));
    rows.push_back(std::move(value));
  }
}

Result<ObjectRecord> ReadObject(const BoundStatement& st) {
  ObjectRecord o;
  o.id = st.ColumnText(0);
  o.originator = st.ColumnText(1);
  o.level = st.ColumnText(2);
  auto topics = DecodeStringList(st.ColumnText(3));
  auto compartments = DecodeStringList(st.ColumnText(4));
  auto rel_to = DecodeStringList(st.ColumnText(5));
  if (!topics.has_value()) {
    return Corrupt("topics", o.id);
  }
  if (!compartments.has_value()) {
    return Corrupt("compartments", o.id);
  }
  if (!rel_to.has_value()) {
    return Corrupt("rel_to", o.id);
  }
  o.topics = std::move(*topics);
  o.compartments = std::move(*compartments);
  o.rel_to = std::move(*rel_to);
  o.version = st.ColumnInt(6);
  o.ciphertext = st.ColumnBlob(7);
  o.wrapped_key = st.ColumnBlob(8);
  o.created_at = Instant{st.ColumnInt(9)};
  if (!st.ColumnIsNull(10)) {
    o.destroyed_at = Instant{st.ColumnInt(10)};
  }
  o.received_from = st.ColumnText(11);
  o.commitment = st.ColumnText(12);
  return o;
}

Result<SubjectRecord> ReadSubject(const BoundStatement& st) {
  SubjectRecord s;
  s.id = st.ColumnText(0);
  s.clearance = st.ColumnText(1);
  auto need_to_know = DecodeStringList(st.ColumnText(2));
  auto compartments = DecodeStringList(st.ColumnText(3));
  if (!need_to_know.has_value()) {
    return Corrupt("need_to_know", s.id);
  }
  if (!compartments.has_value()) {
    return Corrupt("compartments", s.id);
  }
  s.need_to_know = std::move(*need_to_know);
  s.compartments = std::move(*compartments);
  return s;
}

Result<PartnerRecord> ReadPartner(const BoundStatement& st) {
  PartnerRecord p;
  p.party = st.ColumnText(0);
  const ByteView sign = st.ColumnBlobView(1);
  // Every envelope of the partner needs its keys: damage to this node's own state, not to one
  // record (decision #186).
  if (sign.size() != p.sign_public.size()) {
    return tl::unexpected(OwnState(Corrupt("signing key", p.party).value()));
  }
  std::copy(sign.begin(), sign.end(), p.sign_public.begin());
  const ByteView wrap = st.ColumnBlobView(2);
  if (wrap.size() != p.wrap_public.size()) {
    return tl::unexpected(OwnState(Corrupt("wrapping key", p.party).value()));
  }
  std::copy(wrap.begin(), wrap.end(), p.wrap_public.begin());
  return p;
}

// The one T of the database file at `path` (by device and inode, however it is named) among this
// process's connections to it: made by `make(st)` for the first, kept while any of them holds it.
// `st` is the file's stat, or nullptr when it cannot be read (the T is then not shared).
template <typename T, typename Make>
std::shared_ptr<T> OfFile(const std::string& path, Make make) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return make(nullptr);
  static std::mutex registry_mu;
  static std::map<std::pair<dev_t, ino_t>, std::weak_ptr<T>> registry;
  std::lock_guard lock(registry_mu);
  std::weak_ptr<T>& slot = registry[{st.st_dev, st.st_ino}];
  std::shared_ptr<T> shared = slot.lock();
  if (!shared) {
    shared = make(&st);
    slot = shared;
  }
  return shared;
}

// A message set once and read often: the first Keep wins, and Kept reads it without a lock
// until then.
class FirstMessage {
 public:
  void Keep(std::string message) {
    std::lock_guard lock(mu_);
    if (set_.load(std::memory_order_relaxed)) return;
    message_ = std::move(message);
    set_.store(true, std::memory_order_release);
  }

  bool IsSet() const { return set_.load(std::memory_order_acquire); }

  // The message kept; nullopt while none was.
  std::optional<std::string> Kept() const {
    if (!IsSet()) return std::nullopt;
    std::lock_guard lock(mu_);
    return message_;
  }

 private:
  mutable std::mutex mu_;
  std::atomic<bool> set_{false};
  std::string message_;  // GUARDED_BY(mu_); set once, before set_
};

// The turns at one database's write lock among this process's connections to it, first come
// first served. SQLite's lock has no queue: a connection that waits polls it (BusyHandler), and
// one that commits back to back (a server's node thread) can take it again before the poller
// looks, for as long as its stream of writes lasts (the federation's receipts then waited tens
// of milliseconds). Connections of other processes still meet only SQLite's lock.
class WriteTurns {
 public:
  // The queue of the database file at `path` (by device and inode, however it is named),
  // shared by every connection of this process to it.
  static std::shared_ptr<WriteTurns> Of(const std::string& path) {
    return OfFile<WriteTurns>(path,
                              [](const struct stat*) { return std::make_shared<WriteTurns>(); });
  }

  // Waits for this caller's turn, at most `timeout`; false when it did not come.
  bool Take(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    const uint64_t ticket = next_ticket_++;
    queue_.push_back(ticket);
    if (cv_.wait_for(lock, timeout, [&] { return queue_.front() == ticket; })) return true;
    std::erase(queue_, ticket);
    cv_.notify_all();  // the caller behind may now be first
    return false;
  }

  void Give() {
    {
      std::lock_guard lock(mu_);
      queue_.pop_front();
    }
    cv_.notify_all();
  }

  // Once a sync of the file failed, no connection of this process writes to it again. Linux
  // reports a write lost in writeback once to each descriptor open when it was lost, and never
  // to one opened after: a later sync, on a descriptor that saw the report already or opened
  // since, succeeds without those pages. A commit acknowledged after it could then be gone
  // after a crash, with the frames before it (SQLite's recovery stops at the first frame that
  // does not check), though a partner may hold its receipt. Only once every connection of the
  // process to the file is closed (a restart, in practice), the next open recovering the -wal
  // file from what reached the disk, are writes made again. `refusal` is what every later write
  // is told (the first one is kept).
  void StopWrites(std::string refusal) { refusal_.Keep(std::move(refusal)); }

  // StopWrites when the statement of `db` that returned `rc` failed in a sync of the file's
  // (SQLITE_IOERR_FSYNC: a commit's, or a checkpoint's of either file).
  void StopIfSyncFailed(sqlite3* db, int rc, const std::string& path) {
    if (rc == SQLITE_OK || sqlite3_extended_errcode(db) != SQLITE_IOERR_FSYNC) return;
    StopWrites(SyncFailedRefusal(path, sqlite3_errstr(SQLITE_IOERR_FSYNC)));
  }

  bool Stopped() const { return refusal_.IsSet(); }

  // Damage to the file's contents that a connection of this process found (Error::own_state):
  // the first is kept, until every connection of the process to the file is closed.
  void NoteDamage(const Error& e) {
    if (e.own_state) damage_.Keep(e.message);
  }

  // The first damage noted; nullopt while none was.
  std::optional<std::string> Damage() const { return damage_.Kept(); }

  // Why writes stopped; nullopt while they go on.
  std::optional<std::string> Refusal() const { return refusal_.Kept(); }

  // A commit of this process did not sync (TransactUnsynced): the -wal file may hold committed
  // frames that are not on disk. Never cleared (a SyncCommits that succeeds would allow it),
  // which is only stricter.
  void NoteUnsyncedCommit() { unsynced_commits_.store(true, std::memory_order_relaxed); }

  // Whether a checkpoint may copy the -wal file into the database. Not once writes stopped
  // after commits that never synced: a frame whose write was lost would be read back from the
  // disk as it was before, and copied over a sound page, with no checksum to tell (recovery, at
  // the next open, checks every frame). After a failed sync of synced commits only (a command's,
  // or a commit's own), the frames a checkpoint copies are on disk already.
  bool MayCheckpoint() const {
    return !Stopped() || !unsynced_commits_.load(std::memory_order_relaxed);
  }

  // SQLite's commit hook, on every connection of the process to the file: a commit that did not
  // come through SqliteStore::TransactNow (a statement run on its own) is turned into a
  // rollback once writes stopped.
  static int VetoCommit(void* self) { return static_cast<WriteTurns*>(self)->Stopped() ? 1 : 0; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_ticket_ = 0;                   // GUARDED_BY(mu_)
  std::deque<uint64_t> queue_;                 // GUARDED_BY(mu_); the front holds the turn
  FirstMessage refusal_;                       // set once writes stopped
  std::atomic<bool> unsynced_commits_{false};  // ever, in this process
  FirstMessage damage_;                        // the first damage to the file found
};

// Copies the -wal file into the database on a thread of its own, so that no commit waits for a
// checkpoint. SQLite's automatic checkpoint runs inside the commit that takes the -wal file past
// 1,000 pages: that commit copies them and syncs the database file, milliseconds on this disk,
// which made the slowest percent of every kind of commit (docs/decisions.md #50). Started by the
// first commit that crosses the threshold, with a connection of its own.
//
// A PASSIVE checkpoint neither waits for nor blocks the writers, and the -wal file is rewound
// (the next commit overwrites it from its start) once a checkpoint has copied every frame. Under
// a writer that commits thousands of times a second, a PASSIVE run rarely catches up: they then
// ran after every commit (125 runs and 250 syncs a second under reads from 8 clients) while the
// file grew. So after kPassiveRunsBehind PASSIVE runs that each left the file to grow, the next
// run is a RESTART (decision #65): it takes the write lock between two commits, copies the few
// frames added since the last run, syncs, and rewinds the file. Commits wait for it for its two
// syncs, a few times a second under such load; under lighter load (releases) the PASSIVE runs
// mostly keep up and commits seldom wait. The RESTART waits only briefly for the lock
// (kLockWaitMs): when it cannot have it (back-to-back commits, or a reader of an older snapshot,
// which it would otherwise wait for while holding the write lock), it copies what it can as a
// PASSIVE run would, and the runs of the next kPassiveFor stay PASSIVE, so that a long reader
// cannot make the commits wait again and again. A checkpoint that fails (another process holds a
// lock) is retried after the next commit. Should the thread not start or not open its
// connection, the commits checkpoint themselves, as SQLite's own hook does.
class Checkpointer {
 public:
  static constexpr int kFrames = 1000;  // SQLite's automatic threshold
  // PASSIVE runs in a row, each woken by a commit that found the file not rewound, before a
  // RESTART.
  static constexpr int kPassiveRunsBehind = 3;
  // How long a RESTART waits for the write lock, and then for the readers of older snapshots.
  static constexpr int kLockWaitMs = 2;
  // Runs are PASSIVE for this long after a RESTART that could not finish.
  static constexpr std::chrono::milliseconds kPassiveFor{100};
  // The thread's name (at most 15 characters).
  static constexpr const char* kThreadName = "accord-ckpt";

  // `file`: the stat of the file at `path` when the first connection opened it (nullptr: not
  // known), so that the thread checkpoints that file, not another one put at its name since.
  // `turns`: those of the same file, which say when a checkpoint may no longer run.
  Checkpointer(std::string path, const struct stat* file, std::shared_ptr<WriteTurns> turns)
      : path_(std::move(path)), turns_(std::move(turns)) {
    if (file != nullptr) file_ = std::pair(file->st_dev, file->st_ino);
  }
  // The checkpointer of the database file at `path`, one for all of this process's connections to
  // it (a server's and its federation's): two would run their checkpoints side by side, each
  // with its thread, its connection and its syncs.
  static std::shared_ptr<Checkpointer> Of(const std::string& path,
                                          std::shared_ptr<WriteTurns> turns) {
    return OfFile<Checkpointer>(path, [&](const struct stat* file) {
      return std::make_shared<Checkpointer>(path, file, std::move(turns));
    });
  }
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;
  ~Checkpointer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  // The -wal file holds `frames` pages after a commit (sqlite3_wal_hook, on the writer's thread).
  static int OnCommit(void* self, sqlite3* db, const char* schema, int frames) {
    auto* checkpointer = static_cast<Checkpointer*>(self);
    if (frames >= kFrames && !checkpointer->Nudge() && checkpointer->turns_->MayCheckpoint()) {
      // No thread to do it (none could start, or it could not open the file): checkpoint here,
      // as SQLite would have.
      checkpointer->turns_->StopIfSyncFailed(db, sqlite3_wal_checkpoint(db, schema),
                                             checkpointer->path_);
    }
    return SQLITE_OK;
  }

 private:
  // Wakes the thread, starting it the first time; false if it cannot run. Called from SQLite, so
  // it must not throw.
  bool Nudge() noexcept {
    {
      std::lock_guard lock(mu_);
      if (failed_) return false;
      due_ = true;
      if (!thread_.joinable()) {
        try {
          thread_ = std::thread([this] { Run(); });
        } catch (...) {  // std::system_error, or std::bad_alloc for the thread's state
          return false;
        }
      }
    }
    cv_.notify_one();
    return true;
  }

  void Run() {
    pthread_setname_np(pthread_self(), kThreadName);  // for ps, perf and the tests
    // The file at the name before and after the open is the one this checkpointer serves.
    const auto at_name_is_served = [this] {
      struct stat st {};
      return !file_ ||
             (::stat(path_.c_str(), &st) == 0 && std::pair(st.st_dev, st.st_ino) == *file_);
    };
    const bool before = at_name_is_served();
    sqlite3* raw = nullptr;
    sqlite3_open_v2(path_.c_str(), &raw,
                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, nullptr);
    DbPtr db(raw);
    const bool same_file = before && at_name_is_served();
    // FULL: the checkpoint syncs the -wal file before copying it, and the database after.
    if (db == nullptr || !same_file ||
        sqlite3_exec(db.get(), "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr) != SQLITE_OK) {
      std::lock_guard lock(mu_);
      failed_ = true;  // the commits checkpoint themselves from now on
      return;
    }
    SetBusyWait(db.get(), kLockWaitMs);
    // PASSIVE runs in a row, each finding the file not rewound since the one before.
    int behind = 0;
    int last_log = 0;  // the file's frames at the last run
    auto passive_until = std::chrono::steady_clock::time_point::min();
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return due_ || stop_; });
      if (stop_) return;
      if (!turns_->MayCheckpoint()) {
        due_ = false;  // writes stopped: no commit wakes it again
        continue;
      }
      lock.unlock();
      const auto now = std::chrono::steady_clock::now();
      const bool restart = behind >= kPassiveRunsBehind && now >= passive_until;
      int log = 0;
      const int rc = sqlite3_wal_checkpoint_v2(
          db.get(), nullptr, restart ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE, &log,
          nullptr);
      // It syncs the -wal file before it copies it, and the database after: the first to see a
      // write lost may be one of those.
      turns_->StopIfSyncFailed(db.get(), rc, path_);
      if (restart) {
        behind = 0;
        if (rc == SQLITE_BUSY) passive_until = now + kPassiveFor;
      } else if (log >= 0) {  // -1: the run could not start (another checkpoint was running)
        behind = log >= last_log ? behind + 1 : 0;  // fewer frames: rewound since the last run
      }
      if (log >= 0) last_log = log;
      lock.lock();
      // The nudges of the commits during the run: the next commit tells whether it rewound.
      due_ = false;
    }
  }

  const std::string path_;
  const std::shared_ptr<WriteTurns> turns_;
  std::optional<std::pair<dev_t, ino_t>> file_;  // the file served (constructor)
  std::mutex mu_;
  std::condition_variable cv_;
  bool due_ = false;     // GUARDED_BY(mu_)
  bool stop_ = false;    // GUARDED_BY(mu_)
  bool failed_ = false;  // GUARDED_BY(mu_); the thread could not open its connection
  std::thread thread_;   // GUARDED_BY(mu_); started by the first Nudge
};

class SqliteStore final : public Store {
 public:
  // `checkpoint_owed`: the checkpoint after a migration could not run. `wal_fd`: a descriptor of
  // the connection's -wal file, which the store closes.
  SqliteStore(DbPtr db, Statements statements, const SqliteOptions& options, std::string path,
              bool checkpoint_owed, int wal_fd)
      : db_(std::move(db)),
        s_(std::move(statements)),
        busy_timeout_ms_(options.busy_timeout_ms),
        synchronous_full_(options.synchronous_full),
        sync_file_(options.sync_file_for_testing),
        path_(path),
        wal_path_(path + "-wal"),
        write_turns_(WriteTurns::Of(path)),
        damage_watch_(db_.get(),
                      [turns = write_turns_.get()](const Error& e) { turns->NoteDamage(e); }),
        checkpointer_(Checkpointer::Of(path, write_turns_)),
        wal_fd_(wal_fd),
        checkpoint_owed_(checkpoint_owed) {
    // Replaces SQLite's automatic checkpoint (itself a WAL hook).
    sqlite3_wal_hook(db_.get(), &Checkpointer::OnCommit, checkpointer_.get());
    sqlite3_commit_hook(db_.get(), &SqliteStore::VetoCommit, this);
  }
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;
  ~SqliteStore() override {
    // A checkpoint owed by an erase that could not run earlier (another process was reading:
    // a node that serves this home). The debt lives in this connection only, so it is paid now,
    // waiting for the other process's readers and writer as long as the busy timeout allows,
    // not left to a later erase: until then the erased bytes would stay in the -wal file.
    // SQLite's busy handler waits for readers and the writer, but not for another checkpoint
    // (SQLITE_BUSY at once): a node's checkpointer runs them often under load, and so may this
    // process's, which goes first. Hence the retries, within the busy timeout.
    sqlite3_wal_hook(db_.get(), nullptr, nullptr);
    sqlite3_commit_hook(db_.get(), nullptr, nullptr);
    checkpointer_.reset();
    if (!write_turns_->MayCheckpoint()) {
      // Nor as the last connection closes: the next process recovers the -wal file instead,
      // checking every frame (WriteTurns::MayCheckpoint).
      sqlite3_db_config(db_.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    } else if (checkpoint_owed_) {
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms_);
      while (sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                                       nullptr) == SQLITE_BUSY &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    ::close(wal_fd_);
  }

  Status Transact(const std::function<Status()>& body) override {
    if (synchronous_deferred_ && !in_transaction_) {
      ACCORD_RETURN_IF_ERROR(RunOnce(s_.synchronous_full.get(), "restore synchronous commits"));
      synchronous_deferred_ = false;
    }
    return TransactNow(body);
  }

  Status TransactNow(const std::function<Status()>& body) {
    if (in_read_snapshot_) {
      return Fail(Code::kFailedPrecondition, "a read snapshot cannot write");
    }
    if (in_transaction_) {
      return Nested(body);
    }
    ACCORD_RETURN_IF_ERROR(CheckWritable());
    if (!write_turns_->Take(std::chrono::milliseconds(busy_timeout_ms_))) {
      return Fail(Code::kUnavailable,
                  "sqlite: begin transaction: another connection of this process held the "
                  "database for " +
                      std::to_string(busy_timeout_ms_) + " ms");
    }
    struct GiveBack {
      WriteTurns& turns;
      ~GiveBack() { turns.Give(); }  // after the commit or the rollback, whichever ends it
    } give_back{*write_turns_};
    ACCORD_RETURN_IF_ERROR(CheckWritable());  // stopped by the turn before, whose sync failed
    if (synchronous_deferred_ || !synchronous_full_) {
      write_turns_->NoteUnsyncedCommit();  // before the commit: a failed sync may follow it
    }
    {
      BoundStatement begin(db_.get(), s_.begin.get());
      ACCORD_RETURN_IF_ERROR(begin.Run("begin transaction"));
    }
    in_transaction_ = true;
    Status result = RunBody(body);
    if (result.has_value() && sqlite3_get_autocommit(db_.get()) != 0) {
      // An error the body did not pass on (a group's request answered with it) made SQLite roll
      // the whole transaction back; VetoCommit kept any later write from committing alone.
      result = Fail(Code::kUnavailable, "`" + path_ +
                                            "`: sqlite: an error within the transaction made "
                                            "SQLite roll it back, nothing of it is stored");
    }
    if (result.has_value() && nested_undo_failed_) {
      result = Fail(Code::kUnavailable,
                    "sqlite: a failed nested transaction could not be undone, so the whole "
                    "transaction is rolled back");
    }
    nested_undo_failed_ = false;
    if (result.has_value()) {
      BoundStatement commit(db_.get(), s_.commit.get());
      committing_ = true;
      result = commit.Run("commit");
      committing_ = false;
      if (!result.has_value()) {
        // A full or failing disk, most likely: the one message a command prints, so it names
        // the file and what became of the transaction.
        result.error().message = "`" + path_ + "`: " + result.error().message;
        const int rc = sqlite3_extended_errcode(db_.get());
        if ((rc & 0xff) == SQLITE_IOERR && rc != SQLITE_IOERR_CORRUPTFS) {
          // A failing disk, not a bug (kInternal): a server answers 503, as it does a full
          // disk's and, after a failed sync, every later write's until it restarts.
          result.error().code = Code::kUnavailable;
        }
        if (rc == SQLITE_CONSTRAINT_COMMITHOOK) {
          result = CheckWritable();  // a sync failed while this transaction ran
        } else if ((rc & 0xff) == SQLITE_FULL || rc == SQLITE_IOERR_WRITE) {
          // A write that failed: the commit's frame is not whole, so no recovery takes it.
          result.error().message += ": the transaction is rolled back, nothing of it is stored";
        } else {
          // Most likely its sync failed. SQLite syncs a new -wal file's header, then writes
          // every frame, the commit's last, and syncs again: after the second, the commit is
          // not made in this process, but its frames are in the file, where the next open's
          // recovery may find them whole. (A failed sync of the directory is ignored.)
          write_turns_->StopIfSyncFailed(db_.get(), rc, path_);
          result.error().message +=
              ": the transaction is not committed now, but the next open of the store may find "
              "it committed";
        }
      }
    }
    if (!result.has_value()) {
      Rollback();
    }
    in_transaction_ = false;
    if (result.has_value() && checkpoint_owed_) {
      CheckpointBestEffort();
    }
    return result;
  }

  Status TransactUnsynced(const std::function<Status()>& body) override {
    if (in_transaction_ || in_read_snapshot_ || !synchronous_full_) {
      return Transact(body);  // nested: durable with the outer one; or never synced anyway
    }
    // synchronous=NORMAL for this commit only: in WAL mode the commit writes its frames to the
    // -wal file and does not fsync it (SQLite keeps the database consistent either way).
    ACCORD_RETURN_IF_ERROR(RunOnce(s_.synchronous_normal.get(), "defer the commit's sync"));
    synchronous_deferred_ = true;
    Status result = TransactNow(body);
    // Should this fail, Transact retries it first, and fails until it succeeds.
    if (RunOnce(s_.synchronous_full.get(), "restore synchronous commits").has_value()) {
      synchronous_deferred_ = false;
    }
    return result;
  }

  Status SyncCommits() override {
    // fdatasync on a descriptor of our own, opened with the store: Linux writes back the file's
    // data whichever descriptor wrote it, so this does not touch the connection, which another
    // thread may be using. The -wal file lives, and keeps its inode, as long as a connection to
    // the database is open (this one): SQLite rewinds it, and removes it only as the last closes.
    std::lock_guard lock(wal_mu_);
    ACCORD_RETURN_IF_ERROR(CheckWritable());
    if ((sync_file_ != nullptr ? sync_file_(wal_fd_) : ::fdatasync(wal_fd_)) != 0) {
      // Every later sync and write fails too (WriteTurns::StopWrites), and no read waiting for
      // one is answered, until a restart.
      const std::string why = std::strerror(errno);
      write_turns_->StopWrites(SyncFailedRefusal(path_, why));
      return Fail(Code::kUnavailable, "cannot sync `" + wal_path_ + "`: " + why);
    }
    return OkStatus();
  }

  Status CheckWritable() override {
    std::optional<std::string> refusal = write_turns_->Refusal();
    if (!refusal) return OkStatus();
    return Fail(Code::kUnavailable, std::move(*refusal));
  }

  Status CheckIntact() override {
    std::optional<std::string> damage = write_turns_->Damage();
    if (!damage) return OkStatus();
    return OwnStateDamaged("`" + path_ + "` was found damaged since the node opened it (" +
                           *damage +
                           "): check the log with `accord log verify` and the database with "
                           "`PRAGMA integrity_check`, repair them or restore a backup, and "
                           "restart the node");
  }

  void NoteDamage(const Error& e) override { write_turns_->NoteDamage(e); }

  // A transaction inside another is a savepoint: its body's failure undoes its own changes only,
  // and its changes become durable when the outermost transaction commits.
  Status Nested(const std::function<Status()>& body) {
    if (sqlite3_get_autocommit(db_.get()) != 0) {
      // SQLite rolled the outer transaction back by itself (below): a SAVEPOINT now would start
      // a transaction of its own, committed on its own, and the body must not run outside the
      // outer one.
      return Fail(Code::kUnavailable, "the transaction was rolled back");
    }
    {
      BoundStatement savepoint(db_.get(), s_.savepoint.get());
      ACCORD_RETURN_IF_ERROR(savepoint.Run("begin a nested transaction"));
    }
    Status result = RunBody(body);
    if (sqlite3_get_autocommit(db_.get()) != 0) {
      // SQLite rolled the whole transaction back by itself (an I/O error, SQLITE_FULL): the
      // outermost commit fails too, since no transaction is active.
      return result.has_value() ? Fail(Code::kUnavailable, "the transaction was rolled back")
                                : result;
    }
    if (!result.has_value()) {
      BoundStatement rollback(db_.get(), s_.rollback_to_savepoint.get());
      // `result` is the error to report; should the undo itself fail, the body's partial changes
      // must not commit with the outer transaction, which then fails as a whole.
      if (!rollback.Run("roll back a nested transaction").has_value()) nested_undo_failed_ = true;
    }
    BoundStatement release(db_.get(), s_.release_savepoint.get());
    Status released = release.Run("end a nested transaction");
    return result.has_value() ? released : result;
  }

  Status ReadSnapshot(const std::function<Status()>& body) override {
    if (in_transaction_ || in_read_snapshot_) {
      return RunBody(body);
    }
    {
      BoundStatement begin(db_.get(), s_.begin_read.get());
      ACCORD_RETURN_IF_ERROR(begin.Run("begin read"));
    }
    in_read_snapshot_ = true;
    Status result = RunBody(body);
    if (result.has_value()) {
      // Ends the read (nothing to write) and releases its locks.
      BoundStatement end(db_.get(), s_.commit.get());
      result = end.Run("end read");
    }
    // A body that failed keeps nothing, were it to have written despite AppendLog's refusal; and
    // a COMMIT that failed may have left the transaction open.
    Rollback();
    in_read_snapshot_ = false;
    return result;
  }

  Status SetMeta(const std::string& key, const std::string& value) override {
    if (key == kSchemaVersionKey) {
      return Fail(Code::kInvalidArgument, "meta key `" + key + "` is reserved");
    }
    BoundStatement st(db_.get(), s_.set_meta.get());
    st.BindText(1, key);
    st.BindText(2, value);
    return st.Run("set meta", key);
  }

  Result<std::optional<std::string>> GetMeta(const std::string& key) override {
    BoundStatement st(db_.get(), s_.get_meta.get());
    st.BindText(1, key);
    ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("get meta", key));
    if (!row) {
      return std::nullopt;
    }
    return st.ColumnText(0);
  }

  Status InsertWitnessing(const WitnessingRecord& w) override {
    BoundStatement st(db_.get(), s_.insert_witnessing.get());
    st.BindText(1, w.origin);
    st.BindInt(2, static_cast<int64_t>(std::min<uint64_t>(w.size, INT64_MAX)));
    st.BindInt(3, w.at.micros);
    return st.Run("insert witnessing", w.origin);
  }

  Result<std::optional<WitnessingRecord>> LatestWitnessing(const std::string& origin) override {
    BoundStatement st(db_.get(), s_.latest_witnessing.get());
    st.BindText(1, origin);
    return OneWitnessing(st, origin);
  }

  Result<std::optional<WitnessingRecord>> WitnessingAtOrBelow(const std::string& origin,
                                                              uint64_t index,
                                                              Instant not_after) override {
    BoundStatement st(db_.get(), s_.witnessing_at_or_below.get());
    st.BindText(1, origin);
    st.BindInt(2, static_cast<int64_t>(std::min<uint64_t>(index, INT64_MAX)));
    st.BindInt(3, not_after.micros);
    return OneWitnessing(st, origin);
  }

  static Result<std::optional<WitnessingRecord>> OneWitnessing(BoundStatement& st,
                                                               const std::string& origin) {
    ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("read witnessings of", origin));
    if (!row) return std::nullopt;
    return WitnessingRecord{origin, static_cast<uint64_t>(st.ColumnInt(0)),
                            Instant{st.ColumnInt(1)}};
  }

  Status InsertObject(const ObjectRecord& o) override {
    EncodeStringList(o.topics, topics_buf_);
    EncodeStringList(o.compartments, compartments_buf_);
    EncodeStringList(o.rel_to, rel_to_buf_);
    BoundStatement st(db_.get(), s_.insert_object.get());
    st.BindText(1, o.id);
    st.BindText(2, o.originator);
    st.BindText(3, o.level);
    st.BindText(4, topics_buf_);
    st.BindText(5, compartments_buf_);
    st.BindText(6, rel_to_buf_);
    st.BindInt(7, o.version);
    st.BindBlob(8, o.ciphertext);
    st.BindBlob(9, o.wrapped_key);
    st.BindInt(10, o.created_at.micros);
    if (o.destroyed_at.has_value()) {
      st.BindInt(11, o.destroyed_at->micros);
    } else {
      st.BindNull(11);
    }
    st.BindText(12, o.received_from);
    st.BindText(13, o.commitment);
    return st.Run("insert object", o.id);
  }

  Result<ObjectRecord> GetObject(const std::string& id) override {
    BoundStatement st(db_.get(), s_.get_object.get());
    st.BindText(1, id);
    ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("get object", id));
    if (!row) {
      return Fail(Code::kNotFound, "no object `" + id + "`");
    }
    return ReadObject(st);
  }

  Result<std::vector<ObjectRecord>> ListObjects() override {
    BoundStatement st(db_.get(), s_.list_objects.get());
    return Collect<ObjectRecord>(st, "list objects", {}, ReadObject);
  }

  Result<std::vector<ObjectListing>> ListObjectLabels(std::string_view after,
                                                      size_t limit) override {
    BoundStatement st(db_.get(), s_.list_object_labels.get());
    st.BindText(1, after);
    st.BindInt(2, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
    return Collect<ObjectListing>(
        st, "list objects", {}, [](const BoundStatement& row) -> Result<ObjectListing> {
          ACCORD_ASSIGN_OR_RETURN(ObjectRecord o, ReadObject(row));
          return ObjectListing{std::move(o), static_cast<uint64_t>(row.ColumnInt(13))};
        });
  }

  // Binds ?1 to ?5 of the statements that replace a copy's sealed fields: id, level, version,
  // ciphertext, wrapped key.
  static void BindSealed(BoundStatement& st, const ObjectRecord& o) {
    st.BindText(1, o.id);
    st.BindText(2, o.level);
    st.BindInt(3, o.version);
    st.BindBlob(4, o.ciphertext);
    st.BindBlob(5, o.wrapped_key);
  }

  Status UpdateSealed(const ObjectRecord& o) override {
    {
      BoundStatement st(db_.get(), s_.update_sealed.get());
      BindSealed(st, o);
      ACCORD_RETURN_IF_ERROR(st.Run("update object", o.id));
    }
    if (sqlite3_changes64(db_.get()) == 0) {
      ACCORD_RETURN_IF_ERROR(GetObject(o.id));  // kNotFound
      return Fail(Code::kFailedPrecondition,
                  "this node's copy of `" + o.id + "` is destroyed: it is not re-sealed");
    }
    return Erased();
  }

  Status ReinstateObjectCopy(const ObjectRecord& o) override {
    BoundStatement st(db_.get(), s_.reinstate_object_copy.get());
    BindSealed(st, o);
    st.BindInt(6, o.created_at.micros);
    st.BindText(7, o.received_from);
    ACCORD_RETURN_IF_ERROR(st.Run("reinstate object", o.id));
    if (sqlite3_changes64(db_.get()) == 0) {
      return Fail(Code::kNotFound, "no object `" + o.id + "`");
    }
    return OkStatus();
  }

  Status EraseObjectCopy(const std::string& id, Instant at) override {
    // The copy and the packages it came in, together (a savepoint inside the caller's
    // transaction).
    ACCORD_RETURN_IF_ERROR(Transact([&]() -> Status {
      {
        BoundStatement st(db_.get(), s_.erase_object_copy.get());
        st.BindText(1, id);
        st.BindInt(2, at.micros);
        ACCORD_RETURN_IF_ERROR(st.Run("erase object", id));
      }
      if (sqlite3_changes64(db_.get()) == 0) {
        return Fail(Code::kNotFound, "no object `" + id + "`");
      }
      {
        // Outbox times are wall-clock (store.h), `at` the node's instant, maybe simulated.
        BoundStatement st(db_.get(), s_.cancel_object_deliveries.get());
        st.BindText(1, id);
        st.BindInt(2, SystemClock().Now().micros);
        ACCORD_RETURN_IF_ERROR(st.Run("give up the deliveries of", id));
      }
      {
        BoundStatement st(db_.get(), s_.erase_outbox_payloads.get());
        st.BindText(1, id);
        ACCORD_RETURN_IF_ERROR(st.Run("erase the queued envelopes of", id));
      }
      BoundStatement st(db_.get(), s_.erase_package_payloads.get());
      st.BindText(1, id);
      return st.Run("erase the packages of", id);
    }));
    return Erased();
  }

  Status InsertRelease(const ReleaseRecord& r) override {
    BoundStatement st(db_.get(), s_.insert_release.get());
    st.BindText(1, r.object_id);
    st.BindText(2, r.to);
    st.BindInt(3, r.at.micros);
    st.BindText(4, r.agreement);
    st.BindText(5, r.level);
    st.BindText(6, r.package_id);
    return st.Run("insert release of", r.object_id);
  }

  Result<std::vector<ReleaseRecord>> ListReleases(const std::string& object_id) override {
    BoundStatement st(db_.get(), s_.list_releases.get());
    st.BindText(1, object_id);
    return Collect<ReleaseRecord>(st, "list releases of", object_id,
                                  [](const BoundStatement& row) -> Result<ReleaseRecord> {
                                    return ReleaseRecord{.object_id = row.ColumnText(0),
                                                         .to = row.ColumnText(1),
                                                         .at = Instant{row.ColumnInt(2)},
                                                         .agreement = row.ColumnText(3),
                                                         .level = row.ColumnText(4),
                                                         .package_id = row.ColumnText(5)};
                                  });
  }

  Status InsertForward(const ForwardRecord& f) override {
    BoundStatement st(db_.get(), s_.insert_forward.get());
    st.BindText(1, f.object_id);
    st.BindText(2, f.from);
    st.BindText(3, f.to);
    st.BindInt(4, f.at.micros);
    st.BindText(5, f.agreement);
    st.BindText(6, f.package_id);
    return st.Run("insert forward of", f.object_id);
  }

  Result<std::vector<ForwardRecord>> ListForwards(const std::string& object_id) override {
    BoundStatement st(db_.get(), s_.list_forwards.get());
    st.BindText(1, object_id);
    return Collect<ForwardRecord>(st, "list forwards of", object_id,
                                  [](const BoundStatement& row) -> Result<ForwardRecord> {
                                    return ForwardRecord{.object_id = row.ColumnText(0),
                                                         .from = row.ColumnText(1),
                                                         .to = row.ColumnText(2),
                                                         .at = Instant{row.ColumnInt(3)},
                                                         .agreement = row.ColumnText(4),
                                                         .package_id = row.ColumnText(5)};
                                  });
  }

  Status InsertConsent(const ConsentRecord& c) override {
    BoundStatement st(db_.get(), s_.insert_consent.get());
    st.BindText(1, c.object_id);
    st.BindText(2, c.to);
    st.BindInt(3, c.at.micros);
    st.BindBlob(4, c.notice);
    return st.Run("insert consent for", c.object_id);
  }

  Result<std::vector<ConsentRecord>> ListConsents(const std::string& object_id) override {
    BoundStatement st(db_.get(), s_.list_consents.get());
    st.BindText(1, object_id);
    return Collect<ConsentRecord>(st, "list consents for", object_id,
                                  [](const BoundStatement& row) -> Result<ConsentRecord> {
                                    return ConsentRecord{.object_id = row.ColumnText(0),
                                                         .to = row.ColumnText(1),
                                                         .at = Instant{row.ColumnInt(2)},
                                                         .notice = row.ColumnBlob(3)};
                                  });
  }

  Status InsertReclassification(const ReclassificationRecord& r) override {
    BoundStatement st(db_.get(), s_.insert_reclassification.get());
    st.BindText(1, r.object_id);
    st.BindInt(2, r.version);
    st.BindText(3, r.level);
    st.BindInt(4, r.at.micros);
    st.BindBlob(5, r.notice);
    return st.Run("insert reclassification of", r.object_id);
  }

  Result<std::vector<ReclassificationRecord>> ListReclassifications(
      const std::string& object_id) override {
    BoundStatement st(db_.get(), s_.list_reclassifications.get());
    st.BindText(1, object_id);
    return Collect<ReclassificationRecord>(
        st, "list reclassifications of", object_id,
        [](const BoundStatement& row) -> Result<ReclassificationRecord> {
          return ReclassificationRecord{.object_id = row.ColumnText(0),
                                        .version = row.ColumnInt(1),
                                        .level = row.ColumnText(2),
                                        .at = Instant{row.ColumnInt(3)},
                                        .notice = row.ColumnBlob(4)};
        });
  }

  Status InsertDestruction(const DestructionRecord& d) override {
    BoundStatement st(db_.get(), s_.insert_destruction.get());
    st.BindText(1, d.object_id);
    st.BindInt(2, d.at.micros);
    st.BindText(3, ScopeName(d.scope));
    st.BindText(4, d.by);
    st.BindBlob(5, d.notice);
    return st.Run("insert destruction of", d.object_id);
  }

  Result<std::vector<DestructionRecord>> ListDestructions(const std::string& object_id) override {
    BoundStatement st(db_.get(), s_.list_destructions.get());
    st.BindText(1, object_id);
    return Collect<DestructionRecord>(st, "list destructions of", object_id,
                                      [](const BoundStatement& row) -> Result<DestructionRecord> {
                                        DestructionRecord d{.object_id = row.ColumnText(0),
                                                            .at = Instant{row.ColumnInt(1)},
                                                            .scope = DestructionScope::kLocal,
                                                            .by = row.ColumnText(3),
                                                            .notice = row.ColumnBlob(4)};
                                        const std::string scope = row.ColumnText(2);
                                        if (scope == ScopeName(DestructionScope::kEverywhere)) {
                                          d.scope = DestructionScope::kEverywhere;
                                        } else if (scope != ScopeName(DestructionScope::kLocal)) {
                                          return Corrupt("destruction scope", d.object_id);
                                        }
                                        return d;
                                      });
  }

  Status InsertReport(const ReportRecord& r) override {
    BoundStatement st(db_.get(), s_.insert_report.get());
    st.BindText(1, r.object_id);
    st.BindText(2, r.by);
    st.BindInt(3, r.at.micros);
    st.BindText(4, r.kind);
    st.BindText(5, r.text);
    st.BindBlob(6, r.notice);
    return st.Run("insert report on", r.object_id);
  }

  Result<std::vector<ReportRecord>> ListReports(const std::string& object_id) override {
    BoundStatement st(db_.get(), s_.list_reports.get());
    st.BindText(1, object_id);
    return Collect<ReportRecord>(st, "list reports on", object_id,
                                 [](const BoundStatement& row) -> Result<ReportRecord> {
                                   return ReportRecord{.object_id = row.ColumnText(0),
                                                       .by = row.ColumnText(1),
                                                       .at = Instant{row.ColumnInt(2)},
                                                       .kind = row.ColumnText(3),
                                                       .text = row.ColumnText(4),
                                                       .notice = row.ColumnBlob(5)};
                                 });
  }

  Status InsertPackage(const PackageRecord& p) override {
    BoundStatement st(db_.get(), s_.insert_package.get());
    st.BindText(1, p.id);
    st.BindText(2, p.kind);
    st.BindText(3, p.object_id);
    st.BindText(4, p.from);
    st.BindInt(5, p.at.micros);
    st.BindInt(6, p.received_at.micros);
    st.BindBlob(7, p.bytes);
    return st.Run("insert package", p.id);
  }

  Result<bool> HasPackage(const std::string& from, const std::string& id) override {
    BoundStatement st(db_.get(), s_.has_package.get());
    st.BindText(1, from);
    st.BindText(2, id);
    return st.Step("find package", id);
  }

  static PackageRecord PackageRow(const BoundStatement& row) {
    return PackageRecord{.id = row.ColumnText(0),
                         .kind = row.ColumnText(1),
                         .object_id = row.ColumnText(2),
                         .from = row.ColumnText(3),
                         .at = Instant{row.ColumnInt(4)},
                         .received_at = Instant{row.ColumnInt(5)},
                         .bytes = row.ColumnBlob(6)};
  }

  Result<std::vector<PackageRecord>> ListPackages(const std::string& object_id) override {
    BoundStatement st(db_.get(), s_.list_packages.get());
    st.BindText(1, object_id);
    return Collect<PackageRecord>(
        st, "list packages of", object_id,
        [](const BoundStatement& row) -> Result<PackageRecord> { return PackageRow(row); });
  }

  Result<std::vector<PackageRecord>> ListOrders(const std::string& object_id,
                                                const std::string& from) override {
    BoundStatement st(db_.get(), s_.list_orders.get());
    st.BindText(1, object_id);
    st.BindText(2, from);
    return Collect<PackageRecord>(
        st, "list the orders about", object_id,
        [](const BoundStatement& row) -> Result<PackageRecord> { return PackageRow(row); });
  }

  Result<PackageRecord> GetPackage(const std::string& from, const std::string& id) override {
    BoundStatement st(db_.get(), s_.get_package.get());
    st.BindText(1, from);
    st.BindText(2, id);
    ACCORD_ASSIGN_OR_RETURN(const bool found, st.Step("find package", id));
    if (!found) {
      return Fail(Code::kNotFound, "no package `" + id + "` from `" + from + "`");
    }
    return PackageRow(st);
  }

  Status InsertReceipt(const ReceiptRecord& r) override {
    BoundStatement st(db_.get(), s_.insert_receipt.get());
    st.BindText(1, r.package_id);
    st.BindText(2, r.from);
    st.BindText(3, r.by);
    st.BindInt(4, r.at.micros);
    st.BindBlob(5, r.bytes);
    return st.Run("insert receipt for", r.package_id);
  }

  static ReceiptRecord ReceiptRow(const BoundStatement& row) {
    return ReceiptRecord{.package_id = row.ColumnText(0),
                         .from = row.ColumnText(1),
                         .by = row.ColumnText(2),
                         .at = Instant{row.ColumnInt(3)},
                         .bytes = row.ColumnBlob(4)};
  }

  Result<std::vector<ReceiptRecord>> ListReceipts() override {
    BoundStatement st(db_.get(), s_.list_receipts.get());
    return Collect<ReceiptRecord>(
        st, "list receipts", {},
        [](const BoundStatement& row) -> Result<ReceiptRecord> { return ReceiptRow(row); });
  }

  Result<ReceiptRecord> GetReceipt(const std::string& package_id, const std::string& from,
                                   const std::string& by) override {
    BoundStatement st(db_.get(), s_.get_receipt.get());
    st.BindText(1, package_id);
    st.BindText(2, from);
    st.BindText(3, by);
    ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("get receipt for", package_id));
    if (!row) {
      return Fail(Code::kNotFound,
                  "no receipt by `" + by + "` for `" + package_id + "` from `" + from + "`");
    }
    return ReceiptRow(st);
  }

  Status Enqueue(const OutboxRecord& r) override {
    // Both rows or neither, in a savepoint when the caller's transaction is open.
    return Transact([&]() -> Status {
      {
        BoundStatement st(db_.get(), s_.enqueue.get());
        st.BindText(1, r.id);
        st.BindText(2, r.to);
        st.BindText(3, r.kind);
        st.BindText(4, r.object_id);
        st.BindInt(5, r.queued_us);
        ACCORD_RETURN_IF_ERROR(st.Run("queue envelope", r.id));
      }
      BoundStatement st(db_.get(), s_.enqueue_envelope.get());
      st.BindInt(1, sqlite3_last_insert_rowid(db_.get()));
      st.BindBlob(2, r.envelope);
      return st.Run("queue the bytes of envelope", r.id);
    });
  }

  static Result<OutboxRecord> ReadOutbox(const BoundStatement& row) {
    OutboxRecord r;
    r.seq = row.ColumnInt(0);
    r.id = row.ColumnText(1);
    r.to = row.ColumnText(2);
    r.kind = row.ColumnText(3);
    r.object_id = row.ColumnText(4);
    r.envelope = row.ColumnBlob(5);
    r.queued_us = row.ColumnInt(6);
    r.attempts = row.ColumnInt(7);
    r.next_attempt_us = row.ColumnInt(8);
    r.last_error = row.ColumnText(9);
    r.state = static_cast<DeliveryState>(row.ColumnInt(10));
    r.done_us = row.ColumnInt(11);
    return r;
  }

  Result<std::vector<OutboxRecord>> DueDeliveries(const std::string& to, int64_t now_us,
                                                  size_t limit, size_t max_bytes) override {
    std::vector<OutboxRecord> due;
    {
      BoundStatement st(db_.get(), s_.due_deliveries.get());
      st.BindText(1, to);
      st.BindInt(2, now_us);
      st.BindInt(3, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
      size_t bytes = 0;
      for (;;) {
        ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("list due deliveries to", to));
        if (!row) break;
        const auto size = static_cast<size_t>(st.ColumnInt(12));
        if (!due.empty() && (size > max_bytes || bytes + size > max_bytes)) break;
        bytes += size;
        ACCORD_ASSIGN_OR_RETURN(OutboxRecord r, ReadOutbox(st));
        due.push_back(std::move(r));
      }
    }
    // Outside a transaction, an envelope may have left the queue since (delivered, or given up
    // with its object's destruction): the list ends before it, and the next read goes on.
    for (size_t i = 0; i < due.size(); ++i) {
      BoundStatement st(db_.get(), s_.pending_envelope.get());
      st.BindInt(1, due[i].seq);
      ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("read the envelope", due[i].id));
      if (!row) {
        due.resize(i);
        break;
      }
      due[i].envelope = st.ColumnBlob(0);
    }
    return due;
  }

  Result<std::vector<OutboxTotals>> CountOutbox() override {
    BoundStatement st(db_.get(), s_.count_outbox.get());
    std::vector<OutboxTotals> out;
    for (;;) {
      ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("count the outbox", {}));
      if (!row) return out;
      std::string to = st.ColumnText(0);
      if (out.empty() || out.back().to != to) out.push_back(OutboxTotals{std::move(to)});
      const auto n = static_cast<uint64_t>(st.ColumnInt(2));
      switch (st.ColumnInt(1)) {
        case 0:
          out.back().pending = n;
          break;
        case 1:
          out.back().delivered = n;
          break;
        default:
          out.back().failed = n;
          break;
      }
    }
  }

  Result<std::vector<OutboxRecord>> ListUndelivered(size_t limit) override {
    BoundStatement st(db_.get(), s_.list_undelivered.get());
    st.BindInt(1, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
    return Collect<OutboxRecord>(st, "list the outbox", {}, ReadOutbox);
  }

  Result<std::vector<OutboxRecord>> ListOutbox(const std::string& to) override {
    BoundStatement st(db_.get(), to.empty() ? s_.list_outbox_all.get() : s_.list_outbox.get());
    if (!to.empty()) st.BindText(1, to);
    return Collect<OutboxRecord>(st, "list the outbox", to, ReadOutbox);
  }

  Status RecordAttempt(const std::string& id, const std::string& to, const std::string& error,
                       int64_t next_attempt_us, bool give_up, int64_t now_us) override {
    return InTransaction([&]() -> Status {
      BoundStatement st(db_.get(), s_.record_attempt.get());
      st.BindText(1, id);
      st.BindText(2, to);
      st.BindText(3, error);
      st.BindInt(4, next_attempt_us);
      st.BindInt(5, give_up ? 2 : 0);
      st.BindInt(6, give_up ? now_us : 0);
      ACCORD_RETURN_IF_ERROR(st.Run("record a delivery attempt of", id));
      if (sqlite3_changes64(db_.get()) == 0) {
        return Fail(Code::kNotFound, "no pending delivery of `" + id + "` to `" + to + "`");
      }
      return OkStatus();
    });
  }

  Result<uint64_t> RecordUnreachable(const std::string& to, const std::string& error,
                                     int64_t next_attempt_us, int64_t now_us,
                                     size_t limit) override {
    return InTransaction([&]() -> Result<uint64_t> {
      BoundStatement st(db_.get(), s_.record_unreachable.get());
      st.BindText(1, to);
      st.BindInt(2, now_us);
      st.BindText(3, error);
      st.BindInt(4, next_attempt_us);
      st.BindInt(5, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
      ACCORD_RETURN_IF_ERROR(st.Run("record a failed attempt to reach", to));
      return static_cast<uint64_t>(sqlite3_changes64(db_.get()));
    });
  }

  Result<std::vector<std::string>> QueuedFor(const std::string& id) override {
    BoundStatement st(db_.get(), s_.queued_for.get());
    st.BindText(1, id);
    return Collect<std::string>(
        st, "find in the outbox", id,
        [](const BoundStatement& row) -> Result<std::string> { return row.ColumnText(0); });
  }

  Result<std::optional<OutboxRecord>> GetQueued(const std::string& id, const std::string& to,
                                                EnvelopeBytes bytes) override {
    BoundStatement st(db_.get(), bytes == EnvelopeBytes::kRead ? s_.get_queued.get()
                                                               : s_.get_queued_no_envelope.get());
    st.BindText(1, id);
    st.BindText(2, to);
    ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("find in the outbox", id));
    if (!row) return std::optional<OutboxRecord>{};
    ACCORD_ASSIGN_OR_RETURN(OutboxRecord r, ReadOutbox(st));
    return std::optional<OutboxRecord>{std::move(r)};
  }

  Result<uint64_t> BringForwardAttempts(const std::string& to, int64_t latest_us) override {
    {
      // Read first: the write lock is taken only when there is something to move.
      BoundStatement probe(db_.get(), s_.attempts_after.get());
      probe.BindText(1, to);
      probe.BindInt(2, latest_us);
      ACCORD_ASSIGN_OR_RETURN(const bool any, probe.Step("look for late attempts to", to));
      if (!any) return 0;
    }
    return InTransaction([&]() -> Result<uint64_t> {
      BoundStatement st(db_.get(), s_.bring_forward_attempts.get());
      st.BindText(1, to);
      st.BindInt(2, latest_us);
      ACCORD_RETURN_IF_ERROR(st.Run("bring forward the attempts to", to));
      return static_cast<uint64_t>(sqlite3_changes64(db_.get()));
    });
  }

  Status MarkDelivered(const std::string& id, const std::string& to, int64_t now_us) override {
    return InTransaction([&] {
      BoundStatement st(db_.get(), s_.mark_delivered.get());
      st.BindText(1, id);
      st.BindText(2, to);
      st.BindInt(3, now_us);
      return st.Run("mark delivered", id);
    });
  }

  Status PutSubject(const SubjectRecord& s) override {
    EncodeStringList(s.need_to_know, topics_buf_);
    EncodeStringList(s.compartments, compartments_buf_);
    BoundStatement st(db_.get(), s_.put_subject.get());
    st.BindText(1, s.id);
    st.BindText(2, s.clearance);
    st.BindText(3, topics_buf_);
    st.BindText(4, compartments_buf_);
    return st.Run("put subject", s.id);
  }

  Result<SubjectRecord> GetSubject(const std::string& id) override {
    BoundStatement st(db_.get(), s_.get_subject.get());
    st.BindText(1, id);
    ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("get subject", id));
    if (!row) {
      return Fail(Code::kNotFound, "no subject `" + id + "`");
    }
    return ReadSubject(st);
  }

  Status DeleteSubject(const std::string& id) override {
    BoundStatement st(db_.get(), s_.delete_subject.get());
    st.BindText(1, id);
    ACCORD_RETURN_IF_ERROR(st.Run("remove subject", id));
    if (sqlite3_changes64(db_.get()) == 0) {
      return Fail(Code::kNotFound, "no subject `" + id + "`");
    }
    return OkStatus();
  }

  Result<std::vector<SubjectRecord>> ListSubjects() override {
    BoundStatement st(db_.get(), s_.list_subjects.get());
    return Collect<SubjectRecord>(st, "list subjects", {}, ReadSubject);
  }

  Status PutPartner(const PartnerRecord& p) override {
    BoundStatement st(db_.get(), s_.put_partner.get());
    st.BindText(1, p.party);
    st.BindBlob(2, p.sign_public);
    st.BindBlob(3, p.wrap_public);
    return st.Run("put partner", p.party);
  }

  Result<PartnerRecord> GetPartner(const std::string& party) override {
    BoundStatement st(db_.get(), s_.get_partner.get());
    st.BindText(1, party);
    ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("get partner", party));
    if (!row) {
      return Fail(Code::kNotFound, "no partner `" + party + "`");
    }
    return Noted(ReadPartner(st));
  }

  Result<std::vector<PartnerRecord>> ListPartners() override {
    BoundStatement st(db_.get(), s_.list_partners.get());
    return Noted(Collect<PartnerRecord>(st, "list partners", {}, ReadPartner));
  }

  Status AppendLog(uint64_t first, std::span<const Bytes> entries,
                   std::span<const Digest> leaf_hashes,
                   std::span<const LogTileRecord> tiles) override {
    if (in_read_snapshot_) {
      // Its read transaction would take the write, and end with COMMIT or ROLLBACK as the body
      // (which may not be about the log at all) ends: entries could outlive their tiles.
      return Fail(Code::kFailedPrecondition, "sqlite: append to the log inside a read snapshot");
    }
    if (sqlite3_get_autocommit(db_.get()) != 0) {
      // No transaction that SQLite still holds: none was begun, or SQLite rolled the caller's
      // back by itself after an I/O error (Transact then refuses: see Nested). One statement at
      // a time, a failure between the entries and their tiles would leave the tiles short of
      // the entries, and every later rebuild of the log's edge would fail.
      return Transact([&] { return AppendLog(first, entries, leaf_hashes, tiles); });
    }
    if (leaf_hashes.size() != entries.size()) {
      return Fail(Code::kInvalidArgument,
                  "sqlite: append to the log: " + std::to_string(entries.size()) + " entries but " +
                      std::to_string(leaf_hashes.size()) + " leaf hashes");
    }
    for (const LogTileRecord& t : tiles) {
      if (t.level < 0 || t.level >= kLogTileMaxLevel ||
          t.index >= (uint64_t{1} << kLogTileIdShift) || t.hashes.size() != kLogTileBytes) {
        return Fail(Code::kInvalidArgument,
                    "sqlite: append to the log: tile (" + std::to_string(t.level) + ", " +
                        std::to_string(t.index) + ") has a bad level, index or size");
      }
    }
    ACCORD_ASSIGN_OR_RETURN(const uint64_t size, LogSize());
    if (first != size) {
      return Fail(Code::kFailedPrecondition, "sqlite: append to the log at " +
                                                 std::to_string(first) + ", but it holds " +
                                                 std::to_string(size) + " entries");
    }
    size_t i = 0;
    for (; entries.size() - i >= kLogEntriesPerInsert; i += kLogEntriesPerInsert) {
      BoundStatement st(db_.get(), s_.insert_log_entries.get());
      for (size_t k = 0; k < kLogEntriesPerInsert; ++k) {
        const auto param = static_cast<int>(3 * k);
        st.BindInt(param + 1, static_cast<int64_t>(first + i + k));
        st.BindBlob(param + 2, entries[i + k]);
        st.BindBlob(param + 3, leaf_hashes[i + k]);
      }
      ACCORD_RETURN_IF_ERROR(st.Run("insert log entries"));
    }
    for (; i < entries.size(); ++i) {
      BoundStatement st(db_.get(), s_.insert_log_entry.get());
      st.BindInt(1, static_cast<int64_t>(first + i));
      st.BindBlob(2, entries[i]);
      st.BindBlob(3, leaf_hashes[i]);
      ACCORD_RETURN_IF_ERROR(st.Run("insert log entry"));
    }
    for (const LogTileRecord& t : tiles) {
      BoundStatement st(db_.get(), s_.insert_log_tile.get());
      st.BindInt(1, LogTileId(t.level, t.index));
      st.BindBlob(2, t.hashes);
      ACCORD_RETURN_IF_ERROR(st.Run("insert log tile"));
    }
    return OkStatus();
  }

  Result<uint64_t> LogSize() override {
    BoundStatement st(db_.get(), s_.log_size.get());
    ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("log size"));
    if (!row) {
      return Fail(Code::kInternal, "sqlite: log size: no row");
    }
    return static_cast<uint64_t>(st.ColumnInt(0));
  }

  Result<std::vector<Bytes>> ReadLogEntries(uint64_t from, uint64_t count) override {
    ACCORD_RETURN_IF_ERROR(CheckLogRange(from, count));
    std::vector<Bytes> out;
    out.reserve(std::min(count, kLogReserveMax));
    ACCORD_RETURN_IF_ERROR(ReadLogRange(s_.read_log_entries.get(), from, count, "read log entries",
                                        [&](const BoundStatement& st) -> Status {
                                          out.push_back(st.ColumnBlob(1));
                                          return OkStatus();
                                        }));
    return out;
  }

  Result<std::vector<Digest>> ReadLogLeafHashes(uint64_t from, uint64_t count) override {
    ACCORD_RETURN_IF_ERROR(CheckLogRange(from, count));
    std::vector<Digest> out;
    out.reserve(std::min(count, kLogReserveMax));
    ACCORD_RETURN_IF_ERROR(
        ReadLogRange(s_.read_log_leaf_hashes.get(), from, count, "read log leaf hashes",
                     [&](const BoundStatement& st) -> Status {
                       const ByteView hash = st.ColumnBlobView(1);
                       Digest& d = out.emplace_back();
                       if (hash.size() != d.size()) {
                         return Damaged("sqlite: a log leaf hash is not 32 bytes");
                       }
                       std::copy(hash.begin(), hash.end(), d.begin());
                       return OkStatus();
                     }));
    return out;
  }

  // At most this many entries are reserved for ahead of a log read: a count from outside may be
  // huge, and the log ends long before it (kOutOfRange).
  static constexpr uint64_t kLogReserveMax = 4096;

  // The entries [from, from + count) are past the end of any log (whose indexes are INTEGERs)
  // when the range ends past INT64_MAX: kOutOfRange, before a bound index could wrap negative.
  static Status CheckLogRange(uint64_t from, uint64_t count) {
    constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();
    if (from > kMax || count > kMax - from) {
      return Fail(Code::kOutOfRange, "sqlite: " + std::to_string(count) + " log entries from " +
                                         std::to_string(from) + " are past the end of any log");
    }
    return OkStatus();
  }

  // Steps `statement` (column 0 the index) over the entries [from, from + count), calling `row`
  // for each in order: a gap is data loss, a range past the log's end out of range.
  template <typename Row>
  Status ReadLogRange(sqlite3_stmt* statement, uint64_t from, uint64_t count, std::string_view what,
                      Row&& row) {
    BoundStatement st(db_.get(), statement);
    st.BindInt(1, static_cast<int64_t>(from));
    st.BindInt(2, static_cast<int64_t>(from + count));
    uint64_t next = from;
    for (;;) {
      ACCORD_ASSIGN_OR_RETURN(const bool more, st.Step(what));
      if (!more) break;
      if (static_cast<uint64_t>(st.ColumnInt(0)) != next) {
        return Damaged("sqlite: the log is missing entry " + std::to_string(next));
      }
      ACCORD_RETURN_IF_ERROR(row(st));
      ++next;
    }
    if (next != from + count) {
      return Fail(Code::kOutOfRange, "sqlite: the log has no entry " + std::to_string(next));
    }
    return OkStatus();
  }

  Result<std::vector<Bytes>> ReadLogTiles(
      std::span<const std::pair<int32_t, uint64_t>> keys) override {
    std::vector<Bytes> out(keys.size());
    for (size_t begin = 0; begin < keys.size(); begin += kLogTilesPerQuery) {
      const size_t end = std::min(keys.size(), begin + kLogTilesPerQuery);
      // One tile (a proof whose upper tiles are cached) is one lookup, not an IN list.
      const size_t params = end - begin == 1 ? 1 : kLogTilesPerQuery;
      BoundStatement st(db_.get(), params == 1 ? s_.read_log_tile.get() : s_.read_log_tiles.get());
      for (size_t k = 0; k < params; ++k) {
        const bool used = begin + k < end && keys[begin + k].first >= 0 &&
                          keys[begin + k].first < kLogTileMaxLevel &&
                          keys[begin + k].second < (uint64_t{1} << kLogTileIdShift);
        st.BindInt(static_cast<int>(k + 1),
                   used ? LogTileId(keys[begin + k].first, keys[begin + k].second) : -1);
      }
      for (;;) {
        ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("read log tiles"));
        if (!row) break;
        const int64_t id = st.ColumnInt(0);
        const ByteView hashes = st.ColumnBlobView(1);
        // A key may be asked twice; fill every slot that matches.
        for (size_t k = begin; k < end; ++k) {
          if (LogTileId(keys[k].first, keys[k].second) != id) continue;
          if (hashes.size() != kLogTileBytes) {
            return Damaged("sqlite: log tile (" + std::to_string(keys[k].first) + ", " +
                           std::to_string(keys[k].second) + ") has " +
                           std::to_string(hashes.size()) + " bytes");
          }
          out[k].assign(hashes.begin(), hashes.end());
        }
      }
    }
    for (size_t k = 0; k < keys.size(); ++k) {
      if (out[k].empty()) {
        return Fail(Code::kNotFound, "no log tile (" + std::to_string(keys[k].first) + ", " +
                                         std::to_string(keys[k].second) + ")");
      }
    }
    return out;
  }

  Status InsertEvidence(const EvidenceRecord& e) override {
    BoundStatement st(db_.get(), s_.insert_evidence.get());
    st.BindText(1, e.origin);
    st.BindText(2, e.earlier);
    st.BindText(3, e.later);
    st.BindText(4, e.reason);
    st.BindInt(5, e.at.micros);
    return st.Run("insert evidence for", e.origin);
  }

  Result<std::vector<EvidenceRecord>> ListEvidence() override {
    BoundStatement st(db_.get(), s_.list_evidence.get());
    return Collect<EvidenceRecord>(st, "list evidence", {},
                                   [](const BoundStatement& row) -> Result<EvidenceRecord> {
                                     return EvidenceRecord{.origin = row.ColumnText(0),
                                                           .earlier = row.ColumnText(1),
                                                           .later = row.ColumnText(2),
                                                           .reason = row.ColumnText(3),
                                                           .at = Instant{row.ColumnInt(4)}};
                                   });
  }

  Status KeepShownCheckpoint(const ShownCheckpointRecord& c) override {
    return InTransaction([&] {
      BoundStatement st(db_.get(), s_.keep_shown_checkpoint.get());
      st.BindText(1, c.origin);
      st.BindInt(2, static_cast<int64_t>(c.size));
      st.BindBlob(3, c.root);
      st.BindText(4, c.note);
      st.BindInt(5, c.at.micros);
      return st.Run("keep a checkpoint of", c.origin);
    });
  }

  static Result<ShownCheckpointRecord> ShownRow(const BoundStatement& row) {
    ShownCheckpointRecord c{.origin = row.ColumnText(0),
                            .size = static_cast<uint64_t>(row.ColumnInt(1)),
                            .note = row.ColumnText(3),
                            .at = Instant{row.ColumnInt(4)},
                            .seq = row.ColumnInt(5)};
    const ByteView root = row.ColumnBlobView(2);
    if (root.size() != c.root.size()) {
      return Fail(Code::kDataLoss, "a shown checkpoint's root is not 32 bytes");
    }
    std::copy(root.begin(), root.end(), c.root.begin());
    return c;
  }

  Result<std::vector<ShownCheckpointRecord>> ListShownCheckpoints(const std::string& origin,
                                                                  uint64_t max_size,
                                                                  size_t limit) override {
    BoundStatement st(db_.get(), s_.list_shown_checkpoints.get());
    st.BindText(1, origin);
    st.BindInt(2, static_cast<int64_t>(std::min<uint64_t>(max_size, INT64_MAX)));
    st.BindInt(3, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
    return Collect<ShownCheckpointRecord>(st, "list the checkpoints shown of", origin, ShownRow);
  }

  Result<int64_t> ShownCheckpointMark() override {
    BoundStatement st(db_.get(), s_.shown_mark.get());
    ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("read the last checkpoint shown"));
    return row ? st.ColumnInt(0) : 0;
  }

  Result<std::optional<ShownCheckpointRecord>> LargestShownAbove(const std::string& origin,
                                                                 uint64_t size,
                                                                 int64_t mark) override {
    BoundStatement st(db_.get(), s_.largest_shown_above.get());
    st.BindText(1, origin);
    st.BindInt(2, static_cast<int64_t>(std::min<uint64_t>(size, INT64_MAX)));
    st.BindInt(3, mark);
    ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("find a checkpoint shown of", origin));
    if (!row) return std::nullopt;
    ACCORD_ASSIGN_OR_RETURN(ShownCheckpointRecord c, ShownRow(st));
    return c;
  }

  Result<bool> SettleShownCheckpoint(const std::string& origin, uint64_t size, const Digest& root,
                                     ShownState state) override {
    BoundStatement st(db_.get(), s_.settle_shown_checkpoint.get());
    st.BindText(1, origin);
    st.BindInt(2, static_cast<int64_t>(size));
    st.BindBlob(3, root);
    st.BindInt(4, state == ShownState::kProved ? 1 : 2);
    ACCORD_RETURN_IF_ERROR(st.Run("settle a checkpoint of", origin));
    return sqlite3_changes64(db_.get()) == 1;
  }

  Result<uint64_t> CountShownCheckpoints(const std::string& origin) override {
    BoundStatement st(db_.get(), s_.count_shown_checkpoints.get());
    st.BindText(1, origin);
    ACCORD_ASSIGN_OR_RETURN(const bool row, st.Step("count the checkpoints shown of", origin));
    return row ? static_cast<uint64_t>(st.ColumnInt(0)) : 0;
  }

 private:
  // Runs the caller's body; an exception from it must not leave the transaction open or cross
  // the module boundary.
  static Status RunBody(const std::function<Status()>& body) {
    try {
      return body();
    } catch (const std::exception& e) {
      return Fail(Code::kInternal, std::string("transaction body threw: ") + ExceptionText(e));
    } catch (...) {
      return Fail(Code::kInternal, "transaction body threw");
    }
  }

  // The commit hook of this store's connection. Besides WriteTurns' veto once writes stopped: a
  // commit while this store's transaction is open but not at its COMMIT is a statement that ran
  // on its own because SQLite rolled the transaction back by itself (an I/O error, no memory, a
  // trigger's RAISE(ROLLBACK)). It would commit alone a part of what was meant as one.
  static int VetoCommit(void* self) {
    const auto* store = static_cast<const SqliteStore*>(self);
    if (store->in_transaction_ && !store->committing_) return 1;
    return WriteTurns::VetoCommit(store->write_turns_.get());
  }

  void Rollback() {
    // SQLite rolls back by itself after some errors (SQLITE_FULL, an I/O error); a second
    // ROLLBACK would fail with "no transaction is active".
    if (sqlite3_get_autocommit(db_.get()) == 0) {
      BoundStatement rollback(db_.get(), s_.rollback.get());
      (void)rollback.Run("roll back");  // the error to report is the one that caused this
    }
  }

  // UpdateSealed and EraseObjectCopy replace sealed bytes. `secure_delete` zeroes them in the
  // database pages, but in WAL mode the frames of earlier commits stay in the -wal file until it
  // is overwritten; a TRUNCATE checkpoint after the commit empties it. Inside a transaction this
  // waits for the commit.
  // After sealed bytes were replaced: a checkpoint moves the zeroed pages into the file.
  Status Erased() {
    checkpoint_owed_ = true;
    if (!in_transaction_) {
      CheckpointBestEffort();
    }
    return OkStatus();
  }

  // Best effort: a reader in another process makes the checkpoint fail at once (no busy wait);
  // it is then retried after the next commit that erases, or when this store closes (there
  // with the busy timeout's wait).
  void CheckpointBestEffort() {
    if (!write_turns_->MayCheckpoint()) return;
    SetBusyWait(db_.get(), 0);
    const int rc =
        sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    write_turns_->StopIfSyncFailed(db_.get(), rc, path_);
    SetBusyWait(db_.get(), busy_timeout_ms_);
    if (rc == SQLITE_OK) {
      checkpoint_owed_ = false;
    }
  }

  Status RunOnce(sqlite3_stmt* statement, std::string_view what) {
    BoundStatement st(db_.get(), statement);
    return st.Run(what);
  }

  // Runs `body`, a method's writes, in the transaction under way or else in one of its own
  // (Transact), never alone in autocommit: a commit there is refused only by the commit hook,
  // in SQLite's words, and a failed sync of it would not stop the writes after it.
  template <typename F>
  auto InTransaction(F body) -> decltype(body()) {
    if (in_transaction_) return body();
    std::optional<decltype(body())> result;
    const Status done = Transact([&]() -> Status {
      result = body();
      if (!*result) return tl::unexpected(result->error());
      return OkStatus();
    });
    if (!done) return tl::unexpected(done.error());
    return *std::move(result);
  }

  // Damage to the store's own state found here (not by SQLite, whose DamageWatch sees its own):
  // told to write_turns_, for CheckIntact, and returned.
  tl::unexpected<Error> Damaged(std::string message) {
    Error e = OwnStateDamaged(std::move(message)).value();
    write_turns_->NoteDamage(e);
    return tl::unexpected(std::move(e));
  }

  // `result`, once write_turns_ is told of the damage it reports, if any.
  template <typename T>
  Result<T> Noted(Result<T> result) {
    if (!result) write_turns_->NoteDamage(result.error());
    return result;
  }

  // INVARIANT: declared before the statements, so the statements are finalized first.
  DbPtr db_;
  Statements s_;
  const int busy_timeout_ms_;
  const bool synchronous_full_;
  int (*const sync_file_)(int fd);  // SqliteOptions::sync_file_for_testing
  const std::string path_;          // the database file
  const std::string wal_path_;
  const std::shared_ptr<WriteTurns> write_turns_;  // taken by each outermost transaction
  // Declared after db_ and write_turns_: it ends before either.
  const DamageWatch damage_watch_;
  std::shared_ptr<Checkpointer> checkpointer_;  // shared with the other connections to the file
  std::mutex wal_mu_;
  const int wal_fd_;  // the -wal file's (OpenSqliteStore), for SyncCommits
  bool in_transaction_ = false;
  bool committing_ = false;  // TransactNow's COMMIT runs (VetoCommit)
  bool in_read_snapshot_ = false;
  bool synchronous_deferred_ = false;  // synchronous=NORMAL set by TransactUnsynced
  bool nested_undo_failed_ = false;    // a ROLLBACK TO failed: the outermost commit must not
  bool checkpoint_owed_ = false;
  // Reused buffers for the JSON of string lists: no allocation per insert once warmed up.
  std::string topics_buf_;
  std::string compartments_buf_;
  std::string rel_to_buf_;
};

}  // namespace

std::string_view DeliveryStateName(DeliveryState s) {
  switch (s) {
    case DeliveryState::kPending:
      return "pending";
    case DeliveryState::kDelivered:
      return "delivered";
    case DeliveryState::kFailed:
      return "failed";
  }
  return "pending";
}

namespace {

// The snapshot of BackupSqliteStore, into `to` (created already, empty), checked.
Status CopyStore(const std::string& from, const std::string& to) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(from.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, nullptr);
  const DbPtr source(raw);
  if (rc != SQLITE_OK) return tl::unexpected<Error>(SqliteError(source.get(), rc, "open", from));
  sqlite3_busy_timeout(source.get(), 10'000);
  ACCORD_ASSIGN_OR_RETURN(
      const std::optional<std::string> tables,
      QueryText(source.get(), "SELECT count(*) FROM sqlite_schema WHERE name = 'meta'", "read"));
  if (tables != "1") return Fail(Code::kFailedPrecondition, "`" + from + "` is not a store");
  raw = nullptr;
  rc = sqlite3_open_v2(to.c_str(), &raw,
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, nullptr);
  const DbPtr copy(raw);
  if (rc != SQLITE_OK) return tl::unexpected<Error>(SqliteError(copy.get(), rc, "open", to));
  // The copy's commit syncs it, and (EXTRA) the directory once its journal is gone, so that no
  // journal can come back after a crash to undo it.
  ACCORD_RETURN_IF_ERROR(Exec(copy.get(), "PRAGMA synchronous = EXTRA", "set up the copy"));
  sqlite3_backup* backup = sqlite3_backup_init(copy.get(), "main", source.get(), "main");
  if (backup == nullptr) {
    return tl::unexpected<Error>(
        SqliteError(copy.get(), sqlite3_errcode(copy.get()), "start the backup of", from));
  }
  // Every page in one step: one read transaction on the source, so one snapshot of what was
  // committed (WAL: writers go on). The source's busy handler waits out a connection that
  // holds it exclusively (a recovery, a schema change) for up to 10 s.
  rc = sqlite3_backup_step(backup, -1);
  const int finished = sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    return Fail(Code::kUnavailable,
                "cannot back up `" + from + "` to `" + to + "`: " + LowerFirst(sqlite3_errstr(rc)));
  }
  if (finished != SQLITE_OK) {
    return tl::unexpected<Error>(SqliteError(copy.get(), finished, "finish the backup of", from));
  }
  ACCORD_ASSIGN_OR_RETURN(const std::optional<std::string> check,
                          QueryText(copy.get(), "PRAGMA quick_check", "check"));
  if (check != "ok") {
    return Fail(Code::kDataLoss, "the copy `" + to + "` does not pass SQLite's quick check: " +
                                     check.value_or("no answer"));
  }
  return OkStatus();
}

}  // namespace

Result<StoreBackup> BackupSqliteStore(const std::string& from, const std::string& to) {
  struct stat st {};
  if (::lstat(from.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Fail(Code::kNotFound, "no store at `" + from + "`");
  }
  // A -wal or -journal file beside `to` would be applied to the new database: none may exist.
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    if (::lstat((to + suffix).c_str(), &st) == 0) {
      return Fail(Code::kAlreadyExists, "`" + to + suffix + "` already exists");
    }
  }
  const int fd = ::open(to.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) return Fail(Code::kAlreadyExists, "`" + to + "` already exists");
    return Fail(CodeForErrno(err), "cannot create `" + to + "`: " + LowerFirst(std::strerror(err)));
  }
  ::close(fd);
  auto made = [&]() -> Result<StoreBackup> {
    ACCORD_RETURN_IF_ERROR(CopyStore(from, to));
    // Opened as a store, as a restore would: its schema is migrated if it is older than this
    // program's. The figures are the copy's.
    auto opened = OpenSqliteStore(to);
    if (!opened) {
      return tl::unexpected(WithContext(opened.error(), "the copy cannot be opened"));
    }
    StoreBackup out;
    ACCORD_ASSIGN_OR_RETURN(out.log_size, (*opened)->LogSize());
    ACCORD_ASSIGN_OR_RETURN(const std::optional<std::string> version,
                            (*opened)->GetMeta("schema_version"));
    out.schema_version = std::atoi(version.value_or("0").c_str());
    opened->reset();  // closed: its -wal is checkpointed into the file and removed
    struct stat copied {};
    if (::stat(to.c_str(), &copied) == 0) out.bytes = static_cast<uint64_t>(copied.st_size);
    return out;
  }();
  if (!made) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) ::unlink((to + suffix).c_str());
  }
  return made;
}

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                               const SqliteOptions& options) {
  ACCORD_RETURN_IF_ERROR(CreatePrivateFile(path));
  // The file at the name before SQLite opens it, to tell whether the -wal file opened below is
  // still its own.
  struct stat before {};
  if (::stat(path.c_str(), &before) != 0) {
    return Fail(Code::kUnavailable, "cannot read `" + path + "`: " + std::strerror(errno));
  }
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, nullptr);
  DbPtr db(raw);  // owns the handle even when the open failed
  if (rc != SQLITE_OK) {
    return tl::unexpected<Error>(SqliteError(db.get(), rc, "open", path));
  }
  const auto in_context = [&path](Error e) {
    return tl::unexpected<Error>(WithContext(std::move(e), "`" + path + "`"));
  };
  if (auto configured = Configure(db.get(), options); !configured.has_value()) {
    return in_context(std::move(configured).error());
  }
  auto migrated = Migrate(db.get());
  if (!migrated.has_value()) {
    return in_context(std::move(migrated).error());
  }
  auto statements = PrepareAll(db.get());
  if (!statements.has_value()) {
    return in_context(std::move(statements).error());
  }
  // The -wal file SyncCommits syncs is the one this connection writes, opened now (Migrate's
  // reads made SQLite open it), not found by its name at the first sync: a home moved aside
  // while the store is open, and another put at its name, would have had the other's file synced
  // and this one's commits answered as durable (decision #185).
  if (options.opened_for_testing != nullptr) options.opened_for_testing(path.c_str());
  const std::string wal_path = path + "-wal";
  const int wal_fd = ::open(wal_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (wal_fd < 0) {
    return Fail(Code::kUnavailable, "cannot open `" + wal_path + "`: " + std::strerror(errno));
  }
  // The same file at the name as before SQLite opened it: then the -wal file at its name was
  // this connection's when it was opened. A home moved while the store opened would otherwise
  // hand it another's (decision #188).
  struct stat after {};
  if (::stat(path.c_str(), &after) != 0 || after.st_dev != before.st_dev ||
      after.st_ino != before.st_ino) {
    ::close(wal_fd);
    return Fail(Code::kUnavailable,
                "`" + path + "` was moved or replaced while the store opened it; open it again");
  }
  return std::make_unique<SqliteStore>(std::move(db), std::move(*statements), options, path,
                                       *migrated, wal_fd);
}

}  // namespace accord
