// Tests of the SQLite store: round trips of every record, list order, error codes, transactions,
// schema migration, foreign keys, file modes, two writing processes and SIGKILL in the middle of
// a stream of commits.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <limits>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "accord/clock.h"
#include "accord/store.h"
#include "sqlite_util.h"

namespace accord {
namespace {

constexpr size_t kAnyBytes = SIZE_MAX;  // DueDeliveries without a budget

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// --- helpers ---

// A fresh directory under the test temp dir, removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = testing::TempDir() + "accord-store-XXXXXX";
    const char* made = ::mkdtemp(tmpl.data());
    if (made == nullptr) {
      ADD_FAILURE() << "mkdtemp failed: " << std::strerror(errno);
    }
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  [[nodiscard]] std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A raw connection for checks behind the store's back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    sqlite3* raw = nullptr;
    rc_ = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
    db_.reset(raw);
    if (rc_ == SQLITE_OK) {
      sqlite3_busy_timeout(db_.get(), 5'000);
    }
  }
  [[nodiscard]] bool ok() const { return rc_ == SQLITE_OK; }

  // Runs `sql`; returns "" on success, else SQLite's message.
  std::string Exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &err);
    std::string message = rc == SQLITE_OK ? "" : (err != nullptr ? err : "error");
    sqlite3_free(err);
    return message;
  }

  // Every row of `sql`, columns joined by '|'.
  std::vector<std::string> Rows(const std::string& sql) {
    std::vector<std::string> rows;
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "prepare `" << sql << "`: " << sqlite3_errmsg(db_.get());
      return rows;
    }
    sqlite_internal::StmtPtr stmt(raw);
    int rc = SQLITE_OK;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(stmt.get()); ++i) {
        if (i > 0) {
          row += '|';
        }
        const unsigned char* text = sqlite3_column_text(stmt.get(), i);
        row += text != nullptr ? reinterpret_cast<const char*>(text) : "NULL";
      }
      rows.push_back(row);
    }
    if (rc != SQLITE_DONE) {
      ADD_FAILURE() << "step `" << sql << "`: " << sqlite3_errmsg(db_.get());
    }
    return rows;
  }

  std::string One(const std::string& sql) {
    const std::vector<std::string> rows = Rows(sql);
    return rows.empty() ? "<no row>" : rows.front();
  }

 private:
  sqlite_internal::DbPtr db_;
  int rc_ = SQLITE_ERROR;
};

std::string IntegrityCheck(const std::string& path) {
  RawDb db(path);
  if (!db.ok()) {
    return "cannot open";
  }
  return db.One("PRAGMA integrity_check");
}

// Deterministic bytes derived from `seed` (splitmix64), so that a reader can tell whether an
// object's contents are exactly what its writer stored.
Bytes Derived(const std::string& seed, size_t size) {
  uint64_t state = 1469598103934665603ull;
  for (const char c : seed) {
    state = (state ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  Bytes out(size);
  for (size_t i = 0; i < size; ++i) {
    state += 0x9e3779b97f4a7c15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    out[i] = static_cast<uint8_t>(z ^ (z >> 31));
  }
  return out;
}

// The object a writer stores under `id`: every field is a function of the id.
ObjectRecord MakeObject(const std::string& id) {
  ObjectRecord o;
  o.id = id;
  o.originator = "KOR";
  o.level = "SECRET";
  o.topics = {"t-" + id, "a,b"};
  o.compartments = {};
  o.rel_to = {"USA", ""};
  o.version = static_cast<int64_t>(id.size());
  o.ciphertext = Derived("ct:" + id, 1024);
  o.wrapped_key = Derived("wk:" + id, 60);
  o.created_at = Instant{static_cast<int64_t>(Derived("at:" + id, 1)[0]) * 1'000'000};
  o.received_from = "";
  o.commitment = std::string(64, "0123456789abcdef"[id.size() % 16]);
  return o;
}

ReleaseRecord MakeRelease(const std::string& id) {
  return ReleaseRecord{.object_id = id,
                       .to = "USA",
                       .at = Instant{42},
                       .agreement = "gsomia",
                       .level = "SECRET",
                       .package_id = "p-" + id};
}

// Fields as tuples, so that gtest can compare and print records.
auto Fields(const ObjectRecord& o) {
  return std::make_tuple(o.id, o.originator, o.level, o.topics, o.compartments, o.rel_to, o.version,
                         o.ciphertext, o.wrapped_key, o.created_at.micros,
                         o.destroyed_at.has_value() ? o.destroyed_at->micros : int64_t{-1},
                         o.destroyed_at.has_value(), o.received_from, o.commitment);
}
auto Fields(const ReleaseRecord& r) {
  return std::make_tuple(r.object_id, r.to, r.at.micros, r.agreement, r.level, r.package_id);
}
auto Fields(const ForwardRecord& f) {
  return std::make_tuple(f.object_id, f.from, f.to, f.at.micros, f.agreement, f.package_id);
}
auto Fields(const ConsentRecord& c) {
  return std::make_tuple(c.object_id, c.to, c.at.micros, c.notice);
}
auto Fields(const ReclassificationRecord& r) {
  return std::make_tuple(r.object_id, r.version, r.level, r.at.micros, r.notice);
}
auto Fields(const DestructionRecord& d) {
  return std::make_tuple(d.object_id, d.at.micros, d.scope == DestructionScope::kEverywhere, d.by,
                         d.notice);
}
auto Fields(const ReportRecord& r) {
  return std::make_tuple(r.object_id, r.by, r.at.micros, r.kind, r.text, r.notice);
}
auto Fields(const ReceiptRecord& r) {
  return std::make_tuple(r.package_id, r.from, r.by, r.at.micros, r.bytes);
}
auto Fields(const SubjectRecord& s) {
  return std::make_tuple(s.id, s.clearance, s.need_to_know, s.compartments);
}
auto Fields(const PartnerRecord& p) {
  return std::make_tuple(p.party, p.sign_public, p.wrap_public);
}
template <typename R>
auto AllFields(const std::vector<R>& records) {
  std::vector<decltype(Fields(records.front()))> out;
  for (const R& r : records) {
    out.push_back(Fields(r));
  }
  return out;
}

Bytes B(std::string_view text) { return Bytes(text.begin(), text.end()); }

// Strings that break naive list encodings.
const std::vector<std::string>& AwkwardStrings() {
  static const std::vector<std::string> strings = {
      "",
      "a,b",
      ",",
      "\"quoted\"",
      "back\\slash",
      "new\nline",
      "tab\there",
      std::string("nul\0byte", 8),
      "\x01\x1f\x7f",
      "[\"not\",\"a list\"]",
      "\xC3\xBC\xC3\xB1\xC3\xAF\xE2\x82\xAC \xF0\x9F\x94\x92",  // UTF-8, with a 4-byte sequence
      "\xff\xfe not utf-8",
      "  spaces  ",
  };
  return strings;
}

// --- the string-list codec ---

TEST(StringListCodecTest, RoundTripsAwkwardStrings) {
  const std::vector<std::vector<std::string>> lists = {{},    {""},       {"", ""},
                                                       {"a"}, {"a", "b"}, AwkwardStrings()};
  for (const auto& list : lists) {
    std::string json;
    sqlite_internal::EncodeStringList(list, json);
    auto back = sqlite_internal::DecodeStringList(json);
    ASSERT_TRUE(back.has_value()) << json;
    EXPECT_EQ(*back, list) << json;
  }
}

TEST(StringListCodecTest, EncodesAsJsonArrays) {
  std::string json;
  sqlite_internal::EncodeStringList({}, json);
  EXPECT_EQ(json, "[]");
  sqlite_internal::EncodeStringList({"a,b", "", "q\"\\\n"}, json);
  EXPECT_EQ(json, R"(["a,b","","q\"\\\u000a"])");
}

TEST(StringListCodecTest, ReadsOtherJsonSpellings) {
  auto list = sqlite_internal::DecodeStringList(R"( [ "a\/b" , "\u00fc\ud83d\udd12\t" ] )");
  ASSERT_TRUE(list.has_value());
  EXPECT_THAT(*list, ElementsAre("a/b", "\xC3\xBC\xF0\x9F\x94\x92\t"));
}

TEST(StringListCodecTest, RejectsMalformedText) {
  for (const std::string_view bad :
       {"", "a", "[", "]", "[\"a\"", "[\"a\",]", "[,]", "[\"a\" \"b\"]", "[1]", "[\"a\"] x",
        "[\"\\x\"]", "[\"\\u12\"]", "[\"\\udc00\"]", "[\"\\ud800\"]", "[\"raw\nnewline\"]",
        "{\"a\":\"b\"}", "[\"unterminated]"}) {
    auto list = sqlite_internal::DecodeStringList(bad);
    ASSERT_FALSE(list.has_value()) << bad;
    EXPECT_EQ(list.error().code, Code::kDataLoss) << bad;
  }
}

TEST(SqliteErrorTest, MapsResultCodes) {
  using sqlite_internal::CodeForSqlite;
  EXPECT_EQ(CodeForSqlite(SQLITE_BUSY), Code::kUnavailable);
  EXPECT_EQ(CodeForSqlite(SQLITE_BUSY_SNAPSHOT), Code::kUnavailable);
  EXPECT_EQ(CodeForSqlite(SQLITE_LOCKED), Code::kUnavailable);
  EXPECT_EQ(CodeForSqlite(SQLITE_CONSTRAINT_PRIMARYKEY), Code::kAlreadyExists);
  EXPECT_EQ(CodeForSqlite(SQLITE_CONSTRAINT_UNIQUE), Code::kAlreadyExists);
  EXPECT_EQ(CodeForSqlite(SQLITE_CONSTRAINT_FOREIGNKEY), Code::kInternal);
  EXPECT_EQ(CodeForSqlite(SQLITE_CONSTRAINT_NOTNULL), Code::kInternal);
  EXPECT_EQ(CodeForSqlite(SQLITE_CORRUPT), Code::kDataLoss);
  EXPECT_EQ(CodeForSqlite(SQLITE_NOTADB), Code::kDataLoss);
  EXPECT_EQ(CodeForSqlite(SQLITE_IOERR_CORRUPTFS), Code::kDataLoss);
  EXPECT_EQ(CodeForSqlite(SQLITE_IOERR_WRITE), Code::kInternal);
  EXPECT_EQ(CodeForSqlite(SQLITE_FULL), Code::kUnavailable);
}

// --- the store ---

class SqliteStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("state.db");
    auto store = OpenSqliteStore(path_);
    ASSERT_TRUE(store.has_value()) << store.error().ToString();
    store_ = std::move(*store);
  }

  // Inserts objects that history records can point to.
  void AddObjects(std::initializer_list<std::string> ids) {
    for (const std::string& id : ids) {
      ASSERT_TRUE(store_->InsertObject(MakeObject(id)).has_value()) << id;
    }
  }

  // Closes the store and turns its file back into a version 11 database: the envelopes in the
  // outbox's rows (#183).
  void DowngradeToVersionEleven() {
    store_.reset();
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec("ALTER TABLE outbox ADD COLUMN envelope BLOB NOT NULL DEFAULT X''; "
                       "UPDATE outbox SET envelope = (SELECT envelope FROM outbox_envelopes e "
                       "WHERE e.seq = outbox.seq); DROP TABLE outbox_envelopes; "
                       "UPDATE meta SET value = '11' WHERE key = 'schema_version'"),
              "");
  }

  // Closes the store and turns its file back into a version 9 database: objects without a
  // commitment (#109), no witnessings table (#108).
  void DowngradeToVersionNine() {
    ASSERT_NO_FATAL_FAILURE(DowngradeToVersionEleven());
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec("ALTER TABLE objects DROP COLUMN commitment; DROP TABLE witnessings; "
                       "UPDATE meta SET value = '9' WHERE key = 'schema_version'"),
              "");
  }

  ScratchDir dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, ObjectRoundTripsEveryField) {
  ObjectRecord o;
  o.id = "obj-1";
  o.originator = "KOR";
  o.level = "2-KUP";
  o.topics = AwkwardStrings();
  o.compartments = {""};
  o.rel_to = {};
  o.version = 7;
  o.ciphertext = Derived("ct", 1024);
  o.wrapped_key = Derived("wk", 60);
  o.created_at = Instant{-1'234'567};  // before the epoch
  o.destroyed_at = Instant{std::numeric_limits<int64_t>::max()};
  o.received_from = "JPN";
  ASSERT_TRUE(store_->InsertObject(o).has_value());

  ObjectRecord bare;  // defaults: empty strings, lists and blobs, no destroyed_at
  bare.id = "obj-2";
  ASSERT_TRUE(store_->InsertObject(bare).has_value());

  auto got = store_->GetObject("obj-1");
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(Fields(*got), Fields(o));
  auto got_bare = store_->GetObject("obj-2");
  ASSERT_TRUE(got_bare.has_value()) << got_bare.error().ToString();
  EXPECT_EQ(Fields(*got_bare), Fields(bare));
  EXPECT_FALSE(got_bare->destroyed_at.has_value());
  EXPECT_TRUE(got_bare->ciphertext.empty());

  // Stored as the schema says: lists as JSON text, instants as integers, blobs as blobs.
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT typeof(topics), typeof(created_at), typeof(ciphertext), "
                    "compartments, rel_to FROM objects WHERE id = 'obj-1'"),
            "text|integer|blob|[\"\"]|[]");
  EXPECT_EQ(raw.One("SELECT typeof(destroyed_at), typeof(ciphertext), length(ciphertext) "
                    "FROM objects WHERE id = 'obj-2'"),
            "null|blob|0");
}

TEST_F(SqliteStoreTest, DuplicateObjectIsAlreadyExists) {
  ASSERT_TRUE(store_->InsertObject(MakeObject("k-1")).has_value());
  ObjectRecord other = MakeObject("k-1");
  other.level = "TOP SECRET";
  auto again = store_->InsertObject(other);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Code::kAlreadyExists);
  EXPECT_EQ(again.error().message,
            "sqlite: insert object `k-1`: UNIQUE constraint failed: objects.id");
  auto kept = store_->GetObject("k-1");
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->level, "SECRET");
}

TEST_F(SqliteStoreTest, MissingRecordsAreNotFound) {
  auto object = store_->GetObject("x");
  ASSERT_FALSE(object.has_value());
  EXPECT_EQ(object.error().code, Code::kNotFound);
  EXPECT_EQ(object.error().message, "no object `x`");

  auto subject = store_->GetSubject("alice");
  ASSERT_FALSE(subject.has_value());
  EXPECT_EQ(subject.error().code, Code::kNotFound);
  EXPECT_EQ(subject.error().message, "no subject `alice`");

  auto partner = store_->GetPartner("USA");
  ASSERT_FALSE(partner.has_value());
  EXPECT_EQ(partner.error().code, Code::kNotFound);
  EXPECT_EQ(partner.error().message, "no partner `USA`");

  auto update = store_->UpdateSealed(MakeObject("x"));
  ASSERT_FALSE(update.has_value());
  EXPECT_EQ(update.error().code, Code::kNotFound);
  EXPECT_EQ(update.error().message, "no object `x`");

  auto erase = store_->EraseObjectCopy("x", Instant{1});
  ASSERT_FALSE(erase.has_value());
  EXPECT_EQ(erase.error().code, Code::kNotFound);
  EXPECT_EQ(erase.error().message, "no object `x`");
}

TEST_F(SqliteStoreTest, ListObjectsIsOrderedById) {
  auto empty = store_->ListObjects();
  ASSERT_TRUE(empty.has_value());
  EXPECT_THAT(*empty, IsEmpty());
  AddObjects({"b", "c", "a", "B"});
  auto list = store_->ListObjects();
  ASSERT_TRUE(list.has_value()) << list.error().ToString();
  std::vector<std::string> ids;
  for (const ObjectRecord& o : *list) {
    ids.push_back(o.id);
    EXPECT_EQ(Fields(o), Fields(MakeObject(o.id)));
  }
  EXPECT_THAT(ids, ElementsAre("B", "a", "b", "c"));
  // Listed without the sealed fields, which a listing never needs: the same records with the
  // ciphertext and the wrapped key empty, and the ciphertext's size.
  auto labels = store_->ListObjectLabels("", 100);
  ASSERT_TRUE(labels.has_value()) << labels.error().ToString();
  ids.clear();
  for (const ObjectListing& l : *labels) {
    ids.push_back(l.object.id);
    ObjectRecord expected = MakeObject(l.object.id);
    EXPECT_EQ(l.ciphertext_bytes, expected.ciphertext.size());
    expected.ciphertext.clear();
    expected.wrapped_key.clear();
    EXPECT_EQ(Fields(l.object), Fields(expected));
  }
  EXPECT_THAT(ids, ElementsAre("B", "a", "b", "c"));
  // In pages: after an id (bytewise, which need not be one stored), at most `limit`.
  const auto page = [&](std::string_view after, size_t limit) {
    std::vector<std::string> out;
    const std::vector<ObjectListing> listed = store_->ListObjectLabels(after, limit).value();
    for (const ObjectListing& l : listed) {
      out.push_back(l.object.id);
    }
    return out;
  };
  EXPECT_THAT(page("", 2), ElementsAre("B", "a"));
  EXPECT_THAT(page("a", 2), ElementsAre("b", "c"));
  EXPECT_THAT(page("C", 1), ElementsAre("a"));
  EXPECT_THAT(page("b", 10), ElementsAre("c"));
  EXPECT_THAT(page("c", 10), ElementsAre());
  EXPECT_THAT(page("", 0), ElementsAre());
}

TEST_F(SqliteStoreTest, UpdateSealedReplacesOnlyTheSealedFields) {
  AddObjects({"o"});
  ObjectRecord update = MakeObject("o");
  update.level = "TOP SECRET";
  update.version = 2;
  update.ciphertext = B("new ciphertext");
  update.wrapped_key = B("new key");
  update.originator = "ignored";
  update.topics = {"ignored"};
  update.created_at = Instant{999};
  ASSERT_TRUE(store_->UpdateSealed(update).has_value());

  ObjectRecord expected = MakeObject("o");
  expected.level = "TOP SECRET";
  expected.version = 2;
  expected.ciphertext = B("new ciphertext");
  expected.wrapped_key = B("new key");
  auto got = store_->GetObject("o");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(Fields(*got), Fields(expected));
}

// A destroyed copy is not re-sealed (a reclassification that read the object before another
// process destroyed it), only reinstated by a copy received afresh.
TEST_F(SqliteStoreTest, ADestroyedCopyIsReinstatedNotReSealed) {
  AddObjects({"o"});
  ASSERT_TRUE(store_->EraseObjectCopy("o", Instant{5'000'000}));
  ObjectRecord fresh = MakeObject("o");
  fresh.level = "TOP SECRET";
  fresh.version = 3;
  fresh.ciphertext = B("fresh ciphertext");
  fresh.wrapped_key = B("fresh key");
  fresh.created_at = Instant{7'000'000};
  fresh.received_from = "JPN";
  auto update = store_->UpdateSealed(fresh);
  ASSERT_FALSE(update);
  EXPECT_EQ(update.error().code, Code::kFailedPrecondition) << update.error().ToString();
  auto still = store_->GetObject("o");
  ASSERT_TRUE(still);
  EXPECT_TRUE(still->ciphertext.empty());
  EXPECT_TRUE(still->destroyed_at.has_value());

  ASSERT_TRUE(store_->ReinstateObjectCopy(fresh));
  auto got = store_->GetObject("o");
  ASSERT_TRUE(got);
  EXPECT_EQ(Fields(*got), Fields(fresh));  // originator, topics, ... as stored, destroyed_at gone
  EXPECT_EQ(store_->ReinstateObjectCopy(MakeObject("x")).error().code, Code::kNotFound);
}

TEST_F(SqliteStoreTest, EraseObjectCopyEmptiesSealedBytesAndSetsDestroyedAt) {
  AddObjects({"o", "other"});
  ASSERT_TRUE(store_->EraseObjectCopy("o", Instant{5'000'000}).has_value());
  ObjectRecord expected = MakeObject("o");
  expected.ciphertext.clear();
  expected.wrapped_key.clear();
  expected.destroyed_at = Instant{5'000'000};
  auto got = store_->GetObject("o");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(Fields(*got), Fields(expected));
  auto other = store_->GetObject("other");
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(Fields(*other), Fields(MakeObject("other")));
}

