// The audit log over the SQLite store, stored in tiles: every root and proof against the
// in-memory tree, appends in batches across tile boundaries, another appender, a rollback, a
// migrated version 2 log, and verification catching edits.
#include "audit.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "accord/crypto.h"
#include "accord/merkle.h"
#include "accord/store.h"

namespace accord::node_internal {
namespace {
namespace fs = std::filesystem;

Bytes Entry(uint64_t i) {
  const std::string text = "entry " + std::to_string(i);
  return Bytes(text.begin(), text.end());
}

// Runs `sql` on its own connection; "" on success, else SQLite's message.
std::string ExecSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    sqlite3_close(db);
    return "cannot open";
  }
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string message = rc == SQLITE_OK ? "" : (err != nullptr ? err : "error");
  sqlite3_free(err);
  sqlite3_close(db);
  return message;
}

std::string Hex(const merkle::Hash& h) { return "X'" + merkle::ToHex(h) + "'"; }

class AuditLogTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = testing::TempDir() + "audit-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/state.db";
    store_ = OpenStore();
    log_ = std::make_unique<AuditLog>(*store_);
  }
  void TearDown() override {
    log_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  std::unique_ptr<Store> OpenStore() {
    auto store = OpenSqliteStore(path_);
    EXPECT_TRUE(store) << store.error().ToString();
    return store ? std::move(*store) : nullptr;
  }

  // Appends entries [mem_.size(), mem_.size() + count) in one transaction, through `log`.
  void Append(Store& store, AuditLog& log, uint64_t count) {
    std::vector<Bytes> batch;
    for (uint64_t i = 0; i < count; ++i) batch.push_back(Entry(mem_.size() + i));
    auto s = store.Transact([&]() -> Status {
      ACCORD_ASSIGN_OR_RETURN(const uint64_t first, log.AppendEncoded(batch));
      EXPECT_EQ(first, mem_.size());
      return OkStatus();
    });
    ASSERT_TRUE(s) << s.error().ToString();
    for (const Bytes& e : batch) mem_.Append(merkle::LeafHash(e));
  }
  void Append(uint64_t count) { Append(*store_, *log_, count); }

  // Every root, inclusion proof and consistency proof of sizes up to `max_size` through `log`
  // equals the in-memory tree's.
  void ExpectSameTree(AuditLog& log, uint64_t max_size) {
    ASSERT_EQ(log.Size().value(), mem_.size());
    for (uint64_t size = 0; size <= max_size; ++size) {
      ASSERT_EQ(log.Root(size).value(), merkle::RootHash(mem_, size)) << size;
      for (uint64_t index = 0; index < size; ++index) {
        auto proof = log.Inclusion(index, size);
        ASSERT_TRUE(proof) << index << " " << size << ": " << proof.error().ToString();
        ASSERT_EQ(*proof, merkle::InclusionProof(mem_, index, size).value())
            << index << " " << size;
      }
      for (uint64_t size1 = 0; size1 <= size; ++size1) {
        auto proof = log.Consistency(size1, size);
        ASSERT_TRUE(proof) << size1 << " " << size << ": " << proof.error().ToString();
        ASSERT_EQ(*proof, merkle::ConsistencyProof(mem_, size1, size).value())
            << size1 << " " << size;
      }
    }
  }

  // Every root, inclusion proof and consistency proof ending at each of `sizes`.
  void ExpectSameTreeAt(AuditLog& log, std::initializer_list<uint64_t> sizes) {
    for (const uint64_t size : sizes) {
      ASSERT_EQ(log.Root(size).value(), merkle::RootHash(mem_, size)) << size;
      for (uint64_t index = 0; index < size; ++index) {
        ASSERT_EQ(log.Inclusion(index, size).value(),
                  merkle::InclusionProof(mem_, index, size).value())
            << index << " " << size;
      }
      for (uint64_t size1 = 0; size1 <= size; ++size1) {
        ASSERT_EQ(log.Consistency(size1, size).value(),
                  merkle::ConsistencyProof(mem_, size1, size).value())
            << size1 << " " << size;
      }
    }
  }

  static std::vector<std::pair<int32_t, uint64_t>> Keys(int32_t level, uint64_t index) {
    return {{level, index}};
  }
  static Bytes Tile(Store& store, int32_t level, uint64_t index) {
    auto tiles = store.ReadLogTiles(Keys(level, index));
    EXPECT_TRUE(tiles) << tiles.error().ToString();
    return tiles ? (*tiles)[0] : Bytes{};
  }
  static merkle::Hash Slot(const Bytes& tile, size_t slot) {
    merkle::Hash h;
    std::copy_n(tile.begin() + static_cast<ptrdiff_t>(32 * slot), 32, h.begin());
    return h;
  }
  // Tile (level, index) as it should be stored, from the in-memory tree (store.h's layout).
  Bytes TileOf(int32_t level, uint64_t index) const {
    Bytes out;
    for (int k = 0; k < 4; ++k) {
      for (uint64_t j = 0; j < (uint64_t{16} >> k); ++j) {
        const merkle::Hash h = mem_.Node(4 * level + k, (index << (4 - k)) + j);
        out.insert(out.end(), h.begin(), h.end());
      }
    }
    return out;
  }
  // SQL that stores `hashes` as tile (level, index).
  static std::string SetTileSql(int32_t level, uint64_t index, const Bytes& hashes) {
    const std::string id = std::to_string((uint64_t{static_cast<uint32_t>(level)} << 48) | index);
    return "INSERT OR REPLACE INTO log_tiles (id, hashes) VALUES (" + id + ", X'" +
           HexEncode(hashes) + "')";
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> log_;
  merkle::MemoryTree mem_;
};

TEST_F(AuditLogTest, EveryProofUpTo64MatchesTheMemoryTree) {
  for (uint64_t n = 1; n <= 64; ++n) {
    Append(1);
    // At the current size the last, incomplete tile comes from memory.
    ASSERT_EQ(log_->Root(n).value(), mem_.Root());
    for (uint64_t index = 0; index < n; ++index) {
      ASSERT_EQ(log_->Inclusion(index, n).value(), merkle::InclusionProof(mem_, index, n).value())
          << index << " " << n;
    }
    for (uint64_t size1 = 0; size1 <= n; ++size1) {
      ASSERT_EQ(log_->Consistency(size1, n).value(),
                merkle::ConsistencyProof(mem_, size1, n).value())
          << size1 << " " << n;
    }
  }
  ExpectSameTree(*log_, 64);
  // A fresh log object reads its edge and tail from the store.
  auto other_store = OpenStore();
  AuditLog fresh(*other_store);
  ExpectSameTree(fresh, 64);
  ASSERT_EQ(fresh.VerifyAll().value(), mem_.Root());
  // Four complete tiles of level 0, holding the leaf hashes and the three levels above them;
  // none of level 1 before 256 entries.
  auto rows = OpenStore();
  EXPECT_EQ(Tile(*rows, 0, 3), TileOf(0, 3));
  EXPECT_EQ(rows->ReadLogTiles(Keys(0, 4)).error().code, Code::kNotFound);
  EXPECT_EQ(rows->ReadLogTiles(Keys(1, 0)).error().code, Code::kNotFound);
}

TEST_F(AuditLogTest, TilesAboveLevelZeroHoldFourLevelsOfSubtrees) {
  Append(300);
  const Bytes tile = Tile(*store_, 1, 0);
  ASSERT_EQ(tile.size(), 960u);
  EXPECT_EQ(tile, TileOf(1, 0));
  EXPECT_EQ(Slot(tile, 0), mem_.Node(4, 0));
  EXPECT_EQ(Slot(tile, 15), mem_.Node(4, 15));
  EXPECT_EQ(Slot(tile, 16), mem_.Node(5, 0));
  EXPECT_EQ(Slot(tile, 24), mem_.Node(6, 0));
  EXPECT_EQ(Slot(tile, 29), mem_.Node(7, 1));
  ExpectSameTreeAt(*log_, {255, 256, 257, 271, 272, 299, 300});
  AuditLog fresh(*store_);
  ExpectSameTreeAt(fresh, {1, 16, 17, 256, 257, 300});
  ASSERT_EQ(fresh.VerifyAll().value(), mem_.Root());
}

TEST_F(AuditLogTest, BatchesAcrossTileBoundariesKeepTheTree) {
  for (uint64_t batch : {3, 13, 1, 15, 16, 17, 31, 2, 33, 5}) {
    Append(batch);
    ASSERT_EQ(log_->Root(mem_.size()).value(), mem_.Root()) << mem_.size();
    for (uint64_t index = 0; index < mem_.size(); index += 7) {
      ASSERT_EQ(log_->Inclusion(index, mem_.size()).value(),
                merkle::InclusionProof(mem_, index, mem_.size()).value())
          << index << " " << mem_.size();
    }
  }
  ASSERT_EQ(mem_.size(), 136u);
  ExpectSameTree(*log_, 70);
  ASSERT_EQ(log_->VerifyAll().value(), mem_.Root());
}

TEST_F(AuditLogTest, AnotherAppenderIsNoticed) {
  auto other_store = OpenStore();
  AuditLog other(*other_store);
  Append(5);
  Append(*other_store, other, 20);  // crosses a tile from another connection
  Append(3);
  Append(*other_store, other, 1);
  ASSERT_EQ(log_->Root(mem_.size()).value(), mem_.Root());
  ASSERT_EQ(other.Root(mem_.size()).value(), mem_.Root());
  ExpectSameTree(*log_, mem_.size());
  ASSERT_EQ(log_->VerifyAll().value(), mem_.Root());
}

// Two connections taking turns, as a node's server and federation do: each folds in what the
// other appended (up to kMaxCatchUp entries) or rebuilds (more), across tiles of levels 0 and 1.
TEST_F(AuditLogTest, TurnsOfTwoAppendersKeepBothTreesRight) {
  auto other_store = OpenStore();
  AuditLog other(*other_store);
  const uint64_t steps[] = {1, 1, 2, 13, 1, 16, 3, 40, 1, 255, 1, 256, 1, 257, 7, 1};
  bool mine = true;
  for (const uint64_t count : steps) {
    if (mine) {
      Append(count);
    } else {
      Append(*other_store, other, count);
    }
    mine = !mine;
    const uint64_t n = mem_.size();
    ASSERT_EQ(log_->Root(n).value(), mem_.Root()) << n;
    ASSERT_EQ(other.Root(n).value(), mem_.Root()) << n;
    for (const uint64_t index : {uint64_t{0}, n / 2, n - 1}) {
      ASSERT_EQ(log_->Inclusion(index, n).value(), merkle::InclusionProof(mem_, index, n).value())
          << index << " " << n;
    }
    ASSERT_EQ(log_->Consistency(n / 3, n).value(), merkle::ConsistencyProof(mem_, n / 3, n).value())
        << n;
  }
  ASSERT_EQ(mem_.size(), 856u);
  ExpectSameTreeAt(*log_, {255, 256, 511, 512, 513, 856});
  ExpectSameTreeAt(other, {856});
  ASSERT_EQ(log_->VerifyAll().value(), mem_.Root());
}

// A log object that was not told its append rolled back (Node's transactions always tell it)
// does not fold the other connection's entries onto the entry that is gone: it rebuilds.
TEST_F(AuditLogTest, EntriesAppendedElsewhereAreNotFoldedOntoAnEntryRolledBack) {
  Append(14);
  auto s = store_->Transact([&]() -> Status {
    ACCORD_RETURN_IF_ERROR(log_->AppendEncoded(std::vector<Bytes>{Bytes{'x'}}));
    return Fail(Code::kFailedPrecondition, "the operation failed");
  });
  ASSERT_FALSE(s);
  auto other_store = OpenStore();
  AuditLog other(*other_store);
  Append(*other_store, other, 5);  // entry 14 is another one now
  ASSERT_EQ(log_->Root(mem_.size()).value(), mem_.Root());
  Append(3);
  ExpectSameTreeAt(*log_, {15, 19, 22});
  ASSERT_EQ(log_->VerifyAll().value(), mem_.Root());
}

// Entries held back (Defer) are appended by the next use of the log, in order, before what
// that use appends; a failure to append them fails every later flush until EndDeferral.
TEST_F(AuditLogTest, DeferredEntriesComeFirstAndTheirFailureSticks) {
  Append(3);
  auto s = store_->Transact([&]() -> Status {
    AuditEntry e;
    e.op = "read";
    log_->Defer(e);
    log_->Defer(e);
    EXPECT_EQ(log_->Size().value(), 5u);  // appended by the size's sync
    log_->Defer(e);
    ACCORD_ASSIGN_OR_RETURN(const uint64_t first,
                            log_->AppendEncoded(std::vector<Bytes>{Entry(6)}));
    EXPECT_EQ(first, 6u);
    return OkStatus();
  });
  ASSERT_TRUE(s) << s.error().ToString();
  const std::vector<Bytes> stored = store_->ReadLogEntries(3, 4).value();
  EXPECT_EQ(DecodeEntry(stored[0]).value().op, "read");
  EXPECT_EQ(DecodeEntry(stored[2]).value().op, "read");
  EXPECT_EQ(stored[3], Entry(6));
  for (uint64_t i = 3; i < 7; ++i) mem_.Append(merkle::LeafHash(stored[i - 3]));
  log_->EndDeferral();

  ASSERT_EQ(ExecSql(path_,
                    "CREATE TRIGGER refuse BEFORE INSERT ON log_entries "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"),
            "");
  s = store_->Transact([&]() -> Status {
    log_->Defer(AuditEntry{});
    const Status first = log_->FlushDeferred();
    EXPECT_FALSE(first);
    const Status again = log_->FlushDeferred();  // fails again, with the same error
    EXPECT_FALSE(again);
    if (!first && !again) {
      EXPECT_EQ(again.error().message, first.error().message);
    }
    return again;
  });
  ASSERT_FALSE(s);
  log_->EndDeferral();
  log_->Invalidate();
  ASSERT_EQ(ExecSql(path_, "DROP TRIGGER refuse"), "");
  ASSERT_TRUE(log_->FlushDeferred());
  Append(2);
  ExpectSameTreeAt(*log_, {7, 9});
  ASSERT_EQ(log_->VerifyAll().value(), mem_.Root());
}

TEST_F(AuditLogTest, ARolledBackAppendIsForgotten) {
  Append(14);
  for (const uint64_t count : {1, 2, 20}) {  // within the tile, to its end, past it
    auto s = store_->Transact([&]() -> Status {
      std::vector<Bytes> batch;
      for (uint64_t i = 0; i < count; ++i) batch.push_back(Bytes{'x'});
      ACCORD_RETURN_IF_ERROR(log_->AppendEncoded(batch));
      // A proof inside the transaction sees the entries; the upper cache may keep a hash.
      ACCORD_RETURN_IF_ERROR(log_->Inclusion(0, 14 + count));
      return Fail(Code::kFailedPrecondition, "the operation failed");
    });
    ASSERT_FALSE(s);
    ASSERT_EQ(log_->Size().value(), 14u);
  }
  Append(25);
  ExpectSameTree(*log_, mem_.size());
  ASSERT_EQ(log_->VerifyAll().value(), mem_.Root());
}

// A tile of level 1 written and read (so cached) by an append that rolls back is not used once
// other entries take its place.
TEST_F(AuditLogTest, ARolledBackTileOfLevelOneIsNotKept) {
  Append(250);
  auto s = store_->Transact([&]() -> Status {
    std::vector<Bytes> batch(20, Bytes{'x'});  // completes tile (1, 0) at 256 entries
    ACCORD_RETURN_IF_ERROR(log_->AppendEncoded(batch));
    ACCORD_RETURN_IF_ERROR(log_->Inclusion(3, 270));  // reads tile (1, 0) into the cache
    return Fail(Code::kFailedPrecondition, "the operation failed");
  });
  ASSERT_FALSE(s);
  ASSERT_EQ(log_->Size().value(), 250u);
  Append(20);
  EXPECT_EQ(Tile(*store_, 1, 0), TileOf(1, 0));
  ExpectSameTreeAt(*log_, {256, 270});
  ASSERT_EQ(log_->VerifyAll().value(), mem_.Root());
}

// The log tables as schema version 2 wrote them, filled from the in-memory tree: every complete
// subtree in log_nodes, level 0 the leaf hashes.
TEST_F(AuditLogTest, AVersionTwoLogMigratesAndProves) {
  log_.reset();
  store_.reset();
  std::vector<Bytes> entries;
  for (uint64_t i = 0; i < 300; ++i) {  // tiles of levels 0 and 1
    entries.push_back(Entry(i));
    mem_.Append(merkle::LeafHash(entries.back()));
  }
  std::string sql =
      "DROP TABLE outbox; DROP TABLE outbox_envelopes; DROP TABLE shown_checkpoints; DROP TABLE "
      "log_entries; DROP TABLE "
      "log_tiles;"
      "CREATE TABLE log_entries (idx INTEGER PRIMARY KEY CHECK (idx >= 0), entry BLOB NOT NULL)"
      " STRICT;"
      "CREATE TABLE log_nodes (level INTEGER NOT NULL CHECK (level >= 0 AND level < 64),"
      " idx INTEGER NOT NULL CHECK (idx >= 0), hash BLOB NOT NULL CHECK (length(hash) = 32),"
      " PRIMARY KEY (level, idx)) STRICT, WITHOUT ROWID;"
      "ALTER TABLE objects DROP COLUMN commitment; DROP TABLE witnessings;"
      "UPDATE meta SET value = '2' WHERE key = 'schema_version';";
  for (uint64_t i = 0; i < entries.size(); ++i) {
    sql += "INSERT INTO log_entries VALUES (" + std::to_string(i) + ", CAST('" +
           std::string(entries[i].begin(), entries[i].end()) + "' AS BLOB));";
  }
  for (int level = 0; (uint64_t{1} << level) <= mem_.size(); ++level) {
    for (uint64_t i = 0; (i + 1) << level <= mem_.size(); ++i) {
      sql += "INSERT INTO log_nodes VALUES (" + std::to_string(level) + ", " + std::to_string(i) +
             ", " + Hex(mem_.Node(level, i)) + ");";
    }
  }
  ASSERT_EQ(ExecSql(path_, sql), "");

  store_ = OpenStore();  // migrates to version 3, then on to the tiles of version 5
  ASSERT_NE(store_, nullptr);
  log_ = std::make_unique<AuditLog>(*store_);
  ASSERT_EQ(log_->VerifyAll().value(), mem_.Root());
  EXPECT_EQ(Tile(*store_, 0, 17), TileOf(0, 17));
  EXPECT_EQ(Tile(*store_, 1, 0), TileOf(1, 0));
  ExpectSameTreeAt(*log_, {50, 256, 299, 300});
  Append(220);  // completes tile (1, 1)
  ExpectSameTreeAt(*log_, {300, 511, 512, 520});
  EXPECT_EQ(Tile(*store_, 1, 1), TileOf(1, 1));
  ASSERT_EQ(log_->VerifyAll().value(), mem_.Root());
}

TEST_F(AuditLogTest, VerifyAllCatchesAnEditedEntryLeafHashOrSubtree) {
  Append(300);
  ASSERT_EQ(log_->VerifyAll().value(), mem_.Root());
  const auto expect_caught = [&](const std::string& edit, const std::string& undo,
                                 const std::string& message) {
    ASSERT_EQ(ExecSql(path_, edit), "");
    auto r = log_->VerifyAll();
    ASSERT_FALSE(r) << edit;
    EXPECT_EQ(r.error().code, Code::kDataLoss);
    EXPECT_NE(r.error().message.find(message), std::string::npos) << r.error().message;
    ASSERT_EQ(ExecSql(path_, undo), "");
    ASSERT_EQ(log_->VerifyAll().value(), mem_.Root());
  };
  const auto edited = [&](int32_t level, uint64_t index, size_t slot) {
    Bytes tile = TileOf(level, index);
    std::fill_n(tile.begin() + static_cast<ptrdiff_t>(32 * slot), 32, 0);
    return SetTileSql(level, index, tile);
  };
  expect_caught("UPDATE log_entries SET entry = CAST('entry x' AS BLOB) WHERE idx = 21",
                "UPDATE log_entries SET entry = CAST('entry 21' AS BLOB) WHERE idx = 21",
                "entry 21: the stored leaf hash does not match the entries");
  expect_caught(edited(0, 2, 1), SetTileSql(0, 2, TileOf(0, 2)),
                "entry 33: the stored leaf hash does not match the entries");
  expect_caught(edited(1, 0, 1), SetTileSql(1, 0, TileOf(1, 0)),
                "entry 31: the stored hash of subtree (level 4, index 1) does not match");
  expect_caught(edited(1, 0, 16), SetTileSql(1, 0, TileOf(1, 0)),
                "entry 31: the stored hash of subtree (level 5, index 0) does not match");
  expect_caught(edited(1, 0, 29), SetTileSql(1, 0, TileOf(1, 0)),
                "entry 255: the stored hash of subtree (level 7, index 1) does not match");
  expect_caught("DELETE FROM log_tiles WHERE id = 1", SetTileSql(0, 1, TileOf(0, 1)),
                "entry 31: the stored tile (level 0, index 1) is missing");
  // Entries 288 to 299 are in no complete tile: their row's leaf hash is checked.
  expect_caught("UPDATE log_entries SET leaf_hash = zeroblob(32) WHERE idx = 290",
                "UPDATE log_entries SET leaf_hash = " + Hex(mem_.Node(0, 290)) + " WHERE idx = 290",
                "entry 290: the stored leaf hash does not match the entries");
  expect_caught("UPDATE log_entries SET leaf_hash = zeroblob(32) WHERE idx = 20",
                "UPDATE log_entries SET leaf_hash = " + Hex(mem_.Node(0, 20)) + " WHERE idx = 20",
                "entry 20: the stored leaf hash does not match the entries");
  // A log truncated to 300 entries that kept a tile past them.
  expect_caught(SetTileSql(0, 18, TileOf(0, 0)), "DELETE FROM log_tiles WHERE id = 18",
                "the log holds tile (level 0, index 18) past its 300 entries");
}

TEST_F(AuditLogTest, AMissingTileFailsAProofAsDataLoss) {
  Append(40);
  ASSERT_EQ(ExecSql(path_, "DELETE FROM log_tiles WHERE id = 0"), "");
  AuditLog fresh(*store_);
  auto proof = fresh.Inclusion(39, 40);
  ASSERT_FALSE(proof);
  EXPECT_EQ(proof.error().code, Code::kDataLoss);
  EXPECT_NE(proof.error().message.find("tiles are missing or damaged"), std::string::npos)
      << proof.error().message;
  // Once repaired, the same log object proves again.
  ASSERT_EQ(ExecSql(path_, SetTileSql(0, 0, TileOf(0, 0))), "");
  EXPECT_EQ(fresh.Inclusion(39, 40).value(), merkle::InclusionProof(mem_, 39, 40).value());
}

TEST_F(AuditLogTest, AMissingTileBelowTheEdgeFailsTheNextAppend) {
  Append(300);
  ASSERT_EQ(ExecSql(path_, "DELETE FROM log_tiles WHERE id = 17"), "");
  AuditLog fresh(*store_);  // its edge needs the root of tile (0, 17)
  ASSERT_FALSE(fresh.Size());
  EXPECT_EQ(fresh.Size().error().code, Code::kDataLoss);
  ASSERT_EQ(ExecSql(path_, SetTileSql(0, 17, TileOf(0, 17))), "");
  EXPECT_EQ(fresh.Size().value(), 300u);
}

}  // namespace
}  // namespace accord::node_internal
