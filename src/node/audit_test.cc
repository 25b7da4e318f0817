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
  // Only subtrees of 16 leaves or more are stored.
  auto rows = OpenStore();
  EXPECT_EQ(rows->GetLogNode(4, 3).value(), mem_.Node(4, 3));
  EXPECT_EQ(rows->GetLogNode(6, 0).value(), mem_.Node(6, 0));
  EXPECT_EQ(rows->GetLogNode(3, 0).error().code, Code::kNotFound);
  EXPECT_EQ(rows->ReadLogLeafHashes(17, 1).value()[0], mem_.Node(0, 17));
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

// The log tables as schema version 2 wrote them, filled from the in-memory tree: every complete
// subtree in log_nodes, level 0 the leaf hashes.
TEST_F(AuditLogTest, AVersionTwoLogMigratesAndProves) {
  log_.reset();
  store_.reset();
  std::vector<Bytes> entries;
  for (uint64_t i = 0; i < 50; ++i) {
    entries.push_back(Entry(i));
    mem_.Append(merkle::LeafHash(entries.back()));
  }
  std::string sql =
      "DROP TABLE outbox; DROP TABLE log_entries; DROP TABLE log_nodes;"
      "CREATE TABLE log_entries (idx INTEGER PRIMARY KEY CHECK (idx >= 0), entry BLOB NOT NULL)"
      " STRICT;"
      "CREATE TABLE log_nodes (level INTEGER NOT NULL CHECK (level >= 0 AND level < 64),"
      " idx INTEGER NOT NULL CHECK (idx >= 0), hash BLOB NOT NULL CHECK (length(hash) = 32),"
      " PRIMARY KEY (level, idx)) STRICT, WITHOUT ROWID;"
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

  store_ = OpenStore();  // migrates to version 3
  ASSERT_NE(store_, nullptr);
  log_ = std::make_unique<AuditLog>(*store_);
  ASSERT_EQ(log_->VerifyAll().value(), mem_.Root());
  ExpectSameTree(*log_, mem_.size());
  Append(20);
  ExpectSameTree(*log_, mem_.size());
  ASSERT_EQ(log_->VerifyAll().value(), mem_.Root());
}

TEST_F(AuditLogTest, VerifyAllCatchesAnEditedEntryLeafHashOrSubtree) {
  Append(40);
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
  expect_caught("UPDATE log_entries SET entry = CAST('entry x' AS BLOB) WHERE idx = 21",
                "UPDATE log_entries SET entry = CAST('entry 21' AS BLOB) WHERE idx = 21",
                "entry 21: the stored leaf hash does not match the entries");
  expect_caught("UPDATE log_entries SET leaf_hash = zeroblob(32) WHERE idx = 33",
                "UPDATE log_entries SET leaf_hash = " + Hex(mem_.Node(0, 33)) + " WHERE idx = 33",
                "entry 33: the stored leaf hash does not match the entries");
  expect_caught(
      "UPDATE log_nodes SET hash = zeroblob(32) WHERE level = 4 AND idx = 1",
      "UPDATE log_nodes SET hash = " + Hex(mem_.Node(4, 1)) + " WHERE level = 4 AND idx = 1",
      "entry 31: the stored hash of subtree (level 4, index 1)");
  expect_caught("DELETE FROM log_nodes WHERE level = 5 AND idx = 0",
                "INSERT INTO log_nodes VALUES (5, 0, " + Hex(mem_.Node(5, 0)) + ")",
                "entry 31: the stored hash of subtree (level 5, index 0)");
}

TEST_F(AuditLogTest, AMissingSubtreeHashFailsAProofAsDataLoss) {
  Append(40);
  ASSERT_EQ(ExecSql(path_, "DELETE FROM log_nodes WHERE level = 5 AND idx = 0"), "");
  AuditLog fresh(*store_);  // nothing cached
  auto proof = fresh.Inclusion(39, 40);
  ASSERT_FALSE(proof);
  EXPECT_EQ(proof.error().code, Code::kDataLoss);
  EXPECT_NE(proof.error().message.find("subtree hashes are missing or damaged"), std::string::npos)
      << proof.error().message;
  // Once repaired, the same log object proves again.
  ASSERT_EQ(ExecSql(path_, "INSERT INTO log_nodes VALUES (5, 0, " + Hex(mem_.Node(5, 0)) + ")"),
            "");
  EXPECT_EQ(fresh.Inclusion(39, 40).value(), merkle::InclusionProof(mem_, 39, 40).value());
}

}  // namespace
}  // namespace accord::node_internal