bool FileContains(const std::string& file, const Bytes& needle) {
  std::ifstream in(file, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const Bytes bytes(text.begin(), text.end());
  return std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end()) != bytes.end();
}

// secure_delete zeroes the freed bytes in the database pages; the store also empties the WAL
// after an erase, so neither file keeps the erased ciphertext or wrapped key.
TEST_F(SqliteStoreTest, ErasedBytesDoNotLingerInTheFiles) {
  for (const bool in_transaction : {false, true}) {
    SCOPED_TRACE(in_transaction ? "in a transaction" : "autocommit");
    const std::string id = in_transaction ? "erased-in-tx" : "erased";
    const ObjectRecord o = MakeObject(id);
    AddObjects({id});
    const Bytes ct_probe(o.ciphertext.begin() + 100, o.ciphertext.begin() + 164);
    const Bytes key_probe(o.wrapped_key.begin(), o.wrapped_key.begin() + 32);
    ASSERT_TRUE(FileContains(path_ + "-wal", ct_probe) || FileContains(path_, ct_probe));
    if (in_transaction) {
      ASSERT_TRUE(store_->Transact([&] { return store_->EraseObjectCopy(id, Instant{1}); }));
    } else {
      ASSERT_TRUE(store_->EraseObjectCopy(id, Instant{1}).has_value());
    }
    for (const std::string& file : {path_, path_ + "-wal"}) {
      EXPECT_FALSE(FileContains(file, ct_probe)) << file;
      EXPECT_FALSE(FileContains(file, key_probe)) << file;
    }
  }
}

// Beside a reader of another process (a node serving the home while `accord destroy` runs), the
// WAL cannot be emptied at the erase; the store then empties it when it closes, once the reader
// is done (within the busy timeout), instead of leaving the erased bytes in the -wal file.
TEST_F(SqliteStoreTest, ErasedBytesGoWhenTheStoreClosesAfterAnotherReader) {
  const ObjectRecord o = MakeObject("erased");
  AddObjects({"erased"});
  const Bytes ct_probe(o.ciphertext.begin() + 100, o.ciphertext.begin() + 164);
  const Bytes key_probe(o.wrapped_key.begin(), o.wrapped_key.begin() + 32);
  RawDb reader(path_);
  ASSERT_TRUE(reader.ok());
  ASSERT_EQ(reader.Exec("BEGIN; SELECT count(*) FROM objects;"), "");  // an older snapshot
  ASSERT_TRUE(store_->EraseObjectCopy("erased", Instant{1}).has_value());
  EXPECT_TRUE(FileContains(path_ + "-wal", ct_probe) || FileContains(path_, ct_probe));
  std::thread done([&reader] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(reader.Exec("COMMIT"), "");
  });
  store_.reset();  // waits for the reader, then empties the WAL
  done.join();
  for (const std::string& file : {path_, path_ + "-wal"}) {
    EXPECT_FALSE(FileContains(file, ct_probe)) << file;
    EXPECT_FALSE(FileContains(file, key_probe)) << file;
  }
}

TEST_F(SqliteStoreTest, MetaRoundTripsAndOverwrites) {
  auto missing = store_->GetMeta("party");
  ASSERT_TRUE(missing.has_value());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(store_->SetMeta("party", "KOR").has_value());
  ASSERT_TRUE(store_->SetMeta("empty", "").has_value());
  ASSERT_TRUE(store_->SetMeta("party", "JPN").has_value());
  EXPECT_EQ(store_->GetMeta("party").value(), std::optional<std::string>("JPN"));
  EXPECT_EQ(store_->GetMeta("empty").value(), std::optional<std::string>(""));

  auto reserved = store_->SetMeta("schema_version", "2");
  ASSERT_FALSE(reserved.has_value());
  EXPECT_EQ(reserved.error().code, Code::kInvalidArgument);
  EXPECT_EQ(store_->GetMeta("schema_version").value(),
            std::optional<std::string>(std::to_string(kStoreSchemaVersion)));
}

// Witnessings by origin and size: the latest, and the one with the largest size at or below an
// index; the same size again keeps the later time.
TEST_F(SqliteStoreTest, WitnessingsAreFoundBySizeAtOrBelow) {
  EXPECT_FALSE(store_->LatestWitnessing("accord/KOR").value());
  const Instant any{INT64_MAX};
  EXPECT_FALSE(store_->WitnessingAtOrBelow("accord/KOR", 100, any).value());
  ASSERT_TRUE(store_->InsertWitnessing({"accord/KOR", 10, Instant{1000}}));
  ASSERT_TRUE(store_->InsertWitnessing({"accord/KOR", 20, Instant{2000}}));
  ASSERT_TRUE(store_->InsertWitnessing({"accord/JPN", 50, Instant{9000}}));
  ASSERT_TRUE(store_->InsertWitnessing({"accord/KOR", 10, Instant{1500}}));
  ASSERT_TRUE(store_->InsertWitnessing({"accord/KOR", 10, Instant{1200}}));
  EXPECT_EQ(store_->LatestWitnessing("accord/KOR").value()->size, 20u);
  EXPECT_FALSE(store_->WitnessingAtOrBelow("accord/KOR", 9, any).value());
  const auto at_ten = store_->WitnessingAtOrBelow("accord/KOR", 19, any).value();
  ASSERT_TRUE(at_ten);
  EXPECT_EQ(at_ten->size, 10u);
  EXPECT_EQ(at_ten->at.micros, 1500);
  EXPECT_EQ(store_->WitnessingAtOrBelow("accord/KOR", 20, any).value()->size, 20u);
  EXPECT_EQ(store_->WitnessingAtOrBelow("accord/KOR", 1000, any).value()->at.micros, 2000);
  // Not after a time: a later one is passed over for the one before it.
  EXPECT_EQ(store_->WitnessingAtOrBelow("accord/KOR", 1000, Instant{1999}).value()->size, 10u);
  EXPECT_FALSE(store_->WitnessingAtOrBelow("accord/KOR", 1000, Instant{999}).value());
}

TEST_F(SqliteStoreTest, ReleasesRoundTripInOrderOfAtThenInsertion) {
  AddObjects({"o", "p"});
  const std::vector<ReleaseRecord> in = {
      {"o", "third", Instant{30}, "a1", "S", "pk1"},
      {"o", "first", Instant{10}, "a,2", "", "pk2"},
      {"o", "second", Instant{10}, "", "TS", ""},
      {"o", "before", Instant{-5}, "a4", "C", "pk4"},
  };
  for (const ReleaseRecord& r : in) {
    ASSERT_TRUE(store_->InsertRelease(r).has_value());
  }
  ASSERT_TRUE(store_->InsertRelease({"p", "x", Instant{0}, "a", "S", "pp"}).has_value());
  auto list = store_->ListReleases("o");
  ASSERT_TRUE(list.has_value()) << list.error().ToString();
  EXPECT_EQ(AllFields(*list), AllFields(std::vector<ReleaseRecord>{in[3], in[1], in[2], in[0]}));
  auto none = store_->ListReleases("nothing");
  ASSERT_TRUE(none.has_value());
  EXPECT_THAT(*none, IsEmpty());
}

TEST_F(SqliteStoreTest, ForwardsRoundTripInOrderOfAtThenInsertion) {
  AddObjects({"o", "p"});
  const std::vector<ForwardRecord> in = {
      {"o", "USA", "GBR", Instant{20}, "five", "f1"},
      {"o", "USA", "CAN", Instant{20}, "five", "f2"},
      {"o", "JPN", "AUS", Instant{10}, "", ""},
  };
  for (const ForwardRecord& f : in) {
    ASSERT_TRUE(store_->InsertForward(f).has_value());
  }
  ASSERT_TRUE(store_->InsertForward({"p", "a", "b", Instant{1}, "c", "d"}).has_value());
  auto list = store_->ListForwards("o");
  ASSERT_TRUE(list.has_value()) << list.error().ToString();
  EXPECT_EQ(AllFields(*list), AllFields(std::vector<ForwardRecord>{in[2], in[0], in[1]}));
}

TEST_F(SqliteStoreTest, ConsentsRoundTripInOrderOfAtThenInsertion) {
  AddObjects({"o"});
  const std::vector<ConsentRecord> in = {
      {"o", "GBR", Instant{3}, Derived("n1", 100)},
      {"o", "CAN", Instant{1}, {}},
      {"o", "AUS", Instant{3}, B(std::string_view("\0\1\2", 3))},
  };
  for (const ConsentRecord& c : in) {
    ASSERT_TRUE(store_->InsertConsent(c).has_value());
  }
  auto list = store_->ListConsents("o");
  ASSERT_TRUE(list.has_value()) << list.error().ToString();
  EXPECT_EQ(AllFields(*list), AllFields(std::vector<ConsentRecord>{in[1], in[0], in[2]}));
}

TEST_F(SqliteStoreTest, ReclassificationsRoundTripInOrderOfAtThenInsertion) {
  AddObjects({"o"});
  const std::vector<ReclassificationRecord> in = {
      {"o", 3, "C", Instant{300}, B("n3")},
      {"o", 2, "S", Instant{200}, B("n2")},
      {"o", 4, "U", Instant{300}, {}},
  };
  for (const ReclassificationRecord& r : in) {
    ASSERT_TRUE(store_->InsertReclassification(r).has_value());
  }
  auto list = store_->ListReclassifications("o");
  ASSERT_TRUE(list.has_value()) << list.error().ToString();
  EXPECT_EQ(AllFields(*list), AllFields(std::vector<ReclassificationRecord>{in[1], in[0], in[2]}));
}

TEST_F(SqliteStoreTest, DestructionsRoundTripInOrderOfAtThenInsertion) {
  AddObjects({"o"});
  const std::vector<DestructionRecord> in = {
      {"o", Instant{9}, DestructionScope::kEverywhere, "KOR", B("signed notice")},
      {"o", Instant{8}, DestructionScope::kLocal, "JPN", {}},
      {"o", Instant{9}, DestructionScope::kLocal, "USA", {}},
  };
  for (const DestructionRecord& d : in) {
    ASSERT_TRUE(store_->InsertDestruction(d).has_value());
  }
  auto list = store_->ListDestructions("o");
  ASSERT_TRUE(list.has_value()) << list.error().ToString();
  EXPECT_EQ(AllFields(*list), AllFields(std::vector<DestructionRecord>{in[1], in[0], in[2]}));
  EXPECT_EQ((*list)[1].scope, DestructionScope::kEverywhere);
  EXPECT_EQ((*list)[2].scope, DestructionScope::kLocal);
}

TEST_F(SqliteStoreTest, ReportsRoundTripInOrderOfAtThenInsertion) {
  AddObjects({"o"});
  const std::vector<ReportRecord> in = {
      {"o", "USA", Instant{2}, "loss", "left on a train, \"seat 4\"\nsecond line", B("n")},
      {"o", "GBR", Instant{1}, "compromise", "", {}},
      {"o", "CAN", Instant{2}, "loss", "x", B("m")},
  };
  for (const ReportRecord& r : in) {
    ASSERT_TRUE(store_->InsertReport(r).has_value());
  }
  auto list = store_->ListReports("o");
  ASSERT_TRUE(list.has_value()) << list.error().ToString();
  EXPECT_EQ(AllFields(*list), AllFields(std::vector<ReportRecord>{in[1], in[0], in[2]}));
}

TEST_F(SqliteStoreTest, PackagesAreKeptAndDuplicatesOfASenderRefused) {
  const PackageRecord p{.id = "pkg-1",
                        .kind = "release",
                        .object_id = "not-stored-yet",
                        .from = "KOR",
                        .at = Instant{100},
                        .received_at = Instant{200},
                        .bytes = Derived("envelope", 300)};
  EXPECT_EQ(store_->HasPackage("KOR", "pkg-1").value(), false);
  ASSERT_TRUE(store_->InsertPackage(p).has_value());
  EXPECT_EQ(store_->HasPackage("KOR", "pkg-1").value(), true);
  EXPECT_EQ(store_->HasPackage("KOR", "pkg-2").value(), false);
  // Another sender's package of the same id is another package: a partner that learns an id
  // cannot take it first.
  EXPECT_EQ(store_->HasPackage("USA", "pkg-1").value(), false);
  PackageRecord other = p;
  other.from = "USA";
  ASSERT_TRUE(store_->InsertPackage(other).has_value());
  EXPECT_EQ(store_->HasPackage("USA", "pkg-1").value(), true);

  auto again = store_->InsertPackage(p);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Code::kAlreadyExists);
  EXPECT_EQ(again.error().message,
            "sqlite: insert package `pkg-1`: UNIQUE constraint failed: packages.from_party, "
            "packages.id");

  // The interface has no reader for a package's fields: check the row itself.
  RawDb raw(path_);
  EXPECT_EQ(
      raw.One("SELECT kind, object_id, from_party, at, received_at, length(bytes), "
              "hex(substr(bytes, 1, 4)) FROM packages WHERE id = 'pkg-1' AND from_party = 'KOR'"),
      "release|not-stored-yet|KOR|100|200|300|" + [] {
        const Bytes b = Derived("envelope", 4);
        char hex[9];
        std::snprintf(hex, sizeof hex, "%02X%02X%02X%02X", b[0], b[1], b[2], b[3]);
        return std::string(hex);
      }());
}

// The orders kept about an object for its copy to come are read by sender and kind: only its
// originator's consent, reclassify and destroy notices, in the order they were taken, however
// many notices other partners sent about the same id.
TEST_F(SqliteStoreTest, TheOrdersAboutAnObjectAreItsSendersOnly) {
  int n = 0;
  const auto keep = [&](const std::string& kind, const std::string& object,
                        const std::string& from) {
    ++n;
    return store_->InsertPackage(PackageRecord{.id = "n-" + std::to_string(n),
                                               .kind = kind,
                                               .object_id = object,
                                               .from = from,
                                               .at = Instant{n},
                                               .received_at = Instant{n},
                                               .bytes = Derived(kind, 16)});
  };
  ASSERT_TRUE(keep("consent", "k-1", "KOR"));     // n-1
  ASSERT_TRUE(keep("destroy", "k-1", "USA"));     // another party's: not an order
  ASSERT_TRUE(keep("release", "k-1", "KOR"));     // a package, not an order
  ASSERT_TRUE(keep("reclassify", "k-1", "KOR"));  // n-4
  ASSERT_TRUE(keep("destroy", "k-2", "KOR"));     // another object
  ASSERT_TRUE(keep("report", "k-1", "KOR"));      // a report orders nothing
  ASSERT_TRUE(keep("destroy", "k-1", "KOR"));     // n-7
  std::vector<std::string> ids;
  const std::vector<PackageRecord> orders = store_->ListOrders("k-1", "KOR").value();
  for (const PackageRecord& p : orders) ids.push_back(p.id);
  EXPECT_THAT(ids, ElementsAre("n-1", "n-4", "n-7"));
  EXPECT_EQ(store_->ListOrders("k-1", "USA").value().size(), 1u);
  EXPECT_TRUE(store_->ListOrders("k-3", "KOR").value().empty());
}

TEST_F(SqliteStoreTest, ReceiptsAreKeyedByPackageSenderAndSignerInOrderOfAt) {
  const std::vector<ReceiptRecord> in = {
      {"pkg-1", "KOR", "USA", Instant{50}, B("r1")},
      {"pkg-1", "KOR", "GBR", Instant{40}, B("r2")},  // same package, another signer: allowed
      {"pkg-2", "KOR", "USA", Instant{50}, {}},
      {"pkg-1", "JPN", "USA", Instant{70}, B("r3")},  // another sender's package of that id
  };
  auto empty = store_->ListReceipts();
  ASSERT_TRUE(empty.has_value());
  EXPECT_THAT(*empty, IsEmpty());
  for (const ReceiptRecord& r : in) {
    ASSERT_TRUE(store_->InsertReceipt(r).has_value());
  }
  auto again = store_->InsertReceipt({"pkg-1", "KOR", "USA", Instant{60}, B("other")});
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Code::kAlreadyExists);
  EXPECT_THAT(again.error().message, HasSubstr("sqlite: insert receipt for `pkg-1`: UNIQUE"));

  auto list = store_->ListReceipts();
  ASSERT_TRUE(list.has_value()) << list.error().ToString();
  EXPECT_EQ(AllFields(*list), AllFields(std::vector<ReceiptRecord>{in[1], in[0], in[2], in[3]}));
}

TEST_F(SqliteStoreTest, SubjectsRoundTripAndReplace) {
  const SubjectRecord alice{"alice", "SECRET", AwkwardStrings(), {}};
  const SubjectRecord bob{"bob", "", {""}, {"NATO", "a,b"}};
  ASSERT_TRUE(store_->PutSubject(bob).has_value());
  ASSERT_TRUE(store_->PutSubject(alice).has_value());
  auto got = store_->GetSubject("alice");
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(Fields(*got), Fields(alice));

  const SubjectRecord bob2{"bob", "TOP SECRET", {}, {"x"}};
  ASSERT_TRUE(store_->PutSubject(bob2).has_value());
  auto list = store_->ListSubjects();
  ASSERT_TRUE(list.has_value()) << list.error().ToString();
  EXPECT_EQ(AllFields(*list), AllFields(std::vector<SubjectRecord>{alice, bob2}));

  ASSERT_TRUE(store_->DeleteSubject("bob").has_value());
  EXPECT_EQ(store_->GetSubject("bob").error().code, Code::kNotFound);
  const Status again = store_->DeleteSubject("bob");
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Code::kNotFound);
  EXPECT_EQ(again.error().message, "no subject `bob`");
  list = store_->ListSubjects();
  ASSERT_TRUE(list.has_value()) << list.error().ToString();
  EXPECT_EQ(AllFields(*list), AllFields(std::vector<SubjectRecord>{alice}));
}

TEST_F(SqliteStoreTest, PartnersRoundTripAndReplace) {
  PartnerRecord usa{.party = "USA"};
  PartnerRecord gbr{.party = "GBR"};
  for (size_t i = 0; i < kPublicKeySize; ++i) {
    usa.sign_public[i] = static_cast<uint8_t>(i);
    usa.wrap_public[i] = static_cast<uint8_t>(255 - i);
    gbr.sign_public[i] = static_cast<uint8_t>(i * 7);
  }
  ASSERT_TRUE(store_->PutPartner(usa).has_value());
  ASSERT_TRUE(store_->PutPartner(gbr).has_value());
  auto got = store_->GetPartner("USA");
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(Fields(*got), Fields(usa));

  usa.wrap_public.fill(9);
  ASSERT_TRUE(store_->PutPartner(usa).has_value());
  auto list = store_->ListPartners();
  ASSERT_TRUE(list.has_value()) << list.error().ToString();
  EXPECT_EQ(AllFields(*list), AllFields(std::vector<PartnerRecord>{gbr, usa}));
}

TEST_F(SqliteStoreTest, CorruptRowsAreDataLoss) {
  AddObjects({"o"});
  PartnerRecord usa{.party = "USA"};
  ASSERT_TRUE(store_->PutPartner(usa).has_value());
  ASSERT_TRUE(store_->PutSubject({"alice", "S", {}, {}}).has_value());
  ASSERT_TRUE(store_->InsertDestruction({"o", Instant{1}, DestructionScope::kLocal, "K", {}}));
  {
    RawDb raw(path_);
    // Write what the schema's checks forbid, as a damaged or hand-edited file might hold.
    ASSERT_EQ(raw.Exec("PRAGMA ignore_check_constraints = ON;"
                       "UPDATE partners SET sign_public = X'0102' WHERE party = 'USA';"
                       "UPDATE objects SET topics = 'a,b' WHERE id = 'o';"
                       "UPDATE subjects SET need_to_know = '[1]' WHERE id = 'alice';"
                       "UPDATE destructions SET scope = 'somewhere' WHERE object_id = 'o';"),
              "");
  }
  auto partner = store_->GetPartner("USA");
  ASSERT_FALSE(partner.has_value());
  EXPECT_EQ(partner.error().code, Code::kDataLoss);
  EXPECT_EQ(partner.error().message, "corrupt signing key of `USA` in the store");
  EXPECT_EQ(store_->ListPartners().error().code, Code::kDataLoss);

  auto object = store_->GetObject("o");
  ASSERT_FALSE(object.has_value());
  EXPECT_EQ(object.error().code, Code::kDataLoss);
  EXPECT_EQ(object.error().message, "corrupt topics of `o` in the store");
  EXPECT_EQ(store_->ListObjects().error().code, Code::kDataLoss);

  EXPECT_EQ(store_->GetSubject("alice").error().code, Code::kDataLoss);
  EXPECT_EQ(store_->ListDestructions("o").error().code, Code::kDataLoss);
}

