// store/sqlite_util.h — private helpers of the SQLite backend: owning handles, one-use binding of
// a cached statement, the mapping of SQLite result codes to accord codes, and the codec that keeps
// a list of strings in one TEXT column (a JSON array of strings).
//
// Not installed; only src/store and its tests include it.
//
// Thread safety: a connection and its statements belong to one thread at a time.
#ifndef ACCORD_SRC_STORE_SQLITE_UTIL_H_
#define ACCORD_SRC_STORE_SQLITE_UTIL_H_

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "accord/crypto.h"
#include "accord/status.h"

namespace accord::sqlite_internal {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// The accord code for a SQLite (extended) result code: BUSY and LOCKED are kUnavailable, a
// primary-key or unique violation kAlreadyExists, CORRUPT and NOTADB kDataLoss, the rest
// kInternal.
[[nodiscard]] Code CodeForSqlite(int rc);

// "sqlite: <action> `<key>`: <SQLite's message>" (or "sqlite: <action>: ..." when `key` is empty),
// with the code from CodeForSqlite. Built only on failure, so callers pass views. A kDataLoss is
// damage to the store's own state (Error::own_state), and goes to the connection's DamageWatch.
[[nodiscard]] Error SqliteError(sqlite3* db, int rc, std::string_view action,
                                std::string_view key = {});

// While it lives, every error SqliteError builds for `db` that marks damage to the store
// (Error::own_state) is passed to `noted`, on the thread that found it: SQLite finds a malformed
// page in whatever statement reads it, and the store wants to know of it whichever of its methods
// that was. Made after `db` is opened and destroyed before it is closed, since another connection
// may later have the same address.
class DamageWatch {
 public:
  DamageWatch(sqlite3* db, std::function<void(const Error&)> noted);
  ~DamageWatch();
  DamageWatch(const DamageWatch&) = delete;
  DamageWatch& operator=(const DamageWatch&) = delete;

 private:
  sqlite3* const db_;
};

// Prepares `sql` for reuse for the life of the connection.
[[nodiscard]] Result<StmtPtr> Prepare(sqlite3* db, std::string_view sql);

// One use of a prepared statement: bind, step, read columns. The statement is reset when this
// goes out of scope, which ends any read and lets the bound buffers go.
//
// INVARIANT: text and blobs are bound SQLITE_STATIC (no copy), so the caller's buffers must
// outlive this object; every use binds every parameter before stepping, so a stale pointer left
// from an earlier use is never read.
class BoundStatement {
 public:
  BoundStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~BoundStatement() { sqlite3_reset(stmt_); }
  BoundStatement(const BoundStatement&) = delete;
  BoundStatement& operator=(const BoundStatement&) = delete;

  // Parameters are numbered from 1. A failed bind (a value too big for SQLite) is reported by the
  // next Step.
  void BindText(int index, std::string_view text);
  void BindBlob(int index, ByteView bytes);
  void BindInt(int index, int64_t value);
  void BindNull(int index);

  // true with a row to read, false when done; errors are named by `action` and `key`.
  [[nodiscard]] Result<bool> Step(std::string_view action, std::string_view key = {});
  // Steps a statement that returns no rows.
  [[nodiscard]] Status Run(std::string_view action, std::string_view key = {});

  // Columns are numbered from 0.
  [[nodiscard]] std::string ColumnText(int column) const;
  [[nodiscard]] Bytes ColumnBlob(int column) const;
  [[nodiscard]] int64_t ColumnInt(int column) const;
  [[nodiscard]] bool ColumnIsNull(int column) const;
  // The column's bytes without a copy, valid until the next Step or the reset.
  [[nodiscard]] ByteView ColumnBlobView(int column) const;

 private:
  sqlite3* const db_;
  sqlite3_stmt* const stmt_;
  int bind_rc_ = SQLITE_OK;  // the first failed bind, if any
};

// Writes `items` into `out` as a JSON array of strings (`["a","b,c"]`, `[]`). `out` is an output
// parameter so that the store can reuse one buffer per column across calls. Bytes that are not
// ASCII are copied as they are, so any byte string round-trips, UTF-8 or not.
void EncodeStringList(const std::vector<std::string>& items, std::string& out);

// The inverse of EncodeStringList; also reads any JSON array of strings. kDataLoss for anything
// else.
[[nodiscard]] Result<std::vector<std::string>> DecodeStringList(std::string_view json);

}  // namespace accord::sqlite_internal

#endif  // ACCORD_SRC_STORE_SQLITE_UTIL_H_