// --- transactions ---

TEST_F(SqliteStoreTest, TransactCommitsWhenTheBodySucceeds) {
  auto status = store_->Transact([&]() -> Status {
    ACCORD_RETURN_IF_ERROR(store_->InsertObject(MakeObject("o")));
    ACCORD_RETURN_IF_ERROR(store_->InsertRelease(MakeRelease("o")));
    return store_->SetMeta("party", "KOR");
  });
  ASSERT_TRUE(status.has_value()) << status.error().ToString();
  store_.reset();  // visible to a new connection, not only to this one
  auto reopened = OpenSqliteStore(path_);
  ASSERT_TRUE(reopened.has_value());
  EXPECT_TRUE((*reopened)->GetObject("o").has_value());
  EXPECT_EQ((*reopened)->ListReleases("o").value().size(), 1u);
  EXPECT_EQ((*reopened)->GetMeta("party").value(), std::optional<std::string>("KOR"));
}

TEST_F(SqliteStoreTest, TransactRollsBackWhenTheBodyFails) {
  auto status = store_->Transact([&]() -> Status {
    ACCORD_RETURN_IF_ERROR(store_->InsertObject(MakeObject("o")));
    ACCORD_RETURN_IF_ERROR(store_->InsertRelease(MakeRelease("o")));
    ACCORD_RETURN_IF_ERROR(store_->SetMeta("party", "KOR"));
    EXPECT_TRUE(store_->GetObject("o").has_value());  // visible inside
    return Fail(Code::kPermissionDenied, "permission denied");
  });
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, Code::kPermissionDenied);
  EXPECT_EQ(status.error().message, "permission denied");
  EXPECT_EQ(store_->GetObject("o").error().code, Code::kNotFound);
  EXPECT_THAT(store_->ListReleases("o").value(), IsEmpty());
  EXPECT_FALSE(store_->GetMeta("party").value().has_value());
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT count(*) FROM objects"), "0");
}

TEST_F(SqliteStoreTest, TransactRollsBackWhenAStatementFails) {
  AddObjects({"dup"});
  auto status = store_->Transact([&]() -> Status {
    ACCORD_RETURN_IF_ERROR(store_->InsertObject(MakeObject("new")));
    return store_->InsertObject(MakeObject("dup"));
  });
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, Code::kAlreadyExists);
  EXPECT_EQ(store_->GetObject("new").error().code, Code::kNotFound);
  // The store is usable afterwards.
  ASSERT_TRUE(store_->Transact([&] { return store_->InsertObject(MakeObject("later")); }));
  EXPECT_TRUE(store_->GetObject("later").has_value());
}

TEST_F(SqliteStoreTest, TransactRollsBackWhenTheBodyThrows) {
  auto status = store_->Transact([&]() -> Status {
    ACCORD_RETURN_IF_ERROR(store_->InsertObject(MakeObject("o")));
    throw std::runtime_error("boom");
  });
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, Code::kInternal);
  EXPECT_EQ(status.error().message, "transaction body threw: boom");
  EXPECT_EQ(store_->GetObject("o").error().code, Code::kNotFound);
  ASSERT_TRUE(store_->Transact([&] { return store_->InsertObject(MakeObject("o")); }));
}

TEST_F(SqliteStoreTest, ANestedTransactionFailsAloneAndCommitsWithTheOuterOne) {
  auto status = store_->Transact([&]() -> Status {
    ACCORD_RETURN_IF_ERROR(store_->InsertObject(MakeObject("outer")));
    auto failed = store_->Transact([&]() -> Status {
      ACCORD_RETURN_IF_ERROR(store_->InsertObject(MakeObject("undone")));
      return Fail(Code::kFailedPrecondition, "changed my mind");
    });
    EXPECT_EQ(failed.error().code, Code::kFailedPrecondition);
    EXPECT_EQ(store_->GetObject("undone").error().code, Code::kNotFound);
    auto kept = store_->Transact([&]() -> Status {
      ACCORD_RETURN_IF_ERROR(store_->InsertObject(MakeObject("inner")));
      // Two levels deep, and a body that throws.
      auto threw = store_->Transact([&]() -> Status {
        ACCORD_RETURN_IF_ERROR(store_->InsertObject(MakeObject("deep")));
        throw std::runtime_error("boom");
      });
      EXPECT_EQ(threw.error().code, Code::kInternal);
      return OkStatus();
    });
    EXPECT_TRUE(kept.has_value()) << kept.error().ToString();
    // Not committed yet: another connection does not see it.
    RawDb other(path_);
    EXPECT_EQ(other.One("SELECT count(*) FROM objects"), "0");
    return OkStatus();
  });
  ASSERT_TRUE(status.has_value()) << status.error().ToString();
  EXPECT_TRUE(store_->GetObject("outer").has_value());
  EXPECT_TRUE(store_->GetObject("inner").has_value());
  EXPECT_EQ(store_->GetObject("undone").error().code, Code::kNotFound);
  EXPECT_EQ(store_->GetObject("deep").error().code, Code::kNotFound);

  // The outer transaction's failure undoes what nested ones did.
  auto rolled_back = store_->Transact([&]() -> Status {
    EXPECT_TRUE(store_->Transact([&] { return store_->InsertObject(MakeObject("lost")); }));
    return Fail(Code::kFailedPrecondition, "outer failure");
  });
  EXPECT_EQ(rolled_back.error().code, Code::kFailedPrecondition);
  EXPECT_EQ(store_->GetObject("lost").error().code, Code::kNotFound);
}

// SQLite rolls a whole transaction back by itself after some errors (an I/O error, no memory, a
// trigger's RAISE(ROLLBACK)). A body that does not pass the error on (a group answers it to one
// request) then ran its later statements on their own, each committed alone, and the COMMIT
// failed as `internal` ("no transaction is active"). Now those statements are refused, and the
// transaction says it was rolled back, as `unavailable`.
TEST_F(SqliteStoreTest, AWriteAfterSQLiteRolledTheTransactionBackDoesNotCommitAlone) {
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec("CREATE TRIGGER no_subjects BEFORE INSERT ON subjects "
                       "BEGIN SELECT RAISE(ROLLBACK, 'no subjects here'); END"),
              "");
  }
  SubjectRecord subject;
  subject.id = "kor-analyst";
  subject.clearance = "II";
  bool later_write_refused = false;
  auto status = store_->Transact([&]() -> Status {
    EXPECT_TRUE(store_->SetMeta("before", "1").has_value());
    EXPECT_FALSE(store_->PutSubject(subject).has_value());
    later_write_refused = !store_->SetMeta("after", "1").has_value();
    return OkStatus();
  });
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, Code::kUnavailable);
  EXPECT_THAT(status.error().message,
              HasSubstr("an error within the transaction made SQLite roll it back, nothing of "
                        "it is stored"));
  EXPECT_TRUE(later_write_refused);
  EXPECT_EQ(store_->GetMeta("before").value(), std::nullopt);
  EXPECT_EQ(store_->GetMeta("after").value(), std::nullopt);
  // The store goes on.
  ASSERT_TRUE(store_->Transact([&] { return store_->SetMeta("next", "1"); }));
  EXPECT_EQ(store_->GetMeta("next").value(), std::optional<std::string>("1"));
}

TEST_F(SqliteStoreTest, AnUnsyncedTransactionCommitsAndSyncCommitsMakesItDurable) {
  ASSERT_TRUE(store_->TransactUnsynced([&] { return store_->InsertObject(MakeObject("a")); }));
  RawDb other(path_);
  EXPECT_EQ(other.One("SELECT count(*) FROM objects"), "1");  // committed
  auto failed = store_->TransactUnsynced([&]() -> Status {
    ACCORD_RETURN_IF_ERROR(store_->InsertObject(MakeObject("b")));
    return Fail(Code::kFailedPrecondition, "no");
  });
  EXPECT_EQ(failed.error().code, Code::kFailedPrecondition);
  EXPECT_EQ(store_->GetObject("b").error().code, Code::kNotFound);
  // Inside a transaction it is a nested one, and a plain transaction afterwards works.
  ASSERT_TRUE(store_->Transact([&] {
    return store_->TransactUnsynced([&] { return store_->InsertObject(MakeObject("c")); });
  }));
  ASSERT_TRUE(store_->Transact([&] { return store_->InsertObject(MakeObject("d")); }));
  EXPECT_EQ(other.One("SELECT count(*) FROM objects"), "3");

  // SyncCommits runs on another thread while this one goes on committing.
  std::atomic<bool> done = false;
  std::thread syncer([&] {
    while (!done) {
      EXPECT_TRUE(store_->SyncCommits().has_value());
    }
  });
  for (int i = 0; i < 50; ++i) {
    EXPECT_TRUE(store_->TransactUnsynced(
        [&] { return store_->InsertObject(MakeObject("o" + std::to_string(i))); }));
  }
  done = true;
  syncer.join();
  ASSERT_TRUE(store_->SyncCommits().has_value());
  EXPECT_EQ(other.One("SELECT count(*) FROM objects"), "53");
}

// The disk fails one fdatasync (EIO), as it would for a write lost in writeback. Linux reports
// such a loss once per descriptor, so the next fdatasync would succeed without those pages: every
// later sync must fail too, and so must every later write, from any connection of the process
// (one acknowledged after the lost pages could be lost with them).
std::atomic<bool> g_disk_fails{false};
int SyncOrFail(int fd) {
  if (g_disk_fails) {
    errno = EIO;
    return -1;
  }
  return ::fdatasync(fd);
}

TEST(SqliteStoreFileTest, AFailedSyncFailsEveryLaterSyncAndWrite) {
  ScratchDir dir;
  SqliteOptions options;
  options.sync_file_for_testing = &SyncOrFail;
  auto opened = OpenSqliteStore(dir.File("state.db"), options);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  Store& store = **opened;
  const auto commit = [&](const std::string& id) {
    return store.TransactUnsynced([&] { return store.InsertObject(MakeObject(id)); });
  };
  ASSERT_TRUE(commit("a").has_value());
  ASSERT_TRUE(store.SyncCommits().has_value());

  ASSERT_TRUE(commit("b").has_value());
  g_disk_fails = true;
  auto failed = store.SyncCommits();
  g_disk_fails = false;
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, Code::kUnavailable);
  EXPECT_THAT(failed.error().message, HasSubstr("Input/output error"));

  // The disk works again, but what "b" wrote may be gone: no later sync vouches for it, and no
  // later commit is made on top of it.
  const auto refused = [](const Status& s) {
    return !s.has_value() && s.error().code == Code::kUnavailable &&
           s.error().message.find("an earlier sync of `") != std::string::npos &&
           s.error().message.find("failed (input/output error)") != std::string::npos &&
           s.error().message.find("restart the node") != std::string::npos;
  };
  EXPECT_TRUE(refused(store.SyncCommits()));
  EXPECT_TRUE(refused(commit("c")));
  EXPECT_TRUE(refused(store.Transact([&] { return store.InsertObject(MakeObject("d")); })));
  EXPECT_TRUE(refused(store.CheckWritable()));
  auto other = OpenSqliteStore(dir.File("state.db"), SqliteOptions{});
  ASSERT_TRUE(other.has_value()) << other.error().ToString();
  EXPECT_TRUE(refused((*other)->Transact([&] { return (*other)->InsertObject(MakeObject("e")); })));
  // A write run on its own, outside any transaction (the federation records its attempts so),
  // is turned into a rollback by the commit hook.
  EXPECT_FALSE(store.PutSubject({"alice", "S", {}, {}}).has_value());
  EXPECT_EQ(store.GetSubject("alice").error().code, Code::kNotFound);
  // Reads go on: "b" is committed, though perhaps not on disk.
  EXPECT_TRUE(store.GetObject("b").has_value());
  EXPECT_FALSE(store.GetObject("c").has_value());
}

// Opens the store at `path`, commits the object "a" (`synced`: with its own sync, as a command
// does; or not, as a server's group), fails the next sync, and closes the store: writes are then
// stopped (checked before the close).
void CommitThenFailASyncAndClose(const std::string& path, bool synced) {
  SqliteOptions options;
  options.sync_file_for_testing = &SyncOrFail;
  auto opened = OpenSqliteStore(path, options);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  Store& store = **opened;
  const auto insert = [&] { return store.InsertObject(MakeObject("a")); };
  ASSERT_TRUE(synced ? store.Transact(insert) : store.TransactUnsynced(insert));
  g_disk_fails = true;
  const Status failed = store.SyncCommits();
  g_disk_fails = false;
  ASSERT_FALSE(failed.has_value());
  EXPECT_FALSE(store.CheckWritable().has_value());
}

// After commits that did not sync, a failed sync leaves the -wal file to the next open's
// recovery, which checks every frame: no checkpoint copies it into the database, as the store
// runs or as it closes. A new process (here, the first open after every connection closed)
// writes again.
TEST(SqliteStoreFileTest, AFailedSyncAfterUnsyncedCommitsLeavesTheWalToRecovery) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  ASSERT_NO_FATAL_FAILURE(CommitThenFailASyncAndClose(path, /*synced=*/false));
  ASSERT_TRUE(std::filesystem::exists(path + "-wal"));
  EXPECT_GT(std::filesystem::file_size(path + "-wal"), 0U);
  auto reopened = OpenSqliteStore(path, SqliteOptions{});
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  Store& store = **reopened;
  EXPECT_TRUE(store.GetObject("a").has_value());  // the frames reached the disk here
  EXPECT_TRUE(store.CheckWritable().has_value());
  EXPECT_TRUE(store.Transact([&] { return store.InsertObject(MakeObject("b")); }).has_value());
}

// A failed sync after synced commits only (a command's) leaves no frame a checkpoint could copy
// wrongly: the store closes as usual, its -wal file checkpointed and removed.
TEST(SqliteStoreFileTest, AFailedSyncAfterSyncedCommitsStillCheckpointsAtClose) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  ASSERT_NO_FATAL_FAILURE(CommitThenFailASyncAndClose(path, /*synced=*/true));
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
  auto reopened = OpenSqliteStore(path, SqliteOptions{});
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  EXPECT_TRUE((*reopened)->GetObject("a").has_value());
}

TEST(SqliteStoreFileTest, WritesGoOnWhileNoSyncFailed) {
  ScratchDir dir;
  auto opened = OpenSqliteStore(dir.File("state.db"), SqliteOptions{});
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  Store& store = **opened;
  EXPECT_TRUE(store.CheckWritable().has_value());
  ASSERT_TRUE(store.TransactUnsynced([&] { return store.InsertObject(MakeObject("a")); }));
  ASSERT_TRUE(store.SyncCommits().has_value());
  EXPECT_TRUE(store.CheckWritable().has_value());
}

// Damage to the store's own state, found by any connection of the process to the file, is kept
// for CheckIntact on every one of them, the first found, until the last closes; an error not
// marked as such is not kept (decision #190).
TEST_F(SqliteStoreTest, DamageFoundIsKeptUntilTheLastConnectionCloses) {
  auto other = OpenSqliteStore(path_);
  ASSERT_TRUE(other.has_value()) << other.error().ToString();
  EXPECT_TRUE(store_->CheckIntact().has_value());
  store_->NoteDamage(Error{Code::kDataLoss, "a copy's label does not decode"});  // one object's
  EXPECT_TRUE((*other)->CheckIntact().has_value());
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec("PRAGMA ignore_check_constraints = ON; INSERT INTO partners "
                       "(party, sign_public, wrap_public) VALUES ('KOR', X'00', X'00')"),
              "");
  }
  auto partner = (*other)->GetPartner("KOR");
  ASSERT_FALSE(partner.has_value());
  EXPECT_TRUE(partner.error().own_state);
  store_->NoteDamage(OwnStateDamaged("found later").value());  // the first is kept
  for (Store* store : {store_.get(), other->get()}) {
    auto intact = store->CheckIntact();
    ASSERT_FALSE(intact.has_value());
    EXPECT_EQ(intact.error().code, Code::kDataLoss);
    EXPECT_TRUE(intact.error().own_state);
    EXPECT_EQ(intact.error().message,
              "`" + path_ +
                  "` was found damaged since the node opened it (corrupt signing key of `KOR` in "
                  "the store): check the log with `accord log verify` and the database with "
                  "`PRAGMA integrity_check`, repair them or restore a backup, and restart the "
                  "node");
  }
  store_.reset();
  EXPECT_FALSE((*other)->CheckIntact().has_value());  // one connection is still open
  other->reset();
  auto reopened = OpenSqliteStore(path_);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  EXPECT_TRUE((*reopened)->CheckIntact().has_value());  // the row is as bad, but not found yet
}

// A VFS over the default one whose syncs of a main database file (`fail_db_syncs`) or of a -wal
// file (`fail_wal_syncs`) fail with SQLITE_IOERR_FSYNC while the flag is set; every other call
// goes through. A checkpoint syncs the database file, and a commit its -wal file, with SQLite's
// own calls, which no hook of the store reaches (SyncCommits' reaches only the store's own sync),
// nor, in this process, the preloaded fault library. It also counts the bytes one thread reads
// and writes (CountThisThread), so that a test sees what an operation costs on disk, apart from
// the checkpointer's thread. Registered as the default VFS for its lifetime, so that the store
// and its checkpointer open through it.
class RiggedVfs {
 public:
  RiggedVfs() : real_(sqlite3_vfs_find(nullptr)) {
    vfs_.iVersion = 2;
    vfs_.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
    vfs_.mxPathname = real_->mxPathname;
    vfs_.zName = "accord-failing-sync";
    vfs_.pAppData = this;
    vfs_.xOpen = &Open;
    vfs_.xDelete = [](sqlite3_vfs* v, const char* name, int dir) {
      return Real(v)->xDelete(Real(v), name, dir);
    };
    vfs_.xAccess = [](sqlite3_vfs* v, const char* name, int flags, int* out) {
      return Real(v)->xAccess(Real(v), name, flags, out);
    };
    vfs_.xFullPathname = [](sqlite3_vfs* v, const char* name, int n, char* out) {
      return Real(v)->xFullPathname(Real(v), name, n, out);
    };
    vfs_.xRandomness = [](sqlite3_vfs* v, int n, char* out) {
      return Real(v)->xRandomness(Real(v), n, out);
    };
    vfs_.xSleep = [](sqlite3_vfs* v, int us) { return Real(v)->xSleep(Real(v), us); };
    vfs_.xCurrentTime = [](sqlite3_vfs* v, double* t) { return Real(v)->xCurrentTime(Real(v), t); };
    vfs_.xGetLastError = [](sqlite3_vfs* v, int n, char* out) {
      return Real(v)->xGetLastError(Real(v), n, out);
    };
    vfs_.xCurrentTimeInt64 = [](sqlite3_vfs* v, sqlite3_int64* t) {
      return Real(v)->xCurrentTimeInt64(Real(v), t);
    };
    EXPECT_EQ(sqlite3_vfs_register(&vfs_, /*makeDflt=*/1), SQLITE_OK);
  }
  ~RiggedVfs() {
    sqlite3_vfs_unregister(&vfs_);
    sqlite3_vfs_register(real_, /*makeDflt=*/1);
  }
  RiggedVfs(const RiggedVfs&) = delete;
  RiggedVfs& operator=(const RiggedVfs&) = delete;

  std::atomic<bool> fail_db_syncs{false};
  std::atomic<bool> fail_wal_syncs{false};
  std::atomic<int> failed_syncs{0};

  // From now on, counts what the calling thread reads from the database and -wal files and
  // writes to the -wal file, from zero.
  void CountThisThread() {
    bytes_read = 0;
    wal_bytes_written = 0;
    counted_ = std::this_thread::get_id();
  }
  std::atomic<int64_t> bytes_read{0};
  std::atomic<int64_t> wal_bytes_written{0};

 private:
  // What SQLite holds: this header, then the real VFS's file.
  struct File {
    sqlite3_file base;
    RiggedVfs* vfs;
    bool main_db;
    bool wal;
    sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
  };
  static_assert(sizeof(File) % 8 == 0, "the real file that follows must be 8-byte aligned");

  static sqlite3_vfs* Real(sqlite3_vfs* v) { return static_cast<RiggedVfs*>(v->pAppData)->real_; }
  static File* Of(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
  static sqlite3_file* R(sqlite3_file* f) { return Of(f)->real(); }

  static int Open(sqlite3_vfs* v, sqlite3_filename name, sqlite3_file* f, int flags,
                  int* out_flags) {
    File* file = Of(f);
    file->base.pMethods = nullptr;
    file->vfs = static_cast<RiggedVfs*>(v->pAppData);
    file->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
    file->wal = (flags & SQLITE_OPEN_WAL) != 0;
    const int rc = Real(v)->xOpen(Real(v), name, file->real(), flags, out_flags);
    if (rc == SQLITE_OK && file->real()->pMethods != nullptr) file->base.pMethods = &kMethods;
    return rc;
  }

  bool Counted() const { return counted_.load() == std::this_thread::get_id(); }

  static int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 at) {
    if (Of(f)->vfs->Counted()) Of(f)->vfs->bytes_read += n;
    return R(f)->pMethods->xRead(R(f), buf, n, at);
  }

  static int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 at) {
    if (Of(f)->wal && Of(f)->vfs->Counted()) Of(f)->vfs->wal_bytes_written += n;
    return R(f)->pMethods->xWrite(R(f), buf, n, at);
  }

  static int Sync(sqlite3_file* f, int flags) {
    File* file = Of(f);
    if ((file->main_db && file->vfs->fail_db_syncs.load()) ||
        (file->wal && file->vfs->fail_wal_syncs.load())) {
      ++file->vfs->failed_syncs;
      return SQLITE_IOERR_FSYNC;
    }
    return R(f)->pMethods->xSync(R(f), flags);
  }

  static constexpr sqlite3_io_methods kMethods = {
      3,
      [](sqlite3_file* f) { return R(f)->pMethods->xClose(R(f)); },
      &Read,
      &Write,
      [](sqlite3_file* f, sqlite3_int64 size) { return R(f)->pMethods->xTruncate(R(f), size); },
      &Sync,
      [](sqlite3_file* f, sqlite3_int64* size) { return R(f)->pMethods->xFileSize(R(f), size); },
      [](sqlite3_file* f, int lock) { return R(f)->pMethods->xLock(R(f), lock); },
      [](sqlite3_file* f, int lock) { return R(f)->pMethods->xUnlock(R(f), lock); },
      [](sqlite3_file* f, int* out) { return R(f)->pMethods->xCheckReservedLock(R(f), out); },
      [](sqlite3_file* f, int op, void* arg) {
        return R(f)->pMethods->xFileControl(R(f), op, arg);
      },
      [](sqlite3_file* f) { return R(f)->pMethods->xSectorSize(R(f)); },
      [](sqlite3_file* f) { return R(f)->pMethods->xDeviceCharacteristics(R(f)); },
      [](sqlite3_file* f, int page, int size, int extend, void volatile** out) {
        return R(f)->pMethods->xShmMap(R(f), page, size, extend, out);
      },
      [](sqlite3_file* f, int offset, int n, int flags) {
        return R(f)->pMethods->xShmLock(R(f), offset, n, flags);
      },
      [](sqlite3_file* f) { R(f)->pMethods->xShmBarrier(R(f)); },
      [](sqlite3_file* f, int remove) { return R(f)->pMethods->xShmUnmap(R(f), remove); },
      [](sqlite3_file* f, sqlite3_int64 at, int n, void** out) {
        return R(f)->pMethods->xFetch(R(f), at, n, out);
      },
      [](sqlite3_file* f, sqlite3_int64 at, void* p) {
        return R(f)->pMethods->xUnfetch(R(f), at, p);
      },
  };

  sqlite3_vfs* const real_;
  sqlite3_vfs vfs_{};
  std::atomic<std::thread::id> counted_{};
};

// A checkpoint that copies unsynced commits and then fails to sync the database file stops every
// later write, as a failed sync of the -wal file does (decision #174): the pages it copied may
// not be on disk, and the -wal file they came from is rewound by the next commit.
TEST(SqliteStoreFileTest, ACheckpointsFailedSyncStopsWrites) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  RiggedVfs vfs;
  {
    auto opened = OpenSqliteStore(path, SqliteOptions{});
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    Store& store = **opened;
    vfs.fail_db_syncs = true;
    // Past 1,000 pages in the -wal file the checkpointer runs (as in the test below), and its
    // sync of the database file fails.
    Status last = OkStatus();
    int committed = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (last.has_value() && std::chrono::steady_clock::now() < deadline) {
      ObjectRecord o = MakeObject("o" + std::to_string(committed));
      o.ciphertext = Derived(o.id, 16 * 1024);
      last = store.TransactUnsynced([&] { return store.InsertObject(o); });
      if (last.has_value()) ++committed;
      if (committed >= 300) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_FALSE(last.has_value()) << "no commit was refused after " << committed;
    EXPECT_GE(vfs.failed_syncs.load(), 1);
    EXPECT_GE(committed, 60);  // the checkpointer waits for about 1,000 pages
    EXPECT_EQ(last.error().code, Code::kUnavailable);
    EXPECT_THAT(last.error().message,
                HasSubstr("an earlier sync of `" + path + "` failed (disk I/O error)"));
    EXPECT_THAT(last.error().message, HasSubstr("restart the node"));
    EXPECT_FALSE(store.CheckWritable().has_value());
    EXPECT_FALSE(store.SyncCommits().has_value());
    vfs.fail_db_syncs = false;  // the disk works again: writes stay stopped in this process
    EXPECT_FALSE(
        store.Transact([&] { return store.InsertObject(MakeObject("late")); }).has_value());
  }
  // Closed without its checkpoint: the next open recovers the -wal file, every frame checked,
  // and writes again.
  EXPECT_TRUE(std::filesystem::exists(path + "-wal"));
  auto reopened = OpenSqliteStore(path, SqliteOptions{});
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  Store& store = **reopened;
  EXPECT_TRUE(store.GetObject("o0").has_value());
  EXPECT_FALSE(store.GetObject("late").has_value());
  EXPECT_TRUE(store.Transact([&] { return store.InsertObject(MakeObject("after")); }).has_value());
}

// A commit whose own sync fails is not made in this process (its frames are written, so the
// next open may find it; here the close's checkpoint drops them); it says so, as `unavailable`
// (a failing disk is no bug: decision #175), and every later write is refused.
TEST(SqliteStoreFileTest, ACommitWhoseSyncFailsSaysSoAndStopsWrites) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  RiggedVfs vfs;
  {
    auto opened = OpenSqliteStore(path, SqliteOptions{});
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    Store& store = **opened;
    const auto insert = [&](const std::string& id) {
      return store.Transact([&] { return store.InsertObject(MakeObject(id)); });
    };
    ASSERT_TRUE(insert("a").has_value());
    vfs.fail_wal_syncs = true;
    const Status failed = insert("b");
    vfs.fail_wal_syncs = false;
    ASSERT_FALSE(failed.has_value());
    EXPECT_EQ(failed.error().code, Code::kUnavailable);
    EXPECT_THAT(failed.error().message,
                HasSubstr("`" + path + "`: sqlite: commit: disk I/O error"));
    EXPECT_THAT(failed.error().message,
                HasSubstr("the transaction is not committed now, but the next open of the store "
                          "may find it committed"));
    const Status later = insert("c");
    ASSERT_FALSE(later.has_value());
    EXPECT_THAT(later.error().message, HasSubstr("restart the node"));
  }
  auto reopened = OpenSqliteStore(path, SqliteOptions{});
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  EXPECT_TRUE((*reopened)->GetObject("a").has_value());
  EXPECT_FALSE((*reopened)->GetObject("b").has_value());
  EXPECT_FALSE((*reopened)->GetObject("c").has_value());
}

TEST_F(SqliteStoreTest, UnsyncedCommitsPastAThousandPagesAreCheckpointedBesideThem) {
  // SQLite's automatic checkpoint is replaced by the store's own thread (decision #50): the
  // pages still reach the database file, from another connection, while commits go on.
  const auto db_bytes = [&] { return std::filesystem::file_size(path_); };
  const uintmax_t before = db_bytes();
  constexpr int kObjects = 300;  // 300 x 16 KiB: about 1,200 pages in the -wal file
  for (int i = 0; i < kObjects; ++i) {
    ObjectRecord o = MakeObject("o" + std::to_string(i));
    o.ciphertext = Derived(o.id, 16 * 1024);
    ASSERT_TRUE(store_->TransactUnsynced([&] { return store_->InsertObject(o); }));
  }
  constexpr uintmax_t kCopied = 2 << 20;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (db_bytes() < before + kCopied && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(db_bytes(), before + kCopied);
  for (int i = 0; i < kObjects; ++i) {
    auto o = store_->GetObject("o" + std::to_string(i));
    ASSERT_TRUE(o.has_value()) << i;
    EXPECT_EQ(o->ciphertext, Derived(o->id, 16 * 1024));
  }
  // Closing the store stops the thread; the file opens again with everything in it.
  store_.reset();
  auto reopened = OpenSqliteStore(path_);
  ASSERT_TRUE(reopened.has_value());
  EXPECT_TRUE((*reopened)->GetObject("o299").has_value());
}

// The -wal file's size in SQLite's frames: a 24-byte header before each 4 KiB page.
uintmax_t WalFrames(const std::string& db_path) {
  std::error_code ec;
  const uintmax_t bytes = std::filesystem::file_size(db_path + "-wal", ec);
  return ec ? 0 : bytes / (4096 + 24);
}

// This process's WAL checkpointer threads (the store names them).
size_t CheckpointerThreads() {
  size_t n = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name) && name == "accord-ckpt") ++n;
  }
  return n;
}

// A server and its federation each open the node's store: one checkpointer serves both
// connections, with one thread, instead of two chasing the same -wal file.
TEST_F(SqliteStoreTest, ConnectionsToOneFileShareOneCheckpointer) {
  auto second = OpenSqliteStore(path_);
  ASSERT_TRUE(second.has_value()) << second.error().ToString();
  // A checkpointer of an earlier test may still be listed for a moment after it was joined.
  const auto settled = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (CheckpointerThreads() > 0 && std::chrono::steady_clock::now() < settled) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(CheckpointerThreads(), 0u);
  // Past the 1,000-page threshold, both connections commit, so both would start a checkpointer.
  for (int i = 0; i < 300; ++i) {
    Store& store = i % 2 == 0 ? *store_ : **second;
    ObjectRecord o = MakeObject("o" + std::to_string(i));
    o.ciphertext = Derived(o.id, 16 * 1024);
    ASSERT_TRUE(store.TransactUnsynced([&] { return store.InsertObject(o); }));
  }
  // The thread names itself as it starts.
  const auto named = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (CheckpointerThreads() == 0 && std::chrono::steady_clock::now() < named) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(CheckpointerThreads(), 1u);
  // The first connection closed, the checkpointer goes on for the second: their pages reach
  // the database file.
  store_.reset();
  const uintmax_t before = std::filesystem::file_size(path_);
  for (int i = 300; i < 600; ++i) {
    ObjectRecord o = MakeObject("o" + std::to_string(i));
    o.ciphertext = Derived(o.id, 16 * 1024);
    ASSERT_TRUE((*second)->TransactUnsynced([&] { return (*second)->InsertObject(o); }));
  }
  constexpr uintmax_t kCopied = 2 << 20;
  const auto copied_by = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::filesystem::file_size(path_) < before + kCopied &&
         std::chrono::steady_clock::now() < copied_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(std::filesystem::file_size(path_), before + kCopied);
  EXPECT_EQ(CheckpointerThreads(), 1u);
  second->reset();
  // The last connection's close stops it. (A joined thread can stay listed for a moment: the
  // kernel wakes the joiner before it removes the thread.)
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (CheckpointerThreads() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(CheckpointerThreads(), 0u);
}

// The checkpointer's thread opens the database by its name when the first commit past the
// threshold starts it. Should another file have been put at that name since the store opened
// (a home moved aside and another put in its place), the thread must not checkpoint that one,
// which would copy this store's -wal pages into a stranger's file: it gives up, and the commits
// checkpoint their own file, as SQLite's hook would.
TEST_F(SqliteStoreTest, TheCheckpointerServesTheFileOpenedNotAnotherPutAtItsName) {
  // Homes are directories: the database moves with its -wal and -shm files.
  const std::filesystem::path home = dir_.File("home"), other = dir_.File("other");
  const std::filesystem::path moved = dir_.File("home.moved");
  std::filesystem::create_directory(home);
  std::filesystem::create_directory(other);
  {
    auto stranger = OpenSqliteStore(other / "state.db");
    ASSERT_TRUE(stranger.has_value()) << stranger.error().ToString();
    ASSERT_TRUE((*stranger)->InsertObject(MakeObject("theirs")).has_value());
  }  // closed: checkpointed, its -wal file gone
  auto opened = OpenSqliteStore(home / "state.db");
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  std::unique_ptr<Store> store = std::move(*opened);
  const auto bytes = [](const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  std::filesystem::rename(home, moved);  // the store keeps its open files
  std::filesystem::rename(other, home);
  const std::string theirs = bytes(home / "state.db");
  const uintmax_t before = std::filesystem::file_size(moved / "state.db");
  for (int i = 0; i < 300; ++i) {  // about 1,200 pages: past the threshold
    ObjectRecord o = MakeObject("o" + std::to_string(i));
    o.ciphertext = Derived(o.id, 16 * 1024);
    ASSERT_TRUE(store->TransactUnsynced([&] { return store->InsertObject(o); }));
  }
  // The store's pages reached its own file, checkpointed by its commits once the thread gave
  // up; the file now at its old name is untouched. The thread starts at the commit that crosses
  // the threshold and gives up once it has looked at the name: on a slow machine (ASan, a
  // loaded CI) that may be after the last commit above, so commits go on until one checkpoints.
  constexpr uintmax_t kCopied = 2 << 20;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int i = 0; std::filesystem::file_size(moved / "state.db") < before + kCopied &&
                  std::chrono::steady_clock::now() < deadline;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(store->TransactUnsynced(
        [&] { return store->InsertObject(MakeObject("late" + std::to_string(i))); }));
  }
  EXPECT_GE(std::filesystem::file_size(moved / "state.db"), before + kCopied);
  EXPECT_EQ(bytes(home / "state.db"), theirs);
  EXPECT_FALSE(std::filesystem::exists(home / "state.db-wal"));
  store.reset();
  EXPECT_EQ(bytes(home / "state.db"), theirs);
  auto reopened = OpenSqliteStore(moved / "state.db");
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  EXPECT_TRUE((*reopened)->GetObject("o299").has_value());
  auto stranger = OpenSqliteStore(home / "state.db");
  ASSERT_TRUE(stranger.has_value()) << stranger.error().ToString();
  EXPECT_TRUE((*stranger)->GetObject("theirs").has_value());
  EXPECT_FALSE((*stranger)->GetObject("o0").has_value());
}

// The inode of the file the last SyncCommits of a store opened with it synced.
std::atomic<ino_t> g_synced_inode{0};
int RecordSynced(int fd) {
  struct stat st {};
  g_synced_inode = ::fstat(fd, &st) == 0 ? st.st_ino : 0;
  return ::fdatasync(fd);
}

// SyncCommits makes the store's own commits durable, also once its home was moved aside while it
// was open and another put at its name (decision #185). The first sync used to open the -wal
// file found at the name, the other home's, and sync that one.
TEST_F(SqliteStoreTest, SyncingSyncsTheStoresOwnWalFileNotOneAtItsName) {
  const std::filesystem::path home = dir_.File("home"), other = dir_.File("other");
  const std::filesystem::path moved = dir_.File("home.moved");
  std::filesystem::create_directory(home);
  std::filesystem::create_directory(other);
  g_synced_inode = 0;
  auto stranger = OpenSqliteStore(other / "state.db");  // kept open: its -wal file stays
  ASSERT_TRUE(stranger.has_value()) << stranger.error().ToString();
  ASSERT_TRUE((*stranger)->InsertObject(MakeObject("theirs")).has_value());
  SqliteOptions options;
  options.sync_file_for_testing = &RecordSynced;
  auto opened = OpenSqliteStore(home / "state.db", options);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  Store& store = **opened;
  std::filesystem::rename(home, moved);  // the store keeps its open files
  std::filesystem::rename(other, home);
  ASSERT_TRUE(store.TransactUnsynced([&] { return store.InsertObject(MakeObject("ours")); }));
  ASSERT_TRUE(store.SyncCommits().has_value());
  struct stat own {};
  struct stat theirs {};
  ASSERT_EQ(::stat((moved / "state.db-wal").c_str(), &own), 0);
  ASSERT_EQ(::stat((home / "state.db-wal").c_str(), &theirs), 0);
  ASSERT_NE(own.st_ino, theirs.st_ino);
  EXPECT_EQ(g_synced_inode.load(), own.st_ino);
}

// A home directory and another, which MoveHome puts at the home's name once it moved it aside.
std::filesystem::path g_home, g_other;
void MoveHome(const char* /*path*/) {
  std::filesystem::rename(g_home, g_home.string() + ".moved");
  std::filesystem::rename(g_other, g_home);
}

// A home moved aside while its store opens, and another put at its name, between SQLite's open
// and the store's own of the -wal file: the store does not open (decision #188). It used to
// open, holding the other home's -wal file, and syncing that one for its own commits.
TEST_F(SqliteStoreTest, AStoreWhoseHomeMovesWhileItOpensDoesNotOpen) {
  g_home = dir_.File("home");
  g_other = dir_.File("other");
  std::filesystem::create_directory(g_home);
  std::filesystem::create_directory(g_other);
  auto stranger = OpenSqliteStore(g_other / "state.db");  // kept open: its -wal file stays
  ASSERT_TRUE(stranger.has_value()) << stranger.error().ToString();
  ASSERT_TRUE((*stranger)->InsertObject(MakeObject("theirs")).has_value());
  SqliteOptions options;
  options.opened_for_testing = &MoveHome;
  auto opened = OpenSqliteStore(g_home / "state.db", options);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, Code::kUnavailable);
  EXPECT_EQ(opened.error().message,
            "`" + (g_home / "state.db").string() +
                "` was moved or replaced while the store opened it; open it again");
  // Opened again, the store is the one now at the name.
  auto again = OpenSqliteStore(g_home / "state.db");
  ASSERT_TRUE(again.has_value()) << again.error().ToString();
  EXPECT_TRUE((*again)->GetObject("theirs").has_value());
}

// A server commits all the time, with short gaps between its commits. The checkpointer must still
// rewind the -wal file (decision #65), so that the file stays near the 1,000-page threshold and
// commits overwrite it instead of appending to it. A PASSIVE checkpoint rarely catches up with
// such a writer, and the file grows with its commits (11,312 frames here with PASSIVE runs only).
// The file keeps its largest size, so the bound leaves room for a checkpointer that a busy
// machine holds back for a while (store_test failed once in a full ctest run, with a bound of
// 2,000 here and the tighter ones below; which test failed was not kept).
TEST_F(SqliteStoreTest, SteadyCommitsKeepRewindingTheWalFile) {
  constexpr int kCommits = 4000;  // each writes 2-3 pages: about 10,000 frames in all
  for (int i = 0; i < kCommits; ++i) {
    ASSERT_TRUE(store_->TransactUnsynced(
        [&] { return store_->InsertObject(MakeObject("o" + std::to_string(i))); }));
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  EXPECT_LT(WalFrames(path_), 4000u);
  EXPECT_TRUE(store_->GetObject("o3999").has_value());
}

// A reader of an old snapshot keeps its frames in the -wal file, and a RESTART checkpoint would
// wait for it while holding the write lock. The checkpointer waits 2 ms, then checkpoints as a
// PASSIVE one for 100 ms: the commits seldom wait, and once the reader is gone the file is
// rewound again.
TEST_F(SqliteStoreTest, AnOldReaderNeitherHoldsUpCommitsNorStopsTheRewinding) {
  AddObjects({"first"});
  RawDb reader(path_);
  ASSERT_EQ(reader.Exec("BEGIN"), "");
  ASSERT_EQ(reader.One("SELECT count(*) FROM objects"), "1");  // the snapshot is taken
  constexpr int kCommits = 2000;
  int slow = 0;  // commits that took 2 ms or more
  for (int i = 0; i < kCommits; ++i) {
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(store_->TransactUnsynced(
        [&] { return store_->InsertObject(MakeObject("o" + std::to_string(i))); }));
    slow += std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(2) ? 1 : 0;
  }
  // With the back-off, one commit every 100 ms waits (1 or 2 in this loop of about 0.5 s; a busy
  // machine adds some). Without it, a RESTART every fourth run, each waiting 2 ms for the reader,
  // made 87-158 wait.
  EXPECT_LE(slow, 50);
  EXPECT_EQ(reader.One("SELECT count(*) FROM objects"), "1");
  ASSERT_EQ(reader.Exec("COMMIT"), "");
  const uintmax_t grown = WalFrames(path_);
  EXPECT_GT(grown, 3000u);  // nothing past the reader's snapshot could be copied

  for (int i = 0; i < kCommits; ++i) {
    ASSERT_TRUE(store_->TransactUnsynced(
        [&] { return store_->InsertObject(MakeObject("p" + std::to_string(i))); }));
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  // Without a rewind these commits would append about 5,000 frames; rewound, they overwrite the
  // file from its start once the checkpointer has copied what the reader held back.
  EXPECT_LT(WalFrames(path_), grown + 2500);
  EXPECT_EQ(RawDb(path_).One("SELECT count(*) FROM objects"), std::to_string(2 * kCommits + 1));
}

// A backup is one snapshot of what is committed, taken while another connection holds a write
// transaction open; the copy is private, opens as a store, and is never written over. A source
// that is missing or not a store leaves nothing behind.
TEST_F(SqliteStoreTest, ABackupIsOneCommittedSnapshot) {
  AddObjects({"a", "b"});
  RawDb writer(path_);
  ASSERT_EQ(writer.Exec("BEGIN IMMEDIATE; DELETE FROM objects WHERE id = 'a'"), "");
  const std::string copy = dir_.File("copy.db");
  auto made = BackupSqliteStore(path_, copy);
  ASSERT_TRUE(made) << made.error().ToString();
  EXPECT_EQ(made->schema_version, kStoreSchemaVersion);
  EXPECT_EQ(made->log_size, 0u);
  EXPECT_GT(made->bytes, 0u);
  struct stat st {};
  ASSERT_EQ(::stat(copy.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(RawDb(copy).One("SELECT group_concat(id) FROM (SELECT id FROM objects ORDER BY id)"),
            "a,b");

  ASSERT_EQ(writer.Exec("COMMIT"), "");
  const std::string later = dir_.File("later.db");
  ASSERT_TRUE(BackupSqliteStore(path_, later));
  auto reopened = OpenSqliteStore(later);
  ASSERT_TRUE(reopened) << reopened.error().ToString();
  EXPECT_EQ((*reopened)->GetObject("a").error().code, Code::kNotFound);
  EXPECT_TRUE((*reopened)->GetObject("b"));

  auto again = BackupSqliteStore(path_, copy);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Code::kAlreadyExists);
  EXPECT_EQ(RawDb(copy).One("SELECT count(*) FROM objects"), "2");
  EXPECT_EQ(BackupSqliteStore(dir_.File("none.db"), dir_.File("x.db")).error().code,
            Code::kNotFound);
  // A -wal file beside the new copy would be applied to it.
  std::ofstream(dir_.File("stale.db-wal")) << "frames of another database";
  EXPECT_EQ(BackupSqliteStore(path_, dir_.File("stale.db")).error().code, Code::kAlreadyExists);
  EXPECT_FALSE(std::filesystem::exists(dir_.File("stale.db")));
  std::ofstream(dir_.File("other.db")).flush();  // an empty SQLite database
  const std::string refused = dir_.File("refused.db");
  auto not_a_store = BackupSqliteStore(dir_.File("other.db"), refused);
  ASSERT_FALSE(not_a_store);
  EXPECT_EQ(not_a_store.error().code, Code::kFailedPrecondition);
  EXPECT_EQ(not_a_store.error().message, "`" + dir_.File("other.db") + "` is not a store");
  EXPECT_FALSE(std::filesystem::exists(refused));
}

TEST_F(SqliteStoreTest, ReadSnapshotRunsTheBodyInOneReadTransaction) {
  AddObjects({"o"});
  int runs = 0;
  ASSERT_TRUE(store_->ReadSnapshot([&]() -> Status {
    ++runs;
    EXPECT_TRUE(store_->GetObject("o").has_value());
    auto nested = store_->Transact([] { return OkStatus(); });
    EXPECT_FALSE(nested.has_value());  // transactions do not nest
    // Another connection may write meanwhile (WAL); this one keeps its snapshot.
    RawDb other(path_);
    EXPECT_EQ(other.Exec("DELETE FROM objects"), "");
    EXPECT_TRUE(store_->GetObject("o").has_value());
    return OkStatus();
  }));
  EXPECT_EQ(store_->GetObject("o").error().code, Code::kNotFound);
  auto failed = store_->ReadSnapshot([] { return Fail(Code::kDataLoss, "damaged"); });
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, Code::kDataLoss);
  // A body that fails keeps nothing it should not have written.
  failed = store_->ReadSnapshot([&]() -> Status {
    ACCORD_RETURN_IF_ERROR(store_->InsertObject(MakeObject("q")));
    return Fail(Code::kDataLoss, "damaged");
  });
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().message, "damaged");  // the insert ran: the rollback took it back
  EXPECT_EQ(store_->GetObject("q").error().code, Code::kNotFound);
  // Inside Transact the body runs in that transaction.
  ASSERT_TRUE(store_->Transact([&]() -> Status {
    return store_->ReadSnapshot([&]() -> Status {
      ++runs;
      return store_->InsertObject(MakeObject("p"));
    });
  }));
  EXPECT_EQ(runs, 2);
  EXPECT_TRUE(store_->GetObject("p").has_value());
  EXPECT_TRUE(store_->Transact([] { return OkStatus(); }));  // nothing left open
}

TEST_F(SqliteStoreTest, LockedDatabaseIsUnavailable) {
  store_.reset();
  auto opened = OpenSqliteStore(path_, {.busy_timeout_ms = 20, .synchronous_full = true});
  ASSERT_TRUE(opened.has_value());
  std::unique_ptr<Store> store = std::move(*opened);
  RawDb other(path_);
  ASSERT_EQ(other.Exec("BEGIN IMMEDIATE"), "");  // holds the write lock

  auto tx = store->Transact([&] { return store->InsertObject(MakeObject("o")); });
  ASSERT_FALSE(tx.has_value());
  EXPECT_EQ(tx.error().code, Code::kUnavailable);
  EXPECT_EQ(tx.error().message, "sqlite: begin transaction: database is locked");
  auto insert = store->InsertObject(MakeObject("o"));
  ASSERT_FALSE(insert.has_value());
  EXPECT_EQ(insert.error().code, Code::kUnavailable);
  EXPECT_EQ(insert.error().message, "sqlite: insert object `o`: database is locked");
  EXPECT_TRUE(store->ListObjects().has_value());  // readers are not blocked in WAL mode

  ASSERT_EQ(other.Exec("ROLLBACK"), "");
  EXPECT_TRUE(store->Transact([&] { return store->InsertObject(MakeObject("o")); }));
}

// Two connections of one process take turns at the write lock in the order they asked: one that
// commits and begins again at once does not get ahead of the other, which was waiting (SQLite's
// lock has no queue, and a waiter polls it every millisecond).
TEST_F(SqliteStoreTest, ConnectionsOfOneProcessTakeTurnsAtTheWriteLock) {
  store_.reset();
  auto first = OpenSqliteStore(path_, {.synchronous_full = false});
  auto second = OpenSqliteStore(path_, {.synchronous_full = false});
  ASSERT_TRUE(first && second);
  std::mutex mu;
  std::vector<std::string> order;
  const auto note = [&](const char* who) {
    std::lock_guard lock(mu);
    order.emplace_back(who);
  };
  std::promise<void> release_first;
  std::promise<void> first_holds;
  std::thread writer([&] {
    auto held = (*first)->Transact([&] {
      first_holds.set_value();
      release_first.get_future().wait();
      return (*first)->SetMeta("first", "1");
    });
    EXPECT_TRUE(held) << held.error().ToString();
    // Begins again at once, as a server's node thread does with its next request.
    auto again = (*first)->Transact([&] {
      note("first again");
      return (*first)->SetMeta("first", "2");
    });
    EXPECT_TRUE(again) << again.error().ToString();
  });
  first_holds.get_future().wait();
  std::thread waiter([&] {
    auto tx = (*second)->Transact([&] {
      note("second");
      return (*second)->SetMeta("second", "1");
    });
    EXPECT_TRUE(tx) << tx.error().ToString();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the second is waiting
  release_first.set_value();
  writer.join();
  waiter.join();
  EXPECT_EQ(order, (std::vector<std::string>{"second", "first again"}));
}

// A connection that waits longer than its busy timeout for its turn gives up, as it would at
// SQLite's lock, and leaves the queue: the turn after it is not lost.
TEST_F(SqliteStoreTest, ATurnNotGivenInTheBusyTimeoutIsUnavailable) {
  store_.reset();
  auto first = OpenSqliteStore(path_, {.synchronous_full = false});
  auto second = OpenSqliteStore(path_, {.busy_timeout_ms = 20, .synchronous_full = false});
  ASSERT_TRUE(first && second);
  std::promise<void> release_first;
  std::promise<void> first_holds;
  std::thread writer([&] {
    auto held = (*first)->Transact([&] {
      first_holds.set_value();
      release_first.get_future().wait();
      return OkStatus();
    });
    EXPECT_TRUE(held) << held.error().ToString();
  });
  first_holds.get_future().wait();
  auto late = (*second)->Transact([&] { return (*second)->SetMeta("second", "1"); });
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Code::kUnavailable);
  EXPECT_EQ(late.error().message,
            "sqlite: begin transaction: another connection of this process held the database "
            "for 20 ms");
  release_first.set_value();
  writer.join();
  EXPECT_TRUE((*second)->Transact([&] { return (*second)->SetMeta("second", "2"); }));
  EXPECT_TRUE((*first)->Transact([&] { return (*first)->SetMeta("first", "2"); }));
}

// --- schema and file ---

TEST_F(SqliteStoreTest, NewDatabaseHasTheCurrentSchemaInWalMode) {
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(kStoreSchemaVersion));
  EXPECT_EQ(kStoreSchemaVersion, 12);
  EXPECT_EQ(raw.One("PRAGMA journal_mode"), "wal");
  EXPECT_THAT(raw.Rows("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"),
              ElementsAre("consents", "destructions", "forwards", "log_entries", "log_evidence",
                          "log_tiles", "meta", "objects", "outbox", "outbox_envelopes", "packages",
                          "partners", "receipts", "reclassifications", "releases", "reports",
                          "shown_checkpoints", "subjects", "witnessings"));
  // Every table is STRICT: a value of the wrong type is refused, not converted.
  EXPECT_THAT(raw.Exec("INSERT INTO meta (key, value) VALUES ('k', X'01')"),
              HasSubstr("cannot store BLOB value in TEXT column meta.value"));
  for (const std::string table :
       {"meta", "objects", "releases", "forwards", "consents", "reclassifications", "destructions",
        "reports", "packages", "receipts", "subjects", "partners", "log_entries", "log_tiles",
        "log_evidence", "outbox", "outbox_envelopes"}) {
    EXPECT_EQ(raw.One("SELECT strict FROM pragma_table_list WHERE name = '" + table + "'"), "1")
        << table;
  }
}

TEST_F(SqliteStoreTest, ReopeningKeepsDataAndSchema) {
  AddObjects({"o"});
  ASSERT_TRUE(store_->InsertRelease(MakeRelease("o")).has_value());
  ASSERT_TRUE(store_->SetMeta("party", "KOR").has_value());
  store_.reset();
  for (int i = 0; i < 2; ++i) {
    auto reopened = OpenSqliteStore(path_);
    ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
    auto o = (*reopened)->GetObject("o");
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(Fields(*o), Fields(MakeObject("o")));
    EXPECT_EQ((*reopened)->ListReleases("o").value().size(), 1u);
    EXPECT_EQ((*reopened)->GetMeta("party").value(), std::optional<std::string>("KOR"));
  }
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(kStoreSchemaVersion));
}

// A version 1 database (before the audit log) is migrated to the current version and keeps its
// data.
TEST_F(SqliteStoreTest, MigratesAVersionOneDatabase) {
  AddObjects({"o"});
  ASSERT_NO_FATAL_FAILURE(DowngradeToVersionEleven());
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec("DROP TABLE log_entries; DROP TABLE log_tiles; DROP TABLE log_evidence; "
                       "DROP TABLE outbox; DROP TABLE shown_checkpoints; "
                       "ALTER TABLE objects DROP COLUMN commitment; DROP TABLE witnessings; "
                       "UPDATE meta SET value = '1' WHERE key = 'schema_version'"),
              "");
  }
  auto reopened = OpenSqliteStore(path_);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  EXPECT_TRUE((*reopened)->GetObject("o").has_value());
  EXPECT_EQ((*reopened)->LogSize().value(), 0u);
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(kStoreSchemaVersion));
}

// A digest whose bytes are all `b`.
Digest DigestOf(uint8_t b) {
  Digest d;
  d.fill(b);
  return d;
}

// A version 3 database (before the outbox and the tiles) is migrated and keeps its log.
TEST_F(SqliteStoreTest, MigratesAVersionThreeDatabase) {
  AddObjects({"o"});
  ASSERT_NO_FATAL_FAILURE(DowngradeToVersionEleven());
  {
    RawDb raw(path_);
    std::string sql = R"sql(
DROP TABLE outbox;
DROP TABLE shown_checkpoints;
DROP TABLE log_entries;
DROP TABLE log_tiles;
CREATE TABLE log_entries (
  idx INTEGER PRIMARY KEY CHECK (idx >= 0),
  entry BLOB NOT NULL,
  leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32)
) STRICT;
CREATE TABLE log_nodes (
  level INTEGER NOT NULL CHECK (level >= 4 AND level < 64),
  idx INTEGER NOT NULL CHECK (idx >= 0),
  hash BLOB NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;
INSERT INTO log_nodes VALUES (4, 0, zeroblob(32));
ALTER TABLE objects DROP COLUMN commitment;
DROP TABLE witnessings;
UPDATE meta SET value = '3' WHERE key = 'schema_version';
)sql";
    for (int i = 0; i < 17; ++i) {
      sql += "INSERT INTO log_entries VALUES (" + std::to_string(i) +
             ", X'01', CAST(printf('%.32c', char(" + std::to_string(1 + i) + ")) AS BLOB));";
    }
    ASSERT_EQ(raw.Exec(sql), "");
  }
  auto reopened = OpenSqliteStore(path_);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  EXPECT_EQ((*reopened)->LogSize().value(), 17u);
  EXPECT_EQ((*reopened)->ReadLogEntries(16, 1).value()[0], Bytes{1});
  const std::pair<int32_t, uint64_t> key(0, 0);
  const Bytes tile = (*reopened)->ReadLogTiles(std::span(&key, 1)).value()[0];
  for (size_t i = 0; i < 16; ++i) EXPECT_EQ(tile[32 * i + 31], i + 1) << i;
  EXPECT_TRUE((*reopened)->ListOutbox("").value().empty());
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(kStoreSchemaVersion));
}

// A version 5 database, whose packages and receipts were keyed by the package id alone, is
// migrated: each receipt this node gave is for the package of that id it holds, each receipt it
// received for a package of its own.
TEST_F(SqliteStoreTest, MigratesAVersionFiveDatabaseKeyingPackagesBySender) {
  ASSERT_NO_FATAL_FAILURE(DowngradeToVersionEleven());
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec(R"sql(
DROP TABLE packages;
DROP TABLE receipts;
DROP TABLE shown_checkpoints;
CREATE TABLE packages (
  id TEXT PRIMARY KEY NOT NULL,
  kind TEXT NOT NULL,
  object_id TEXT NOT NULL,
  from_party TEXT NOT NULL,
  at INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  bytes BLOB NOT NULL
) STRICT;
CREATE TABLE receipts (
  package_id TEXT NOT NULL,
  by_party TEXT NOT NULL,
  at INTEGER NOT NULL,
  bytes BLOB NOT NULL,
  PRIMARY KEY (package_id, by_party)
) STRICT;
INSERT INTO meta (key, value) VALUES ('party', 'JPN');
INSERT INTO packages VALUES ('from-kor', 'release', 'o', 'KOR', 1, 2, X'01');
INSERT INTO receipts VALUES ('from-kor', 'JPN', 3, X'02');
INSERT INTO receipts VALUES ('of-jpn', 'USA', 4, X'03');
DROP INDEX outbox_object;
DROP INDEX outbox_states;
DROP INDEX outbox_undelivered;
ALTER TABLE objects DROP COLUMN commitment;
DROP TABLE witnessings;
UPDATE meta SET value = '5' WHERE key = 'schema_version';
)sql"),
              "");
  }
  auto reopened = OpenSqliteStore(path_);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  Store& s = **reopened;
  EXPECT_TRUE(s.HasPackage("KOR", "from-kor").value());
  EXPECT_FALSE(s.HasPackage("USA", "from-kor").value());
  auto given = s.GetReceipt("from-kor", "KOR", "JPN");
  ASSERT_TRUE(given.has_value()) << given.error().ToString();
  EXPECT_EQ(given->bytes, Bytes{2});
  auto received = s.GetReceipt("of-jpn", "JPN", "USA");
  ASSERT_TRUE(received.has_value()) << received.error().ToString();
  EXPECT_EQ(received->at.micros, 4);
  EXPECT_EQ(s.ListReceipts().value().size(), 2u);
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(kStoreSchemaVersion));
}

TEST_F(SqliteStoreTest, MigratesAVersionSixDatabaseErasingTheDestroyedCopiesPackages) {
  ASSERT_TRUE(store_->InsertObject(MakeObject("o-gone")));
  ASSERT_TRUE(store_->InsertObject(MakeObject("o-held")));
  ASSERT_NO_FATAL_FAILURE(DowngradeToVersionEleven());
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec(R"sql(
UPDATE objects SET ciphertext = X'', wrapped_key = X'', destroyed_at = 5 WHERE id = 'o-gone';
INSERT INTO packages VALUES ('r-gone', 'release', 'o-gone', 'KOR', 1, 2, X'01');
INSERT INTO packages VALUES ('f-gone', 'forward', 'o-gone', 'USA', 1, 2, X'02');
INSERT INTO packages VALUES ('d-gone', 'destroy', 'o-gone', 'KOR', 3, 4, X'03');
INSERT INTO packages VALUES ('r-held', 'release', 'o-held', 'KOR', 1, 2, X'04');
DROP TABLE shown_checkpoints;
DROP INDEX outbox_object;
DROP INDEX outbox_states;
DROP INDEX outbox_undelivered;
ALTER TABLE objects DROP COLUMN commitment;
DROP TABLE witnessings;
UPDATE meta SET value = '6' WHERE key = 'schema_version';
)sql"),
              "");
  }
  auto reopened = OpenSqliteStore(path_);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  Store& s = **reopened;
  std::map<std::string, Bytes> bytes;
  for (const char* object : {"o-gone", "o-held"}) {
    std::vector<PackageRecord> packages = s.ListPackages(object).value();
    for (PackageRecord& p : packages) bytes[p.id] = std::move(p.bytes);
  }
  EXPECT_EQ(bytes, (std::map<std::string, Bytes>{
                       {"r-gone", {}}, {"f-gone", {}}, {"d-gone", {3}}, {"r-held", {4}}}));
  EXPECT_TRUE(s.HasPackage("KOR", "r-gone").value());  // a replay is still refused
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(kStoreSchemaVersion));
}

TEST_F(SqliteStoreTest, ErasingACopyErasesThePackagesItCameIn) {
  ASSERT_TRUE(store_->InsertObject(MakeObject("o-1")));
  ASSERT_TRUE(store_->InsertPackage(
      PackageRecord{"r-1", "release", "o-1", "KOR", Instant{1}, Instant{2}, Bytes{1}}));
  ASSERT_TRUE(store_->InsertPackage(
      PackageRecord{"c-1", "consent", "o-1", "KOR", Instant{1}, Instant{2}, Bytes{2}}));
  EXPECT_EQ(store_->EraseObjectCopy("o-none", Instant{3}).error().code, Code::kNotFound);
  ASSERT_TRUE(store_->EraseObjectCopy("o-1", Instant{3}));
  EXPECT_TRUE(store_->GetPackage("KOR", "r-1").value().bytes.empty());
  EXPECT_EQ(store_->GetPackage("KOR", "c-1").value().bytes, Bytes{2});
  EXPECT_EQ(store_->GetPackage("USA", "r-1").error().code, Code::kNotFound);
}

// A destroyed copy's payload leaves no more (decision 89): its releases and forwards not yet
// delivered are given up, and every one of their envelopes is erased; its notices, and other
// objects' envelopes, are left as they are.
TEST_F(SqliteStoreTest, ErasingACopyGivesUpItsDeliveriesAndErasesTheirEnvelopes) {
  ASSERT_TRUE(store_->InsertObject(MakeObject("o-1")));
  auto queue = [&](const std::string& id, const std::string& kind, const std::string& object) {
    OutboxRecord r;
    r.id = id;
    r.to = "JPN";
    r.kind = kind;
    r.object_id = object;
    r.envelope = {'e', 'n', 'v'};
    r.queued_us = 10;
    ASSERT_TRUE(store_->Enqueue(r));
  };
  queue("r-sent", "release", "o-1");
  queue("r-pending", "release", "o-1");
  queue("f-pending", "forward", "o-1");
  queue("c-pending", "consent", "o-1");
  queue("r-other", "release", "o-2");
  ASSERT_TRUE(store_->MarkDelivered("r-sent", "JPN", 20));
  ASSERT_TRUE(store_->EraseObjectCopy("o-1", Instant{30}));
  std::map<std::string, std::tuple<DeliveryState, size_t, std::string>> got;
  const std::vector<OutboxRecord> outbox = store_->ListOutbox("").value();
  for (const OutboxRecord& r : outbox) {
    got[r.id] = {r.state, r.envelope.size(), r.last_error};
  }
  const std::string gone = "the object was destroyed before delivery";
  EXPECT_EQ(got, (std::map<std::string, std::tuple<DeliveryState, size_t, std::string>>{
                     {"r-sent", {DeliveryState::kDelivered, 0, ""}},
                     {"r-pending", {DeliveryState::kFailed, 0, gone}},
                     {"f-pending", {DeliveryState::kFailed, 0, gone}},
                     {"c-pending", {DeliveryState::kPending, 3, ""}},
                     {"r-other", {DeliveryState::kPending, 3, ""}}}));
  // Only the notice and the other object are still due, in queue order.
  auto due = store_->DueDeliveries("JPN", 100, 10, kAnyBytes).value();
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].id, "c-pending");
  EXPECT_EQ(due[1].id, "r-other");
}

// A version 9 database (objects without a commitment) is migrated: its objects keep every field
// and have an empty commitment, which is how the node knows them for objects made before it.
TEST_F(SqliteStoreTest, MigratesAVersionNineDatabaseGivingObjectsNoCommitment) {
  AddObjects({"o"});
  DowngradeToVersionNine();
  auto reopened = OpenSqliteStore(path_);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  ObjectRecord want = MakeObject("o");
  want.commitment.clear();
  EXPECT_EQ(Fields((*reopened)->GetObject("o").value()), Fields(want));
  auto listed = (*reopened)->ListObjectLabels("", 10).value();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].ciphertext_bytes, want.ciphertext.size());
  EXPECT_TRUE(listed[0].object.commitment.empty());
  ASSERT_TRUE((*reopened)->InsertObject(MakeObject("p")));
  EXPECT_EQ(Fields((*reopened)->GetObject("p").value()), Fields(MakeObject("p")));
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(kStoreSchemaVersion));
}

TEST_F(SqliteStoreTest, MigratesAVersionEightDatabaseGivingUpTheDestroyedCopiesDeliveries) {
  ASSERT_TRUE(store_->InsertObject(MakeObject("o-gone")));
  ASSERT_TRUE(store_->InsertObject(MakeObject("o-held")));
  ASSERT_NO_FATAL_FAILURE(DowngradeToVersionEleven());
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec(R"sql(
UPDATE objects SET ciphertext = X'', wrapped_key = X'', destroyed_at = 5 WHERE id = 'o-gone';
INSERT INTO outbox (id, to_party, kind, object_id, envelope, queued_us, next_attempt_us, state)
  VALUES ('r-gone', 'JPN', 'release', 'o-gone', X'01', 1, 1, 0),
         ('s-gone', 'USA', 'release', 'o-gone', X'02', 1, 1, 1),
         ('d-gone', 'JPN', 'destroy', 'o-gone', X'03', 1, 1, 0),
         ('r-held', 'JPN', 'release', 'o-held', X'04', 1, 1, 0);
DROP INDEX outbox_object;
DROP INDEX outbox_states;
DROP INDEX outbox_undelivered;
ALTER TABLE objects DROP COLUMN commitment;
DROP TABLE witnessings;
UPDATE meta SET value = '8' WHERE key = 'schema_version';
)sql"),
              "");
  }
  auto reopened = OpenSqliteStore(path_);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  std::map<std::string, std::tuple<DeliveryState, Bytes, int64_t>> got;
  const std::vector<OutboxRecord> outbox = (*reopened)->ListOutbox("").value();
  for (const OutboxRecord& r : outbox) {
    got[r.id] = {r.state, r.envelope, r.done_us};
  }
  EXPECT_EQ(got, (std::map<std::string, std::tuple<DeliveryState, Bytes, int64_t>>{
                     {"r-gone", {DeliveryState::kFailed, {}, 5}},
                     {"s-gone", {DeliveryState::kDelivered, {}, 0}},
                     {"d-gone", {DeliveryState::kPending, {3}, 0}},
                     {"r-held", {DeliveryState::kPending, {4}, 0}}}));
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(kStoreSchemaVersion));
}

// The checkpoint after a migration cannot run while another connection reads; the store then
// owes it, and runs it after its next commit, once the reader is gone.
TEST_F(SqliteStoreTest, AMigrationsCheckpointThatCouldNotRunIsRunAfterTheNextCommit) {
  AddObjects({"o"});
  DowngradeToVersionNine();
  const auto wal_bytes = [&] {
    std::error_code ec;
    const uintmax_t bytes = std::filesystem::file_size(path_ + "-wal", ec);
    return ec ? 0 : bytes;
  };
  RawDb reader(path_);
  ASSERT_EQ(reader.Exec("BEGIN"), "");
  ASSERT_EQ(reader.One("SELECT count(*) FROM objects"), "1");  // holds a read snapshot
  auto opened = OpenSqliteStore(path_, {.busy_timeout_ms = 20, .synchronous_full = true});
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  std::unique_ptr<Store> store = std::move(*opened);
  EXPECT_GT(wal_bytes(), 0u);  // the migration is still in the WAL
  ASSERT_EQ(reader.Exec("COMMIT"), "");

  ASSERT_TRUE(store->Transact([&] { return store->SetMeta("k", "v"); }));
  EXPECT_EQ(wal_bytes(), 0u);
  EXPECT_EQ(reader.One("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(kStoreSchemaVersion));
}

// --- the outbox ---

OutboxRecord MakeDelivery(const std::string& id, const std::string& to, int64_t queued_us) {
  OutboxRecord r;
  r.id = id;
  r.to = to;
  r.kind = "release";
  r.object_id = "o";
  r.envelope = {'e', 'n', 'v'};
  r.queued_us = queued_us;
  return r;
}

TEST_F(SqliteStoreTest, OutboxQueuesOncePerPartyInOrder) {
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p1", "JPN", 100)));
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p2", "JPN", 50)));
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p1", "USA", 100)));
  auto again = store_->Enqueue(MakeDelivery("p1", "JPN", 200));
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Code::kAlreadyExists);

  auto due = store_->DueDeliveries("JPN", 100, 10, kAnyBytes);
  ASSERT_TRUE(due.has_value()) << due.error().ToString();
  ASSERT_EQ(due->size(), 2u);
  EXPECT_EQ((*due)[0].id, "p1");  // queue order, not time order
  EXPECT_EQ((*due)[1].id, "p2");
  EXPECT_LT((*due)[0].seq, (*due)[1].seq);
  EXPECT_EQ((*due)[0].envelope, (Bytes{'e', 'n', 'v'}));
  EXPECT_EQ((*due)[0].state, DeliveryState::kPending);
  EXPECT_EQ((*due)[0].next_attempt_us, 100);  // due at once
  // p1 is not due at 99, and p2 (queued at 50, but after p1) waits behind it: queue order.
  EXPECT_EQ(store_->DueDeliveries("JPN", 99, 10, kAnyBytes).value().size(), 0u);
  EXPECT_EQ(store_->DueDeliveries("JPN", 100, 1, kAnyBytes).value().size(), 1u);
  EXPECT_EQ(store_->DueDeliveries("KOR", 1000, 10, kAnyBytes).value().size(), 0u);
}

// After the clock went back, envelopes due later than any backoff would set are brought
// forward, and nothing is written when there are none.
TEST_F(SqliteStoreTest, AttemptsDueTooLateAreBroughtForward) {
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p1", "JPN", 1000)));
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p2", "JPN", 9000)));  // queued by a clock ahead
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p3", "USA", 9000)));
  EXPECT_EQ(store_->DueDeliveries("JPN", 2000, 10, kAnyBytes).value().size(), 1u);
  EXPECT_EQ(store_->BringForwardAttempts("JPN", 2000).value(), 1u);
  auto due = store_->DueDeliveries("JPN", 2000, 10, kAnyBytes).value();
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[1].id, "p2");
  EXPECT_EQ(due[1].next_attempt_us, 2000);
  EXPECT_EQ(store_->BringForwardAttempts("JPN", 2000).value(), 0u);
  EXPECT_EQ(store_->DueDeliveries("USA", 2000, 10, kAnyBytes).value().size(), 0u);  // its own
}

// A partner that cannot be reached at all (its port file names no port): the attempt is recorded
// on the envelopes that were due, in queue order and up to the limit, none of them read.
TEST_F(SqliteStoreTest, AFailureToReachAPartnerIsRecordedOnItsDueEnvelopes) {
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p1", "JPN", 1000)));
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p2", "JPN", 1000)));
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p3", "JPN", 1000)));
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p4", "JPN", 5000)));  // not due: p4 and after wait
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p5", "JPN", 1000)));
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("u1", "USA", 1000)));
  EXPECT_EQ(store_->RecordUnreachable("JPN", "no port", 3000, 2000, 2).value(), 2u);
  // p3 waits behind p1 and p2 until they are due again, as DueDeliveries has it.
  EXPECT_EQ(store_->RecordUnreachable("JPN", "no port", 3000, 2000, 10).value(), 0u);
  EXPECT_EQ(store_->RecordUnreachable("JPN", "still no port", 4000, 3000, 10).value(), 3u);
  for (const auto& [id, attempts] : {std::pair{"p1", 2}, {"p2", 2}, {"p3", 1}}) {
    auto r = store_->GetQueued(id, "JPN", EnvelopeBytes::kRead).value();
    EXPECT_EQ(r->attempts, attempts) << id;
    EXPECT_EQ(r->last_error, "still no port") << id;
    EXPECT_EQ(r->next_attempt_us, 4000) << id;
    EXPECT_EQ(r->state, DeliveryState::kPending) << id;
  }
  for (const auto& [id, to] : {std::pair{"p4", "JPN"}, {"p5", "JPN"}, {"u1", "USA"}}) {
    EXPECT_EQ(store_->GetQueued(id, to, EnvelopeBytes::kRead).value()->attempts, 0) << id;
  }
  EXPECT_EQ(store_->DueDeliveries("JPN", 3999, 10, kAnyBytes).value().size(), 0u);
  EXPECT_EQ(store_->DueDeliveries("JPN", 4000, 10, kAnyBytes).value().size(), 3u);
}

// The parties an envelope was queued for, in queue order, in any state; none for one never
// queued (a notice to an object's holders, when it has none).
TEST_F(SqliteStoreTest, QueuedForListsTheRecipientsOfAnEnvelope) {
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("n1", "USA", 1000)));
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p1", "JPN", 1000)));
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("n1", "JPN", 1000)));
  ASSERT_TRUE(store_->RecordAttempt("n1", "USA", "gone", 0, true, 10));
  EXPECT_EQ(store_->QueuedFor("n1").value(), (std::vector<std::string>{"USA", "JPN"}));
  EXPECT_EQ(store_->QueuedFor("p1").value(), std::vector<std::string>{"JPN"});
  EXPECT_TRUE(store_->QueuedFor("n2").value().empty());
}

// An envelope given up while it was on its way (its object destroyed meanwhile) whose receipt
// comes back after all was delivered: the outbox says so.
TEST_F(SqliteStoreTest, AReceiptForAnEnvelopeGivenUpMarksItDelivered) {
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p1", "JPN", 0)));
  ASSERT_TRUE(
      store_->RecordAttempt("p1", "JPN", "the object was destroyed before delivery", 0, true, 10));
  ASSERT_EQ(store_->GetQueued("p1", "JPN", EnvelopeBytes::kRead).value()->state,
            DeliveryState::kFailed);
  ASSERT_TRUE(store_->MarkDelivered("p1", "JPN", 20));
  auto queued = store_->GetQueued("p1", "JPN", EnvelopeBytes::kRead).value();
  EXPECT_EQ(queued->state, DeliveryState::kDelivered);
  EXPECT_EQ(queued->done_us, 20);
  ASSERT_TRUE(store_->MarkDelivered("p1", "JPN", 30));  // again: no effect
  EXPECT_EQ(store_->GetQueued("p1", "JPN", EnvelopeBytes::kRead).value()->done_us, 20);
  EXPECT_EQ(store_->CountOutbox().value().at(0).delivered, 1u);
}

// Outbox times are wall-clock: a delivery given up when its copy is erased is given up now, not
// at the node's instant, which is simulated in some homes.
TEST_F(SqliteStoreTest, ErasingACopyGivesUpItsDeliveriesAtTheWallClockTime) {
  AddObjects({"o"});
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("r", "JPN", 10)));
  const int64_t before = SystemClock().Now().micros;
  ASSERT_TRUE(store_->EraseObjectCopy("o", Instant{30}));
  const int64_t after = SystemClock().Now().micros;
  const std::optional<OutboxRecord> queued =
      store_->GetQueued("r", "JPN", EnvelopeBytes::kRead).value();
  ASSERT_TRUE(queued.has_value());
  EXPECT_EQ(queued->state, DeliveryState::kFailed);
  EXPECT_GE(queued->done_us, before);
  EXPECT_LE(queued->done_us, after);
}

TEST_F(SqliteStoreTest, DueDeliveriesReadsNoMoreEnvelopesThanItsBudget) {
  for (size_t i = 0; i < 4; ++i) {
    OutboxRecord r = MakeDelivery("p" + std::to_string(i), "JPN", 0);
    r.envelope = Bytes(i == 0 ? 100 : 10, static_cast<uint8_t>('a' + i));
    ASSERT_TRUE(store_->Enqueue(r));
  }
  // The first, however large, then as many as the bytes allow, each with its envelope.
  auto ids = [&](size_t max_bytes) {
    std::vector<std::string> out;
    const std::vector<OutboxRecord> due = store_->DueDeliveries("JPN", 0, 10, max_bytes).value();
    for (const OutboxRecord& r : due) {
      EXPECT_EQ(r.envelope,
                Bytes(r.id == "p0" ? 100 : 10, static_cast<uint8_t>('a' + r.id[1] - '0')));
      out.push_back(r.id);
    }
    return out;
  };
  EXPECT_EQ(ids(0), (std::vector<std::string>{"p0"}));
  EXPECT_EQ(ids(109), (std::vector<std::string>{"p0"}));
  EXPECT_EQ(ids(110), (std::vector<std::string>{"p0", "p1"}));
  EXPECT_EQ(ids(119), (std::vector<std::string>{"p0", "p1"}));
  EXPECT_EQ(ids(120), (std::vector<std::string>{"p0", "p1", "p2"}));
  EXPECT_EQ(ids(kAnyBytes), (std::vector<std::string>{"p0", "p1", "p2", "p3"}));
  // An envelope that left the queue after it was listed ends the list there.
  ASSERT_TRUE(store_->MarkDelivered("p0", "JPN", 1));
  EXPECT_EQ(ids(0), (std::vector<std::string>{"p1"}));
}

TEST_F(SqliteStoreTest, OutboxRetriesDeliversAndGivesUp) {
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p1", "JPN", 0)));
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p2", "JPN", 0)));
  ASSERT_TRUE(store_->RecordAttempt("p1", "JPN", "connection refused", 500, false, 10));
  // p1 backs off until 500, and p2 waits behind it, as after a restart of the node, when no
  // backoff in memory holds the partner's turn (decision 39: a consent must not reach a
  // partner before the release it applies to).
  EXPECT_EQ(store_->DueDeliveries("JPN", 499, 10, kAnyBytes).value().size(), 0u);
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p3", "USA", 0)));
  EXPECT_EQ(store_->DueDeliveries("USA", 499, 10, kAnyBytes).value().size(),
            1u);  // another partner's turn
  ASSERT_TRUE(store_->MarkDelivered("p3", "USA", 499));
  auto later = store_->DueDeliveries("JPN", 500, 10, kAnyBytes).value();
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0].attempts, 1);
  EXPECT_EQ(later[0].last_error, "connection refused");

  ASSERT_TRUE(store_->MarkDelivered("p1", "JPN", 600));
  ASSERT_TRUE(store_->MarkDelivered("p1", "JPN", 700));    // again: no effect
  ASSERT_TRUE(store_->MarkDelivered("nope", "JPN", 700));  // never queued: no effect
  auto queued = store_->GetQueued("p1", "JPN", EnvelopeBytes::kRead).value();
  ASSERT_TRUE(queued.has_value());
  EXPECT_EQ(queued->state, DeliveryState::kDelivered);
  EXPECT_EQ(queued->envelope, (Bytes{'e', 'n', 'v'}));
  EXPECT_FALSE(store_->GetQueued("p1", "USA", EnvelopeBytes::kRead).value().has_value());
  EXPECT_FALSE(store_->GetQueued("nope", "JPN", EnvelopeBytes::kRead).value().has_value());
  ASSERT_TRUE(store_->RecordAttempt("p2", "JPN", "refused: deny", 0, true, 650));
  EXPECT_EQ(store_->DueDeliveries("JPN", 10'000, 10, kAnyBytes).value().size(), 0u);
  auto missing = store_->RecordAttempt("p1", "JPN", "late", 0, false, 800);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, Code::kNotFound);

  auto all = store_->ListOutbox("").value();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].state, DeliveryState::kDelivered);
  EXPECT_EQ(all[0].done_us, 600);
  EXPECT_EQ(all[1].state, DeliveryState::kFailed);
  EXPECT_EQ(all[1].done_us, 650);
  EXPECT_EQ(all[1].last_error, "refused: deny");
  EXPECT_EQ(store_->ListOutbox("USA").value().size(), 1u);

  // Counted, and the undelivered listed, without reading an envelope.
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p4", "USA", 0)));
  auto totals = store_->CountOutbox().value();
  ASSERT_EQ(totals.size(), 2u);
  EXPECT_EQ(totals[0].to, "JPN");
  EXPECT_EQ(std::tuple(totals[0].pending, totals[0].delivered, totals[0].failed),
            std::tuple(0u, 1u, 1u));
  EXPECT_EQ(totals[1].to, "USA");
  EXPECT_EQ(std::tuple(totals[1].pending, totals[1].delivered, totals[1].failed),
            std::tuple(1u, 1u, 0u));
  auto undelivered = store_->ListUndelivered(10).value();
  ASSERT_EQ(undelivered.size(), 2u);
  EXPECT_EQ(undelivered[0].id, "p4");  // pending first
  EXPECT_EQ(undelivered[1].id, "p2");
  EXPECT_EQ(undelivered[1].last_error, "refused: deny");
  EXPECT_TRUE(undelivered[0].envelope.empty());
  EXPECT_EQ(store_->ListUndelivered(1).value().size(), 1u);
}

// An envelope's bytes (a package may carry 64 MiB) are written once, when it is queued. A change
// of its state (an attempt, an unreachable partner, a delivery) writes the outbox's small row:
// with the envelope in that row, SQLite wrote the row anew, overflow pages and all, each time an
// update changed its size (decision #183).
TEST(SqliteStoreFileTest, AnEnvelopesStateChangesWriteNoneOfItsBytes) {
  ScratchDir dir;
  RiggedVfs vfs;
  auto opened = OpenSqliteStore(dir.File("state.db"), SqliteOptions{});
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  Store& store = **opened;
  constexpr int64_t kEnvelopeBytes = 4 << 20;
  OutboxRecord big = MakeDelivery("p1", "JPN", 0);
  big.envelope = Derived("p1", kEnvelopeBytes);
  ASSERT_TRUE(store.Enqueue(big));
  ASSERT_TRUE(store.Enqueue(MakeDelivery("p2", "JPN", 0)));

  vfs.CountThisThread();
  ASSERT_TRUE(store.RecordAttempt("p1", "JPN", "connection refused", 10, false, 5));
  ASSERT_EQ(store.RecordUnreachable("JPN", "no port", 20, 10, 64).value(), 2u);
  ASSERT_TRUE(store.MarkDelivered("p1", "JPN", 30));
  EXPECT_LT(vfs.wal_bytes_written.load(), 256 << 10);
  EXPECT_EQ(vfs.bytes_read.load(), 0);  // every page the changes need is in the cache

  const auto queued = store.GetQueued("p1", "JPN", EnvelopeBytes::kRead).value();
  ASSERT_TRUE(queued.has_value());
  EXPECT_EQ(queued->attempts, 2);
  EXPECT_EQ(queued->state, DeliveryState::kDelivered);
  EXPECT_EQ(queued->envelope, big.envelope);
  const auto state = store.GetQueued("p1", "JPN", EnvelopeBytes::kSkip).value();
  ASSERT_TRUE(state.has_value());
  EXPECT_TRUE(state->envelope.empty());
  EXPECT_EQ(state->state, DeliveryState::kDelivered);
}

// A list of the envelopes not delivered (`GET /v1/outbox`, `accord outbox ls`) reads what it
// lists: not the backlog's envelopes (64 of 256 KiB first), nor, to sort them before its limit,
// the index of every undelivered row (20,000 small ones after).
TEST(SqliteStoreFileTest, ListingTheUndeliveredReadsOnlyWhatItLists) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  RiggedVfs vfs;
  {
    auto opened = OpenSqliteStore(path, SqliteOptions{});
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    Store& store = **opened;
    ASSERT_TRUE(store.Transact([&]() -> Status {
      for (int i = 0; i < 20'064; ++i) {
        OutboxRecord r = MakeDelivery("p" + std::to_string(i), "JPN", i);
        if (i < 64) r.envelope = Derived(r.id, 256 << 10);
        ACCORD_RETURN_IF_ERROR(store.Enqueue(r));
      }
      return OkStatus();
    }));
  }
  auto opened = OpenSqliteStore(path, SqliteOptions{});  // nothing of the backlog in its cache
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  vfs.CountThisThread();
  const auto listed = (*opened)->ListUndelivered(2).value();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].id, "p0");
  EXPECT_EQ(listed[1].id, "p1");
  EXPECT_TRUE(listed[0].envelope.empty());
  // The backlog's envelopes are 16 MiB. Sorted before the limit, the rows' index alone (about
  // 270 KB read, as measured with `ORDER BY state != 0, seq`); in the index's order, a few pages
  // (20 KB).
  EXPECT_LT(vfs.bytes_read.load(), 64 << 10);
}

// A pending envelope whose bytes are missing (a damaged store, a row deleted by hand) is given
// with no bytes, which the federation gives up as damaged, instead of reading as delivered since
// and holding every envelope queued after it for that partner.
TEST_F(SqliteStoreTest, APendingEnvelopeWithoutItsBytesIsGivenEmpty) {
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p1", "JPN", 1)));
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p2", "JPN", 2)));
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec("DELETE FROM outbox_envelopes WHERE seq = "
                       "(SELECT seq FROM outbox WHERE id = 'p1')"),
              "");
  }
  const auto due = store_->DueDeliveries("JPN", 10, 10, kAnyBytes).value();
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].id, "p1");
  EXPECT_TRUE(due[0].envelope.empty());
  EXPECT_EQ(due[1].envelope, (Bytes{'e', 'n', 'v'}));
}

// A database of version 11 keeps every queued envelope, byte for byte, when its envelopes move
// to a table of their own (version 12).
TEST_F(SqliteStoreTest, QueuedEnvelopesOutliveTheMoveToTheirOwnTable) {
  OutboxRecord big = MakeDelivery("p1", "JPN", 1);
  big.envelope = Derived("p1", 100'000);
  ASSERT_TRUE(store_->Enqueue(big));
  ASSERT_TRUE(store_->Enqueue(MakeDelivery("p2", "USA", 2)));
  ASSERT_TRUE(store_->MarkDelivered("p2", "USA", 3));
  ASSERT_NO_FATAL_FAILURE(DowngradeToVersionEleven());
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.One("SELECT length(envelope) FROM outbox WHERE id = 'p1'"), "100000");
  }
  auto reopened = OpenSqliteStore(path_);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  store_ = std::move(*reopened);
  const auto due = store_->DueDeliveries("JPN", 10, 10, kAnyBytes).value();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].envelope, big.envelope);
  const auto delivered = store_->GetQueued("p2", "USA", EnvelopeBytes::kRead).value();
  ASSERT_TRUE(delivered.has_value());
  EXPECT_EQ(delivered->envelope, (Bytes{'e', 'n', 'v'}));
  EXPECT_EQ(delivered->state, DeliveryState::kDelivered);
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT COUNT(*) FROM pragma_table_info('outbox') WHERE name = 'envelope'"),
            "0");
  EXPECT_EQ(raw.One("SELECT COUNT(*) FROM outbox_envelopes"), "2");
}

TEST_F(SqliteStoreTest, LogAppendOutsideATransactionIsStillOneUnit) {
  // Entries and their tiles go in together: a tile refused leaves no entry behind (decision #63).
  const std::vector<Bytes> entries = {Bytes{'a'}};
  const std::vector<Digest> hashes = {DigestOf(1)};
  const std::vector<LogTileRecord> tile = {{0, 0, Bytes(960, 1)}};
  ASSERT_TRUE(store_->AppendLog(0, entries, hashes, tile).has_value());
  auto again = store_->AppendLog(1, entries, hashes, tile);  // the tile exists already
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Code::kAlreadyExists);
  EXPECT_EQ(store_->LogSize().value(), 1u);
}

TEST_F(SqliteStoreTest, ReceiptsAreFoundByPackageAndParty) {
  ASSERT_TRUE(store_->InsertReceipt(ReceiptRecord{"p1", "KOR", "JPN", Instant{5}, {'r'}}));
  auto r = store_->GetReceipt("p1", "KOR", "JPN");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->bytes, Bytes{'r'});
  EXPECT_EQ(r->at.micros, 5);
  EXPECT_EQ(r->from, "KOR");
  EXPECT_EQ(store_->GetReceipt("p1", "KOR", "USA").error().code, Code::kNotFound);
  EXPECT_EQ(store_->GetReceipt("p1", "USA", "JPN").error().code, Code::kNotFound);
}

TEST_F(SqliteStoreTest, LogAppendsReadsAndRefusesGaps) {
  EXPECT_EQ(store_->LogSize().value(), 0u);
  const std::vector<Bytes> entries = {Bytes{'a'}, Bytes{'b'}, Bytes{}};
  const std::vector<Digest> hashes = {DigestOf(1), DigestOf(2), DigestOf(3)};
  const Bytes leaves(960, 1);  // a tile of level 0
  const Bytes upper(960, 2);
  using Keys = std::vector<std::pair<int32_t, uint64_t>>;
  ASSERT_TRUE(store_->Transact([&] { return store_->AppendLog(0, entries, hashes, {}); }));
  const std::vector<LogTileRecord> tiles = {{0, 0, leaves}, {1, 0, upper}};
  ASSERT_TRUE(store_->Transact([&] { return store_->AppendLog(3, entries, hashes, tiles); }));
  EXPECT_EQ(store_->LogSize().value(), 6u);
  // Not inside a read snapshot, which would end its write as its body ends, not as the append
  // does.
  const Status in_snapshot =
      store_->ReadSnapshot([&] { return store_->AppendLog(6, entries, hashes, {}); });
  ASSERT_FALSE(in_snapshot);
  EXPECT_EQ(in_snapshot.error().code, Code::kFailedPrecondition);
  EXPECT_EQ(in_snapshot.error().message, "sqlite: append to the log inside a read snapshot");
  EXPECT_EQ(store_->LogSize().value(), 6u);
  EXPECT_EQ(store_->ReadLogEntries(1, 2).value(), (std::vector<Bytes>{Bytes{'b'}, Bytes{}}));
  auto past = store_->ReadLogEntries(5, 2);
  ASSERT_FALSE(past.has_value());
  EXPECT_EQ(past.error().code, Code::kOutOfRange);
  EXPECT_EQ(store_->ReadLogLeafHashes(2, 2).value(),
            (std::vector<Digest>{DigestOf(3), DigestOf(1)}));
  EXPECT_EQ(store_->ReadLogLeafHashes(0, 0).value(), std::vector<Digest>{});
  EXPECT_EQ(store_->ReadLogLeafHashes(5, 2).error().code, Code::kOutOfRange);
  EXPECT_EQ(store_->ReadLogTiles(Keys{{1, 0}, {0, 0}, {1, 0}}).value(),
            (std::vector<Bytes>{upper, leaves, upper}));
  EXPECT_EQ(store_->ReadLogTiles(Keys{}).value(), std::vector<Bytes>{});
  EXPECT_EQ(store_->ReadLogTiles(Keys{{0, 0}, {0, 1}}).error().code, Code::kNotFound);
  EXPECT_EQ(store_->ReadLogTiles(Keys{{-1, 0}}).error().code, Code::kNotFound);
  // More keys than one query reads.
  Keys many(20, {0, 0});
  many[13] = {1, 0};
  auto read = store_->ReadLogTiles(many).value();
  ASSERT_EQ(read.size(), 20u);
  EXPECT_EQ(read[12], leaves);
  EXPECT_EQ(read[13], upper);
  auto gap = store_->Transact([&] { return store_->AppendLog(7, entries, hashes, {}); });
  ASSERT_FALSE(gap.has_value());
  EXPECT_EQ(gap.error().code, Code::kFailedPrecondition);
  // A tile is never replaced: the whole append rolls back.
  for (const LogTileRecord& stored : tiles) {
    auto again = store_->Transact(
        [&] { return store_->AppendLog(6, entries, hashes, std::span(&stored, 1)); });
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().code, Code::kAlreadyExists);
  }
  EXPECT_EQ(store_->LogSize().value(), 6u);
  // A tile holds 30 hashes, at a level below 16; every entry comes with its leaf hash.
  for (const LogTileRecord& bad :
       {LogTileRecord{0, 1, Bytes(512)}, LogTileRecord{0, 1, {}}, LogTileRecord{1, 1, Bytes(64)},
        LogTileRecord{16, 0, upper}, LogTileRecord{-1, 0, leaves}}) {
    auto wrong =
        store_->Transact([&] { return store_->AppendLog(6, entries, hashes, std::span(&bad, 1)); });
    ASSERT_FALSE(wrong.has_value());
    EXPECT_EQ(wrong.error().code, Code::kInvalidArgument);
  }
  auto short_hashes = store_->Transact(
      [&] { return store_->AppendLog(6, entries, std::span(hashes).first(2), {}); });
  ASSERT_FALSE(short_hashes.has_value());
  EXPECT_EQ(short_hashes.error().code, Code::kInvalidArgument);
  EXPECT_EQ(store_->LogSize().value(), 6u);
  RawDb raw(path_);
  EXPECT_THAT(raw.Exec("INSERT INTO log_tiles (id, hashes) VALUES (5, zeroblob(512))"),
              HasSubstr("CHECK constraint failed"));
  EXPECT_THAT(raw.Exec("UPDATE log_tiles SET hashes = zeroblob(992) WHERE id = 0"),
              HasSubstr("CHECK constraint failed"));
  EXPECT_THAT(raw.Exec("UPDATE log_entries SET leaf_hash = X'00' WHERE idx = 0"),
              HasSubstr("CHECK constraint failed"));

  ASSERT_TRUE(
      store_->InsertEvidence(EvidenceRecord{"accord/JPN", "cp1", "cp2", "fork", Instant{5}}));
  auto evidence = store_->ListEvidence();
  ASSERT_TRUE(evidence.has_value());
  ASSERT_EQ(evidence->size(), 1u);
  EXPECT_EQ((*evidence)[0].later, "cp2");
}

// Damage the store finds in its log, as it reads it, is kept for CheckIntact as well as returned
// (decision #190): a leaf hash or a tile of the wrong size, a gap in the entries.
TEST(SqliteStoreFileTest, DamageFoundInTheLogIsKept) {
  const std::vector<Bytes> entries = {Bytes{'a'}, Bytes{'b'}, Bytes{'c'}};
  const std::vector<Digest> hashes = {DigestOf(1), DigestOf(2), DigestOf(3)};
  const std::vector<LogTileRecord> tile = {{0, 0, Bytes(960, 1)}};
  struct Case {
    std::string damage;  // SQL, run with the CHECK constraints off
    std::function<Status(Store&)> read;
    std::string found;
  };
  const Case cases[] = {
      {"UPDATE log_entries SET leaf_hash = X'00' WHERE idx = 1",
       [](Store& s) -> Status { return s.ReadLogLeafHashes(0, 3).map([](auto&&) {}); },
       "sqlite: a log leaf hash is not 32 bytes"},
      {"UPDATE log_tiles SET hashes = X'00' WHERE id = 0",
       [](Store& s) -> Status {
         const std::pair<int32_t, uint64_t> key(0, 0);
         return s.ReadLogTiles(std::span(&key, 1)).map([](auto&&) {});
       },
       "sqlite: log tile (0, 0) has 1 bytes"},
      {"DELETE FROM log_entries WHERE idx = 1",
       [](Store& s) -> Status { return s.ReadLogEntries(0, 3).map([](auto&&) {}); },
       "sqlite: the log is missing entry 1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.found);
    ScratchDir dir;
    const std::string path = dir.File("state.db");
    {
      auto opened = OpenSqliteStore(path);
      ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
      ASSERT_TRUE((*opened)->AppendLog(0, entries, hashes, tile).has_value());
    }
    ASSERT_EQ(RawDb(path).Exec("PRAGMA ignore_check_constraints = ON; " + c.damage), "");
    auto opened = OpenSqliteStore(path);
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    Store& store = **opened;
    EXPECT_TRUE(store.CheckIntact().has_value());
    const Status read = c.read(store);
    ASSERT_FALSE(read.has_value());
    EXPECT_TRUE(read.error().own_state);
    EXPECT_EQ(read.error().message, c.found);
    auto intact = store.CheckIntact();
    ASSERT_FALSE(intact.has_value());
    EXPECT_THAT(intact.error().message, HasSubstr("(" + c.found + ")"));
  }
}

// A range that ends past INT64_MAX is past the end of any log: kOutOfRange, neither an attempt to
// reserve room for it nor an index that wraps negative when bound.
TEST_F(SqliteStoreTest, LogReadsPastAnyLogAreOutOfRange) {
  const std::vector<Bytes> entries = {Bytes{'a'}, Bytes{'b'}, Bytes{'c'}};
  const std::vector<Digest> hashes = {DigestOf(1), DigestOf(2), DigestOf(3)};
  ASSERT_TRUE(store_->Transact([&] { return store_->AppendLog(0, entries, hashes, {}); }));
  constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();
  const auto code = [](const auto& result) {
    return result.has_value() ? Code::kOk : result.error().code;
  };
  for (const auto& [from, count] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, UINT64_MAX}, {1, kMax}, {kMax + 1, 0}, {UINT64_MAX - 1, 3}, {UINT64_MAX, 1}}) {
    SCOPED_TRACE(std::to_string(from) + " + " + std::to_string(count));
    EXPECT_EQ(code(store_->ReadLogEntries(from, count)), Code::kOutOfRange);
    EXPECT_EQ(code(store_->ReadLogLeafHashes(from, count)), Code::kOutOfRange);
  }
  // A count that fits is read up to the log's end.
  auto most = store_->ReadLogEntries(0, kMax);
  ASSERT_FALSE(most.has_value());
  EXPECT_EQ(most.error().code, Code::kOutOfRange);
  EXPECT_EQ(most.error().message, "sqlite: the log has no entry 3");
}

// The checkpoints shown as evidence (decision #86): kept once each (origin, size, root), the
// unproved ones listed smallest first up to a size and counted, the largest unproved one above
// a size that came before an instant found, and each settled for good.
TEST_F(SqliteStoreTest, KeepsTheCheckpointsShownUntilProved) {
  const auto shown = [](const std::string& origin, uint64_t size, uint8_t root) {
    return ShownCheckpointRecord{origin, size, DigestOf(root), "cp-" + std::to_string(size),
                                 Instant{static_cast<int64_t>(size)}};
  };
  for (const ShownCheckpointRecord& c :
       {shown("accord/KOR", 7, 1), shown("accord/KOR", 3, 1), shown("accord/KOR", 7, 2),
        shown("accord/KOR", 3, 1), shown("accord/JPN", 3, 1), shown("accord/KOR", 9, 1)}) {
    ASSERT_TRUE(store_->KeepShownCheckpoint(c));
  }
  EXPECT_EQ(store_->CountShownCheckpoints("accord/KOR").value(), 4u);  // the repeat kept once
  EXPECT_EQ(store_->CountShownCheckpoints("accord/USA").value(), 0u);
  auto listed = store_->ListShownCheckpoints("accord/KOR", 8, 10);
  ASSERT_TRUE(listed.has_value()) << listed.error().ToString();
  std::vector<std::pair<uint64_t, uint8_t>> seen;
  for (const ShownCheckpointRecord& c : *listed) seen.emplace_back(c.size, c.root[0]);
  EXPECT_THAT(seen,
              ElementsAre(std::pair<uint64_t, uint8_t>{3, 1}, std::pair<uint64_t, uint8_t>{7, 1},
                          std::pair<uint64_t, uint8_t>{7, 2}));
  EXPECT_EQ((*listed)[1].note, "cp-7");
  EXPECT_EQ((*listed)[1].at.micros, 7);
  EXPECT_EQ(store_->ListShownCheckpoints("accord/KOR", 8, 1).value().size(), 1u);
  EXPECT_TRUE(store_->ListShownCheckpoints("accord/KOR", 2, 10).value().empty());
  // In the order they came: the repeat took no place.
  EXPECT_EQ(store_->ShownCheckpointMark().value(), 5);
  EXPECT_EQ((*listed)[0].seq, 2);
  // Above 3 and at most the fourth to come: one of 7 (the one of 9 came fifth).
  auto ahead = store_->LargestShownAbove("accord/KOR", 3, 4);
  ASSERT_TRUE(ahead.has_value()) << ahead.error().ToString();
  ASSERT_TRUE(ahead->has_value());
  EXPECT_EQ((*ahead)->size, 7u);
  EXPECT_EQ(store_->LargestShownAbove("accord/KOR", 3, 5).value().value().size, 9u);
  EXPECT_FALSE(store_->LargestShownAbove("accord/KOR", 9, 100).value().has_value());
  EXPECT_FALSE(store_->LargestShownAbove("accord/KOR", 3, 0).value().has_value());

  EXPECT_TRUE(
      store_->SettleShownCheckpoint("accord/KOR", 7, DigestOf(1), ShownState::kProved).value());
  EXPECT_TRUE(
      store_->SettleShownCheckpoint("accord/KOR", 7, DigestOf(2), ShownState::kForked).value());
  // None such, or settled already: nothing changes.
  EXPECT_FALSE(
      store_->SettleShownCheckpoint("accord/KOR", 5, DigestOf(1), ShownState::kProved).value());
  EXPECT_FALSE(
      store_->SettleShownCheckpoint("accord/KOR", 7, DigestOf(1), ShownState::kForked).value());
  EXPECT_EQ(store_->CountShownCheckpoints("accord/KOR").value(), 2u);
  EXPECT_EQ(store_->CountShownCheckpoints("accord/JPN").value(), 1u);
  EXPECT_FALSE(store_->LargestShownAbove("accord/KOR", 3, 4).value().has_value());
  // Shown again, a settled one stays settled.
  ASSERT_TRUE(store_->KeepShownCheckpoint(shown("accord/KOR", 7, 2)));
  EXPECT_EQ(store_->CountShownCheckpoints("accord/KOR").value(), 2u);
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT group_concat(state) FROM shown_checkpoints "
                    "WHERE origin = 'accord/KOR' AND size = 7 AND note = ''"),
            "1,2");
  for (const char* bad : {"(NULL, 'accord/KOR', 0, zeroblob(32), 'cp', 1, 0)",
                          "(NULL, 'accord/KOR', 5, X'01', 'cp', 1, 0)",
                          "(NULL, 'accord/KOR', 5, zeroblob(32), 'cp', 1, 3)"}) {
    EXPECT_THAT(raw.Exec(std::string("INSERT INTO shown_checkpoints VALUES ") + bad),
                HasSubstr("CHECK constraint failed"))
        << bad;
  }
}

// The log tables as schema version 2 wrote them: every subtree hash in log_nodes, level 0 the
// leaf hashes.
constexpr std::string_view kVersionTwoLogTables = R"sql(
DROP TABLE outbox;
DROP TABLE outbox_envelopes;
DROP TABLE shown_checkpoints;
DROP TABLE log_entries;
DROP TABLE log_tiles;
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
ALTER TABLE objects DROP COLUMN commitment;
DROP TABLE witnessings;
UPDATE meta SET value = '2' WHERE key = 'schema_version';
)sql";

// A version 2 log ends up in tiles (through version 3, which moved the leaf hashes into the
// entries' rows); nothing else changes. (node/audit_test.cc checks proofs and verification on
// a migrated log with real hashes.)
TEST_F(SqliteStoreTest, MigratesAVersionTwoLogToTiles) {
  AddObjects({"o"});
  store_.reset();
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec(std::string(kVersionTwoLogTables)), "");
    // 33 entries; hash bytes: 1 + idx at level 0, 100 + level above. Entry 7 lost its leaf hash.
    std::string sql;
    for (int i = 0; i < 33; ++i) {
      sql += "INSERT INTO log_entries VALUES (" + std::to_string(i) + ", CAST('e" +
             std::to_string(i) + "' AS BLOB));";
      if (i != 7) {
        sql += "INSERT INTO log_nodes VALUES (0, " + std::to_string(i) +
               ", CAST(printf('%.32c', char(" + std::to_string(1 + i) + ")) AS BLOB));";
      }
    }
    for (int level = 1; level <= 5; ++level) {
      for (int i = 0; (i + 1) << level <= 33; ++i) {
        sql += "INSERT INTO log_nodes VALUES (" + std::to_string(level) + ", " + std::to_string(i) +
               ", CAST(printf('%.32c', char(" + std::to_string(100 + level) + ")) AS BLOB));";
      }
    }
    ASSERT_EQ(raw.Exec(sql), "");
  }
  auto reopened = OpenSqliteStore(path_);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  Store& store = **reopened;
  EXPECT_TRUE(store.GetObject("o").has_value());
  ASSERT_EQ(store.LogSize().value(), 33u);
  const auto entries = store.ReadLogEntries(0, 33).value();
  for (size_t i = 0; i < 33; ++i) {
    const std::string entry = "e" + std::to_string(i);
    EXPECT_EQ(entries[i], Bytes(entry.begin(), entry.end()));
  }
  // Two tiles of level 0 (entries 0 to 31) with the leaf hashes in order, the lost one zero,
  // and the levels above them hashed from those.
  using Keys = std::vector<std::pair<int32_t, uint64_t>>;
  const auto tiles = store.ReadLogTiles(Keys{{0, 0}, {0, 1}}).value();
  for (size_t i = 0; i < 32; ++i) {
    const Digest want = i == 7 ? Digest{} : DigestOf(static_cast<uint8_t>(1 + i));
    EXPECT_TRUE(std::equal(want.begin(), want.end(), tiles[i / 16].begin() + 32 * (i % 16))) << i;
  }
  Bytes pair = {0x01};
  pair.insert(pair.end(), tiles[1].begin(), tiles[1].begin() + 64);  // leaves 16 and 17
  const auto node = Sha256(pair);
  ASSERT_EQ(tiles[1].size(), kLogTileBytes);
  EXPECT_TRUE(std::equal(node.begin(), node.end(), tiles[1].begin() + 32 * 16));
  EXPECT_EQ(store.ReadLogTiles(Keys{{0, 2}}).error().code, Code::kNotFound);  // incomplete
  EXPECT_EQ(store.ReadLogLeafHashes(32, 1).value()[0], DigestOf(33));
  EXPECT_EQ(store.ReadLogTiles(Keys{{1, 0}}).error().code, Code::kNotFound);
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(kStoreSchemaVersion));
  EXPECT_EQ(raw.One("SELECT count(*) FROM log_tiles"), "2");
  EXPECT_EQ(raw.One("SELECT count(*) FROM sqlite_schema WHERE name = 'log_nodes'"), "0");
  EXPECT_EQ(raw.One("SELECT count(*) FROM pragma_table_info('log_entries')"), "3");
  EXPECT_EQ(raw.One("SELECT strict FROM pragma_table_list WHERE name = 'log_entries'"), "1");
  EXPECT_EQ(raw.One("SELECT strict FROM pragma_table_list WHERE name = 'log_tiles'"), "1");
  EXPECT_EQ(raw.One("PRAGMA integrity_check"), "ok");
  // The next append continues the log.
  const std::vector<Bytes> more = {Bytes{'x'}};
  const std::vector<Digest> more_hashes = {DigestOf(34)};
  EXPECT_TRUE(store.Transact([&] { return store.AppendLog(33, more, more_hashes, {}); }));
}

TEST_F(SqliteStoreTest, NewerSchemaIsRefused) {
  store_.reset();
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'"), "");
  }
  auto opened = OpenSqliteStore(path_);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, Code::kFailedPrecondition);
  EXPECT_EQ(opened.error().message, "`" + path_ +
                                        "`: schema version 99 is newer than this program's " +
                                        std::to_string(kStoreSchemaVersion));
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT value FROM meta WHERE key = 'schema_version'"), "99");
}

// A newer program holding the write lock does not make an older one wait for it: the schema is
// refused before the migration asks for the lock.
TEST_F(SqliteStoreTest, NewerSchemaIsRefusedWithoutWaitingForTheWriteLock) {
  store_.reset();
  RawDb other(path_);
  ASSERT_EQ(other.Exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'"), "");
  ASSERT_EQ(other.Exec("BEGIN IMMEDIATE"), "");  // holds the write lock
  auto opened = OpenSqliteStore(path_, {.busy_timeout_ms = 20, .synchronous_full = true});
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, Code::kFailedPrecondition) << opened.error().ToString();
  EXPECT_THAT(opened.error().message, HasSubstr("schema version 99 is newer"));
  ASSERT_EQ(other.Exec("ROLLBACK"), "");
}

TEST_F(SqliteStoreTest, MalformedSchemaVersionIsDataLoss) {
  store_.reset();
  {
    RawDb raw(path_);
    ASSERT_EQ(raw.Exec("UPDATE meta SET value = 'one' WHERE key = 'schema_version'"), "");
  }
  auto opened = OpenSqliteStore(path_);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, Code::kDataLoss);
  EXPECT_THAT(opened.error().message, HasSubstr("malformed schema version `one`"));
}

TEST(SqliteStoreFileTest, FileThatIsNotADatabaseIsDataLoss) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(8192, 'x');
  }
  auto opened = OpenSqliteStore(path);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, Code::kDataLoss);
  EXPECT_THAT(opened.error().message, HasSubstr("file is not a database"));
}

// Another program's SQLite database is refused before anything changes it: not switched to WAL
// mode, not migrated as if it were an empty store. An empty file is a new store.
TEST(SqliteStoreFileTest, ASqliteDatabaseThatIsNotAStoreIsRefusedAndLeftAsItWas) {
  ScratchDir dir;
  const std::string path = dir.File("other.db");
  std::ofstream(path).close();
  {
    RawDb raw(path);
    ASSERT_TRUE(raw.ok());
    ASSERT_EQ(raw.Exec("CREATE TABLE foo(x)"), "");
    ASSERT_EQ(raw.One("PRAGMA journal_mode"), "delete");
  }
  auto opened = OpenSqliteStore(path);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, Code::kFailedPrecondition) << opened.error().ToString();
  EXPECT_EQ(opened.error().message, "`" + path + "`: a SQLite database but not an accord store");
  RawDb raw(path);
  EXPECT_THAT(raw.Rows("SELECT name FROM sqlite_schema"), ElementsAre("foo"));
  EXPECT_EQ(raw.One("PRAGMA journal_mode"), "delete");

  const std::string empty = dir.File("empty.db");
  std::ofstream(empty).close();
  auto created = OpenSqliteStore(empty);
  ASSERT_TRUE(created.has_value()) << created.error().ToString();
  EXPECT_EQ(RawDb(empty).One("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(kStoreSchemaVersion));
}

TEST(SqliteStoreFileTest, MissingDirectoryIsNotFound) {
  ScratchDir dir;
  auto opened = OpenSqliteStore(dir.File("no/such/dir/state.db"));
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, Code::kNotFound);
  EXPECT_THAT(opened.error().message, HasSubstr("no such file or directory"));
}

TEST(SqliteStoreFileTest, FilesAreMode0600WhateverTheUmask) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  const mode_t old_umask = ::umask(0);
  auto opened = OpenSqliteStore(path);
  ::umask(old_umask);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  ASSERT_TRUE((*opened)->InsertObject(MakeObject("o")).has_value());
  for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0) << file;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << file;
  }
}

TEST_F(SqliteStoreTest, HistoryForAnUnknownObjectViolatesItsForeignKey) {
  const std::vector<std::pair<std::string, Status>> attempts = {
      {"release", store_->InsertRelease(MakeRelease("ghost"))},
      {"forward", store_->InsertForward({"ghost", "a", "b", Instant{1}, "c", "d"})},
      {"consent", store_->InsertConsent({"ghost", "a", Instant{1}, {}})},
      {"reclassification", store_->InsertReclassification({"ghost", 2, "S", Instant{1}, {}})},
      {"destruction",
       store_->InsertDestruction({"ghost", Instant{1}, DestructionScope::kLocal, "a", {}})},
      {"report", store_->InsertReport({"ghost", "a", Instant{1}, "loss", "t", {}})},
  };
  for (const auto& [what, status] : attempts) {
    ASSERT_FALSE(status.has_value()) << what;
    EXPECT_EQ(status.error().code, Code::kInternal) << what;
    EXPECT_THAT(status.error().message, HasSubstr("`ghost`: FOREIGN KEY constraint failed"))
        << what;
  }
  EXPECT_EQ(store_->InsertRelease(MakeRelease("ghost")).error().message,
            "sqlite: insert release of `ghost`: FOREIGN KEY constraint failed");
  RawDb raw(path_);
  EXPECT_EQ(raw.One("SELECT (SELECT count(*) FROM releases) + (SELECT count(*) FROM forwards) + "
                    "(SELECT count(*) FROM consents) + (SELECT count(*) FROM reclassifications) "
                    "+ (SELECT count(*) FROM destructions) + (SELECT count(*) FROM reports)"),
            "0");
}

// --- several processes ---

// Waits for `pid` and describes how it ended: "exit 0", "exit 3", "signal 9".
std::string WaitFor(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return "waitpid failed";
    }
  }
  if (WIFEXITED(status)) {
    return "exit " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return "signal " + std::to_string(WTERMSIG(status));
  }
  return "unknown";
}

// The body of a forked writer: never returns into gtest. Halfway through it waits until the other
// writer's first object is there, so the two writers' commits are sure to overlap.
[[noreturn]] void WriterChild(const std::string& path, const std::string& prefix,
                              const std::string& other_prefix, int count, int start_fd) {
  char go = 0;
  if (::read(start_fd, &go, 1) < 0) {  // EOF when the parent closes its end: all start at once
    ::_exit(10);
  }
  auto opened = OpenSqliteStore(path);
  if (!opened.has_value()) {
    std::fprintf(stderr, "%s: open: %s\n", prefix.c_str(), opened.error().ToString().c_str());
    ::_exit(11);
  }
  Store& store = **opened;
  for (int i = 0; i < count; ++i) {
    const std::string id = prefix + std::to_string(i);
    auto status = store.Transact([&]() -> Status {
      ACCORD_RETURN_IF_ERROR(store.InsertObject(MakeObject(id)));
      return store.InsertRelease(MakeRelease(id));
    });
    if (!status.has_value()) {
      std::fprintf(stderr, "%s: %s\n", id.c_str(), status.error().ToString().c_str());
      ::_exit(12);
    }
    // A pause between operations, as a node has: without one, the writer holding the lock takes
    // it again at once and the other, asleep in its busy handler, rarely gets a turn.
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    if (i + 1 == count / 2) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (true) {
        auto other = store.GetObject(other_prefix + "0");
        if (other.has_value()) {
          break;
        }
        if (other.error().code != Code::kNotFound || std::chrono::steady_clock::now() > deadline) {
          std::fprintf(stderr, "%s: waiting: %s\n", id.c_str(), other.error().ToString().c_str());
          ::_exit(13);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
  opened->reset();
  ::_exit(0);
}

TEST(SqliteStoreProcessTest, TwoProcessesWriteOneFileConcurrently) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");  // not created yet: the children race to
  constexpr int kPerChild = 200;
  int start[2];
  ASSERT_EQ(::pipe(start), 0);
  std::vector<pid_t> children;
  for (const std::string prefix : {"a-", "b-"}) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(start[1]);
      WriterChild(path, prefix, prefix == "a-" ? "b-" : "a-", kPerChild, start[0]);
    }
    children.push_back(pid);
  }
  ::close(start[0]);
  ::close(start[1]);  // go
  for (const pid_t pid : children) {
    EXPECT_EQ(WaitFor(pid), "exit 0");
  }

  auto opened = OpenSqliteStore(path);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  auto objects = (*opened)->ListObjects();
  ASSERT_TRUE(objects.has_value()) << objects.error().ToString();
  ASSERT_EQ(objects->size(), 2u * kPerChild);
  std::set<std::string> ids;
  for (const ObjectRecord& o : *objects) {
    ids.insert(o.id);
    EXPECT_EQ(Fields(o), Fields(MakeObject(o.id)));
  }
  for (int i = 0; i < kPerChild; ++i) {
    EXPECT_TRUE(ids.contains("a-" + std::to_string(i))) << i;
    EXPECT_TRUE(ids.contains("b-" + std::to_string(i))) << i;
  }
  opened->reset();
  EXPECT_EQ(IntegrityCheck(path), "ok");
  RawDb raw(path);
  EXPECT_EQ(raw.One("SELECT count(*) FROM releases"), std::to_string(2 * kPerChild));
  // The writers really overlapped: in commit (rowid) order, one's objects come before and after
  // some of the other's.
  int switches = 0;
  char last = 0;
  for (const std::string& id : raw.Rows("SELECT id FROM objects ORDER BY rowid")) {
    switches += (last != 0 && id[0] != last) ? 1 : 0;
    last = id[0];
  }
  RecordProperty("writer_switches", switches);
  EXPECT_GT(switches, 1);
}

// The body of a writer that is killed: commits object + release pairs and reports each id on
// `ack_fd` only after its commit returned.
[[noreturn]] void CrashChild(const std::string& path, int round, int ack_fd) {
  auto opened = OpenSqliteStore(path);
  if (!opened.has_value()) {
    std::fprintf(stderr, "open: %s\n", opened.error().ToString().c_str());
    ::_exit(11);
  }
  Store& store = **opened;
  if (::write(ack_fd, "ready\n", 6) != 6) {
    ::_exit(13);
  }
  for (int n = 0;; ++n) {
    const std::string id = "r" + std::to_string(round) + "-" + std::to_string(n);
    auto status = store.Transact([&]() -> Status {
      ACCORD_RETURN_IF_ERROR(store.InsertObject(MakeObject(id)));
      return store.InsertRelease(MakeRelease(id));
    });
    if (!status.has_value()) {
      std::fprintf(stderr, "%s: %s\n", id.c_str(), status.error().ToString().c_str());
      ::_exit(12);
    }
    const std::string line = id + "\n";  // under PIPE_BUF: written whole or not at all
    if (::write(ack_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      ::_exit(13);
    }
  }
}

TEST(SqliteStoreProcessTest, SigkillDuringCommitsLosesNoAcknowledgedWrite) {
  ScratchDir dir;
  const std::string path = dir.File("state.db");
  constexpr int kRounds = 30;
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delay_ms(1, 50);
  size_t total_acked = 0;
  size_t total_unacked = 0;

  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    int ack[2];
    ASSERT_EQ(::pipe(ack), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(ack[0]);
      CrashChild(path, round, ack[1]);
    }
    ::close(ack[1]);
    std::string acks;
    // The delay counts from the child's first acknowledged commit, so that the kill lands among
    // the commits however slow the start is (ASan). Round 0 does not wait: its kill may land
    // while the child creates and migrates the file.
    if (round > 0) {
      char c = 0;
      while (std::count(acks.begin(), acks.end(), '\n') < 2) {  // "ready" and one id
        pollfd pfd{.fd = ack[0], .events = POLLIN, .revents = 0};
        ASSERT_EQ(::poll(&pfd, 1, 10'000), 1) << "the child did not commit";
        ASSERT_EQ(::read(ack[0], &c, 1), 1) << "the child ended: " << WaitFor(pid);
        acks.push_back(c);
      }
      ASSERT_TRUE(acks.starts_with("ready\n")) << acks;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    ASSERT_EQ(WaitFor(pid), "signal 9");

    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(ack[0], buf, sizeof buf)) > 0) {
      acks.append(buf, static_cast<size_t>(n));
    }
    ::close(ack[0]);
    ASSERT_TRUE(acks.empty() || acks.back() == '\n') << "a torn acknowledgement";
    std::vector<std::string> acked;
    std::istringstream lines(acks);
    for (std::string line; std::getline(lines, line);) {
      if (line != "ready") {
        acked.push_back(line);
      }
    }
    total_acked += acked.size();

    auto opened = OpenSqliteStore(path);
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    Store& store = **opened;
    EXPECT_EQ(store.GetMeta("schema_version").value(),
              std::optional<std::string>(std::to_string(kStoreSchemaVersion)));
    // Every acknowledged write is there, exactly.
    for (const std::string& id : acked) {
      auto o = store.GetObject(id);
      ASSERT_TRUE(o.has_value()) << id << ": " << o.error().ToString();
      EXPECT_EQ(Fields(*o), Fields(MakeObject(id)));
    }
    // Every object present is whole, with its release (all or nothing). At most one commit of
    // this round can have landed without its acknowledgement.
    auto objects = store.ListObjects();
    ASSERT_TRUE(objects.has_value()) << objects.error().ToString();
    size_t this_round = 0;
    const std::string prefix = "r" + std::to_string(round) + "-";
    for (const ObjectRecord& o : *objects) {
      EXPECT_EQ(Fields(o), Fields(MakeObject(o.id)));
      auto releases = store.ListReleases(o.id);
      ASSERT_TRUE(releases.has_value());
      EXPECT_EQ(AllFields(*releases), AllFields(std::vector<ReleaseRecord>{MakeRelease(o.id)}));
      this_round += o.id.starts_with(prefix) ? 1 : 0;
    }
    ASSERT_GE(this_round, acked.size());
    EXPECT_LE(this_round - acked.size(), 1u);
    total_unacked += this_round - acked.size();
    opened->reset();
    ASSERT_EQ(IntegrityCheck(path), "ok");
    RawDb raw(path);
    EXPECT_THAT(raw.Rows("PRAGMA foreign_key_check"), IsEmpty());
  }
  EXPECT_GE(total_acked, static_cast<size_t>(kRounds - 1));
  RecordProperty("acknowledged", std::to_string(total_acked));
  RecordProperty("committed_unacknowledged", std::to_string(total_unacked));
}

}  // namespace
}  // namespace accord
