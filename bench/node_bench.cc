// The node's object path (Google Benchmark), side by side with its limits, in one run:
//
//   put   `Node::Create` of a 1 KiB object (data key, KEK wrap, AES-GCM seal, one SQLite
//         transaction with fsync) against raw SQLite inserting a 1 KiB blob, one transaction per
//         insert, with exactly the store's connection settings;
//   get   `Node::Read` (the store's queries, the engine's decision and explanation, KEK unwrap,
//         AES-GCM open, and the audit log's record of the read, committed before it returns)
//         against a raw SQLite select of the blob by id, and against that select followed by a
//         small record inserted in its own transaction; at random ids;
//   both at store sizes of 10 thousand, 100 thousand and 1 million objects (`--sizes=` changes
//   them), on one home and one raw database grown in place between sizes;
//   group `Node::Read` in groups of 1, 4 and 24 under one `Node::Group` commit that does not
//         sync, as the server's node thread runs them (CPU time per read);
//   seal  `Aead::Encrypt` / `Decrypt` of 16 and 64 KiB payloads with a label as associated data,
//         against EVP_EncryptUpdate / EVP_DecryptUpdate looping on one context, which is what
//         `openssl speed -evp aes-256-gcm` times (bench/node_bench.sh runs that too).
// Each comparison runs both sides in alternation inside one benchmark (see `SideBySide`).
//
// Homes are made in a temporary directory ($TMPDIR) and removed at exit. Pre-filling up to a size
// seals every object exactly as `Node::Create` does (so `Node::Read` opens any of them) but
// inserts 10,000 per transaction: a million fsynced commits would take about six minutes per
// store here.
// bench/node_bench.sh runs this beside `openssl speed` and prints the ratios.
//
//   build/release/bench/accord_node_bench --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true [--sizes=10000,100000,1000000]
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "accord/crypto.h"
#include "accord/keystore.h"
#include "accord/node.h"
#include "accord/store.h"
#include "wire.h"

namespace accord {
namespace {
namespace fs = std::filesystem;

constexpr size_t kObjectBytes = 1024;
constexpr size_t kFillBatch = 10'000;
constexpr std::string_view kParty = "KOR";
constexpr std::string_view kSubject = "kor-analyst";  // KOR clearance II, reads level III
constexpr std::string_view kLevel = "III";
constexpr std::string_view kAt = "2018-05-01T10:00:00+09:00";
// As in src/node/node.cc: the data key's associated data is this prefix and the label.
constexpr std::string_view kDataKeyAd = "accord/1 data-key\n";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "accord_node_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Check(Result<T> r, std::string_view what) {
  if (!r) {
    Die(std::string(what) + ": " + r.error().ToString());
  }
  return std::move(*r);
}

void Check(const Status& s, std::string_view what) {
  if (!s) {
    Die(std::string(what) + ": " + s.error().ToString());
  }
}

// "obj-000000042": the pre-filled objects; "put-000000042": those the put benchmarks create.
std::string Id(std::string_view prefix, uint64_t i) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "%.4s-%09llu", prefix.data(),
                              static_cast<unsigned long long>(i));
  return std::string(buf, static_cast<size_t>(n));
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// --- raw SQLite: the store's connection settings, one table like `objects` --------------------

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

void Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string message = err != nullptr ? err : "?";
    sqlite3_free(err);
    Die(std::string("sqlite: ") + sql + ": " + message);
  }
}

Stmt Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) {
    Die(std::string("sqlite: prepare ") + sql + ": " + sqlite3_errmsg(db));
  }
  return Stmt(st);
}

void Step(sqlite3* db, sqlite3_stmt* st, int want) {
  const int rc = sqlite3_step(st);
  if (rc != want) {
    Die(std::string("sqlite: step: ") + sqlite3_errmsg(db));
  }
}

class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(
        path.c_str(), &raw,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
        nullptr);
    db_.reset(raw);
    if (rc != SQLITE_OK) {
      Die("sqlite: open " + path);
    }
    // Exactly what src/store/sqlite_store.cc Configure() sets, in the same order.
    sqlite3_extended_result_codes(db(), 1);
    sqlite3_busy_timeout(db(), SqliteOptions{}.busy_timeout_ms);
    Exec(db(), "PRAGMA journal_mode=WAL");
    Exec(db(), "PRAGMA foreign_keys=ON");
    Exec(db(), "PRAGMA secure_delete=ON");
    Exec(db(), "PRAGMA synchronous=FULL");
    Exec(db(),
         "CREATE TABLE IF NOT EXISTS objects ("
         "  id TEXT PRIMARY KEY NOT NULL,"
         "  originator TEXT NOT NULL,"
         "  level TEXT NOT NULL,"
         "  topics TEXT NOT NULL,"
         "  rel_to TEXT NOT NULL,"
         "  created_at INTEGER NOT NULL,"
         "  payload BLOB NOT NULL"
         ") STRICT");
    // For gets that log the access durably, as Node::Read does since the audit log.
    Exec(db(),
         "CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL) STRICT");
    begin_ = Prepare(db(), "BEGIN IMMEDIATE");
    commit_ = Prepare(db(), "COMMIT");
    insert_ = Prepare(db(),
                      "INSERT INTO objects (id, originator, level, topics, rel_to, created_at, "
                      "payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    select_ = Prepare(db(),
                      "SELECT id, originator, level, topics, rel_to, created_at, payload "
                      "FROM objects WHERE id = ?1");
    log_ = Prepare(db(), "INSERT INTO log (entry) VALUES (?1)");
  }

  sqlite3* db() const { return db_.get(); }

  void Begin() { Run(begin_.get()); }
  void Commit() { Run(commit_.get()); }

  void Insert(const std::string& id, ByteView payload) {
    sqlite3_stmt* st = insert_.get();
    sqlite3_bind_text(st, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 2, "KOR", 3, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, "III", 3, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, "[]", 2, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, "[\"JPN\",\"USA\"]", 13, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, 1'525'136'400'000'000);
    sqlite3_bind_blob(st, 7, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
    Run(st);
  }

  // One put as the node makes it: its own write transaction.
  void Put(const std::string& id, ByteView payload) {
    Begin();
    Insert(id, payload);
    Commit();
  }

  // An audit record of about the size of the node's (JSON, ~150 bytes) in its own transaction.
  void Log(ByteView entry) {
    Begin();
    sqlite3_bind_blob(log_.get(), 1, entry.data(), static_cast<int>(entry.size()), SQLITE_STATIC);
    Run(log_.get());
    Commit();
  }

  // The row, its text columns and payload copied out, as the store copies them.
  size_t Get(const std::string& id) {
    sqlite3_stmt* st = select_.get();
    sqlite3_bind_text(st, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) {
      Die("sqlite: no row " + id + ": " + sqlite3_errmsg(db()));
    }
    size_t total = 0;
    for (int c = 0; c < 5; ++c) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
      text_ = std::string(text, static_cast<size_t>(sqlite3_column_bytes(st, c)));
      total += text_.size();
    }
    total += static_cast<size_t>(sqlite3_column_int64(st, 5) & 1);
    const auto* blob = static_cast<const uint8_t*>(sqlite3_column_blob(st, 6));
    const Bytes payload(blob, blob + sqlite3_column_bytes(st, 6));
    total += payload.size();
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return total;
  }

 private:
  void Run(sqlite3_stmt* st) {
    Step(db(), st, SQLITE_DONE);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
  }

  Db db_;
  Stmt begin_, commit_, insert_, select_, log_;
  std::string text_;
};

// --- the world: one home and one raw database, grown to each size in turn ---------------------

class World {
 public:
  World() {
    std::string tmpl = (fs::temp_directory_path() / "accord-node-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      Die("cannot make a temporary directory");
    }
    root_ = tmpl;
    const std::string home = root_ + "/KOR";
    NodeInitOptions init;
    init.home = home;
    init.party = std::string(kParty);
    init.policy_dir = std::string(ACCORD_SOURCE_DIR) + "/examples/gsomia";
    init.clock = ClockKind::kSimulated;
    init.passphrase = SecretBytes::Copy(std::string_view("bench-passphrase"));
    init.scrypt = ScryptParams{1u << 10, 8, 1};
    Check(InitNode(std::move(init)), "init the home");
    NodeOptions open;
    open.home = home;
    open.passphrase = SecretBytes::Copy(std::string_view("bench-passphrase"));
    open.at = Check(ParseInstant(kAt), "parse the instant");
    node_ = Check(Node::Open(std::move(open)), "open the node");
    kek_ = Check(OpenFileKeyStore(home + "/keystore",
                                  SecretBytes::Copy(std::string_view("bench-passphrase"))),
                 "open the key store");
    raw_ = std::make_unique<RawDb>(root_ + "/raw.db");
    payload_ = RandomBytes(kObjectBytes);
  }

  World(const World&) = delete;
  World& operator=(const World&) = delete;

  ~World() {
    raw_.reset();
    node_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  Node& node() { return *node_; }
  RawDb& raw() { return *raw_; }
  ByteView payload() const { return payload_; }
  uint64_t filled() const { return filled_; }
  // Objects in each store: pre-filled plus those the put benchmarks made so far.
  uint64_t node_objects() const { return filled_ + node_puts_; }
  uint64_t raw_objects() const { return filled_ + raw_puts_; }
  std::string NextNodePutId() { return Id("put", node_puts_++); }
  std::string NextRawPutId() { return Id("put", raw_puts_++); }

  // A record sealed exactly as Node::Create seals it (Impl::Seal in src/node/node_impl.h).
  ObjectRecord Sealed(std::string id) const {
    ObjectRecord o;
    o.id = std::move(id);
    o.originator = std::string(kParty);
    o.level = std::string(kLevel);
    o.rel_to = {"JPN", "USA"};
    o.version = 1;
    o.created_at = node_->Now();
    Bytes content = RandomBytes(node_internal::kContentSaltBytes);  // the salt, then the payload
    content.insert(content.end(), payload_.begin(), payload_.end());
    o.commitment = node_internal::ContentCommitment(content);
    const Bytes label = node_internal::EncodeLabel(node_internal::Label{
        o.id, o.originator, o.level, o.topics, o.compartments, o.rel_to, o.version, o.commitment});
    Bytes ad(kDataKeyAd.begin(), kDataKeyAd.end());
    ad.insert(ad.end(), label.begin(), label.end());
    SecretBytes dk = NewDataKey();
    o.wrapped_key = Check(kek_->Wrap(dk, ad), "wrap a data key");
    const Aead aead = Check(Aead::Create(std::move(dk)), "make an AEAD");
    o.ciphertext = Check(aead.Encrypt(content, label), "seal a payload");
    return o;
  }

  // Grows both stores to `n` pre-filled objects (never shrinks), then checks that the node reads
  // one of them back.
  void FillTo(uint64_t n) {
    if (n <= filled_) {
      return;
    }
    const uint64_t from = filled_;
    auto start = std::chrono::steady_clock::now();
    for (uint64_t i = from; i < n; i += kFillBatch) {
      const uint64_t end = std::min<uint64_t>(n, i + kFillBatch);
      Store& store = node_->store();
      Check(store.Transact([&]() -> Status {
        for (uint64_t j = i; j < end; ++j) {
          ACCORD_RETURN_IF_ERROR(store.InsertObject(Sealed(Id("obj", j))));
        }
        return OkStatus();
      }),
            "pre-fill the node");
    }
    const double node_seconds = Seconds(start);
    start = std::chrono::steady_clock::now();
    for (uint64_t i = from; i < n; i += kFillBatch) {
      const uint64_t end = std::min<uint64_t>(n, i + kFillBatch);
      raw_->Begin();
      for (uint64_t j = i; j < end; ++j) {
        raw_->Insert(Id("obj", j), payload_);
      }
      raw_->Commit();
    }
    const double raw_seconds = Seconds(start);
    filled_ = n;
    std::fprintf(stderr,
                 "accord_node_bench: pre-filled %llu -> %llu objects: node %.1f s (sealed, %zu "
                 "per transaction), raw SQLite %.1f s\n",
                 static_cast<unsigned long long>(from), static_cast<unsigned long long>(n),
                 node_seconds, kFillBatch, raw_seconds);
    auto read = Check(node_->Read(std::string(kSubject), Id("obj", n - 1)), "read back");
    if (read.payload.size() != kObjectBytes) {
      Die("read back the wrong payload size");
    }
  }

 private:
  std::string root_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<KeyEncryptionKey> kek_;
  std::unique_ptr<RawDb> raw_;
  Bytes payload_;
  uint64_t filled_ = 0;
  uint64_t node_puts_ = 0;
  uint64_t raw_puts_ = 0;
};

std::unique_ptr<World> g_world;

World& TheWorld() {
  if (!g_world) {
    g_world = std::make_unique<World>();
  }
  return *g_world;
}

// --- side by side ------------------------------------------------------------------------------
//
// The machine is shared: the disk's fsync latency and the other tenant's load drift by the second.
// So each comparison runs both sides in one benchmark, one operation of each per iteration, in
// rotating order, and times each: every side sees the same conditions. Counters: `<side>_per_s`
// for each side (operations or bytes per second), `ratio` (first side's rate / second's) and, with
// a third side, `ratio_<third>`.

using Clock = std::chrono::steady_clock;

class SideBySide {
 public:
  explicit SideBySide(std::vector<std::string> names, double units_per_op = 1)
      : names_(std::move(names)), ns_(names_.size(), 0), units_per_op_(units_per_op) {}

  void Run(std::initializer_list<std::function<void()>> ops) {
    const size_t n = ops.size();
    for (size_t k = 0; k < n; ++k) {
      const size_t which = (round_ + k) % n;
      const auto start = Clock::now();
      (ops.begin() + which)->operator()();
      ns_[which] +=
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
    }
    ++round_;
  }

  void Report(benchmark::State& state) const {
    const auto rate = [&](size_t k) {
      return static_cast<double>(state.iterations()) * units_per_op_ /
             (static_cast<double>(ns_[k]) / 1e9);
    };
    for (size_t k = 0; k < names_.size(); ++k) {
      state.counters[names_[k] + "_per_s"] = rate(k);
    }
    state.counters["ratio"] = rate(0) / rate(1);
    if (names_.size() > 2) {
      state.counters["ratio_" + names_[2]] = rate(0) / rate(2);
    }
  }

 private:
  std::vector<std::string> names_;
  std::vector<int64_t> ns_;
  double units_per_op_;
  uint64_t round_ = 0;
};

// --- put and get ------------------------------------------------------------------------------

// Node::Create against a raw insert in its own transaction.
void Put(benchmark::State& state, uint64_t size) {
  World& w = TheWorld();
  w.FillTo(size);
  state.counters["objects"] = static_cast<double>(w.node_objects());
  const NewObject proto{"", std::string(kLevel), {}, {}, {"JPN", "USA"}};
  SideBySide timer({"node", "sqlite"});
  for (auto _ : state) {
    NewObject o = proto;
    o.id = w.NextNodePutId();
    const std::string raw_id = w.NextRawPutId();
    Status s = OkStatus();
    timer.Run(
        {[&] { s = w.node().Create(o, w.payload()); }, [&] { w.raw().Put(raw_id, w.payload()); }});
    if (!s) {
      state.SkipWithError(s.error().ToString().c_str());
      break;
    }
  }
  timer.Report(state);
}

// Node::Read of a random pre-filled object against a raw select of the same id and, third, the
// same select followed by a durable ~150-byte log record in its own transaction (`logged`): the
// node logs every read before it returns the payload.
void Get(benchmark::State& state, uint64_t size) {
  World& w = TheWorld();
  w.FillTo(size);
  state.counters["objects"] = static_cast<double>(w.node_objects());
  std::mt19937_64 rng(7);
  const std::string subject(kSubject);
  const Bytes entry(150, 'e');
  SideBySide timer({"node", "sqlite", "logged"});
  for (auto _ : state) {
    const std::string id = Id("obj", rng() % w.filled());
    Result<ReadResult> r = Fail(Code::kInternal, "not run");
    size_t raw_bytes = 0;
    timer.Run({[&] { r = w.node().Read(subject, id); }, [&] { raw_bytes += w.raw().Get(id); },
               [&] {
                 raw_bytes += w.raw().Get(id);
                 w.raw().Log(entry);
               }});
    benchmark::DoNotOptimize(raw_bytes);
    if (!r || r->reason != Reason::kOriginatorCleared || r->payload.size() != kObjectBytes) {
      state.SkipWithError(r ? "unexpected decision or payload" : r.error().ToString().c_str());
      break;
    }
  }
  timer.Report(state);
}

// What the server's node thread does with a group of object reads (server.cc): `Node::Group`
// around `reads` calls of `Node::Read`, one commit that does not wait for the disk (the server's
// sync thread makes it durable afterwards, and that is not timed here). The thread's CPU time
// per read, so a group's fixed cost (BEGIN, COMMIT, the WAL's writes) shows as the difference
// between group sizes: CPU(n) = fixed + n * per_read.
void ReadGroup(benchmark::State& state, uint64_t size) {
  World& w = TheWorld();
  w.FillTo(size);
  const auto reads = static_cast<size_t>(state.range(0));
  std::mt19937_64 rng(11);
  const std::string subject(kSubject);
  for (auto _ : state) {
    bool ok = true;
    const Status committed = w.node().Group([&] {
      for (size_t i = 0; i < reads; ++i) {
        auto r = w.node().Read(subject, Id("obj", rng() % w.filled()));
        ok = ok && r && r->payload.size() == kObjectBytes;
      }
    });
    if (!committed || !ok) {
      state.SkipWithError(committed ? "a read failed" : committed.error().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(reads));
}

// Raw puts alone, at synchronous=NORMAL: how much of a put is the fsync.
void SqlitePutNormal(benchmark::State& state, uint64_t size) {
  World& w = TheWorld();
  w.FillTo(size);
  Exec(w.raw().db(), "PRAGMA synchronous=NORMAL");
  for (auto _ : state) {
    w.raw().Put(w.NextRawPutId(), w.payload());
  }
  Exec(w.raw().db(), "PRAGMA synchronous=FULL");
  state.SetItemsProcessed(state.iterations());
}

// --- where the time of a put and a get goes -----------------------------------------------------

// Create without the store: a data key, its KEK wrap, and the 1 KiB seal.
void NodeSeal(benchmark::State& state) {
  World& w = TheWorld();
  uint64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(w.Sealed(Id("seal", i++)));
  }
  state.SetItemsProcessed(state.iterations());
}

// Create without the sealing: the store's insert of a sealed record, in its own transaction.
void StorePut(benchmark::State& state, uint64_t size) {
  World& w = TheWorld();
  w.FillTo(size);
  Store& store = w.node().store();
  for (auto _ : state) {
    state.PauseTiming();
    const ObjectRecord o = w.Sealed(w.NextNodePutId());
    state.ResumeTiming();
    if (auto s = store.Transact([&] { return store.InsertObject(o); }); !s) {
      state.SkipWithError(s.error().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

// Read without the decision and the crypto: the five queries Node::Read makes.
void StoreRead(benchmark::State& state, uint64_t size) {
  World& w = TheWorld();
  w.FillTo(size);
  Store& store = w.node().store();
  std::mt19937_64 rng(7);
  const std::string subject(kSubject);
  for (auto _ : state) {
    const std::string id = Id("obj", rng() % w.filled());
    auto s = store.GetSubject(subject);
    auto o = store.GetObject(id);
    auto releases = store.ListReleases(id);
    auto forwards = store.ListForwards(id);
    auto consents = store.ListConsents(id);
    if (!s || !o || !releases || !forwards || !consents) {
      state.SkipWithError("store read failed");
      break;
    }
    benchmark::DoNotOptimize(o->ciphertext.data());
  }
  state.SetItemsProcessed(state.iterations());
}

// The same five queries inside one transaction (Store::Transact, so BEGIN IMMEDIATE): what Read
// would cost if it took one snapshot instead of one per statement (see docs/perf.md).
void StoreReadInTransact(benchmark::State& state, uint64_t size) {
  World& w = TheWorld();
  w.FillTo(size);
  Store& store = w.node().store();
  std::mt19937_64 rng(7);
  const std::string subject(kSubject);
  for (auto _ : state) {
    const std::string id = Id("obj", rng() % w.filled());
    auto s = store.Transact([&]() -> Status {
      ACCORD_RETURN_IF_ERROR(store.GetSubject(subject));
      ACCORD_ASSIGN_OR_RETURN(const ObjectRecord o, store.GetObject(id));
      ACCORD_RETURN_IF_ERROR(store.ListReleases(id));
      ACCORD_RETURN_IF_ERROR(store.ListForwards(id));
      ACCORD_RETURN_IF_ERROR(store.ListConsents(id));
      benchmark::DoNotOptimize(o.ciphertext.data());
      return OkStatus();
    });
    if (!s) {
      state.SkipWithError(s.error().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

// Only GetObject: the one query raw SQLite's get makes.
void StoreGetObject(benchmark::State& state, uint64_t size) {
  World& w = TheWorld();
  w.FillTo(size);
  Store& store = w.node().store();
  std::mt19937_64 rng(7);
  for (auto _ : state) {
    auto o = store.GetObject(Id("obj", rng() % w.filled()));
    if (!o) {
      state.SkipWithError(o.error().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(o->ciphertext.data());
  }
  state.SetItemsProcessed(state.iterations());
}

// --- sealing large payloads
// -----------------------------------------------------------------------
//
// Aead::Encrypt / Decrypt side by side with OpenSSL's EVP interface driven directly:
//   evp        what `openssl speed -evp aes-256-gcm` times: EVP_{En,De}cryptUpdate over one buffer,
//              in place, again and again on one context (no nonce, key setup, associated data or
//              tag per buffer);
//   message    (sealing) one message as Aead::Encrypt makes it (random nonce, the label as
//              associated data, nonce || ciphertext || tag) with the cipher fetched once, one
//              reused context and a reused output buffer.

Bytes TypicalLabel() {
  return node_internal::EncodeLabel(node_internal::Label{
      "kor-2018-0042", "KOR", "II", {"dprk-missile"}, {}, {"JPN", "USA"}, 1, std::string(64, 'c')});
}

struct EvpDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
  void operator()(EVP_CIPHER* cipher) const { EVP_CIPHER_free(cipher); }
};
using CtxPtr = std::unique_ptr<EVP_CIPHER_CTX, EvpDeleter>;
using CipherPtr = std::unique_ptr<EVP_CIPHER, EvpDeleter>;

CipherPtr FetchGcm() {
  CipherPtr cipher(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr));
  if (!cipher) {
    Die("EVP_CIPHER_fetch AES-256-GCM");
  }
  return cipher;
}

// A context set up once for `openssl speed`'s loop.
CtxPtr StreamContext(const EVP_CIPHER* cipher, bool encrypt) {
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  const Bytes key = RandomBytes(kAeadKeySize);
  const Bytes iv = RandomBytes(kAeadNonceSize);
  if (!ctx ||
      EVP_CipherInit_ex2(ctx.get(), cipher, key.data(), iv.data(), encrypt ? 1 : 0, nullptr) != 1) {
    Die("EVP_CipherInit_ex2");
  }
  return ctx;
}

void Seal(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  const Aead aead = Check(Aead::Create(NewDataKey()), "make an AEAD");
  const Bytes payload = RandomBytes(size);
  const Bytes ad = TypicalLabel();
  const CipherPtr cipher = FetchGcm();
  const CtxPtr stream = StreamContext(cipher.get(), true);
  const CtxPtr message(EVP_CIPHER_CTX_new());
  const Bytes key = RandomBytes(kAeadKeySize);
  Bytes buf = RandomBytes(size);
  Bytes out(kAeadNonceSize + size + kAeadTagSize);
  bool ok = message != nullptr;
  SideBySide timer({"accord", "evp", "message"}, static_cast<double>(size));
  for (auto _ : state) {
    timer.Run({[&] {
                 auto sealed = aead.Encrypt(payload, ad);
                 ok = ok && sealed.has_value();
                 benchmark::DoNotOptimize(sealed);
               },
               [&] {
                 int n = 0;
                 ok = ok && EVP_EncryptUpdate(stream.get(), buf.data(), &n, buf.data(),
                                              static_cast<int>(size)) == 1;
               },
               [&] {
                 int n = 0;
                 uint8_t* nonce = out.data();
                 uint8_t* body = nonce + kAeadNonceSize;
                 ok = ok && RAND_bytes(nonce, static_cast<int>(kAeadNonceSize)) == 1 &&
                      EVP_EncryptInit_ex2(message.get(), cipher.get(), key.data(), nonce,
                                          nullptr) == 1 &&
                      EVP_EncryptUpdate(message.get(), nullptr, &n, ad.data(),
                                        static_cast<int>(ad.size())) == 1 &&
                      EVP_EncryptUpdate(message.get(), body, &n, payload.data(),
                                        static_cast<int>(size)) == 1 &&
                      EVP_EncryptFinal_ex(message.get(), body + size, &n) == 1 &&
                      EVP_CIPHER_CTX_ctrl(message.get(), EVP_CTRL_GCM_GET_TAG,
                                          static_cast<int>(kAeadTagSize), body + size) == 1;
                 benchmark::DoNotOptimize(out.data());
               }});
    if (!ok) {
      state.SkipWithError("sealing failed");
      break;
    }
  }
  state.counters["ad_bytes"] = static_cast<double>(ad.size());
  timer.Report(state);
}

void Open(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  const Aead aead = Check(Aead::Create(NewDataKey()), "make an AEAD");
  const Bytes ad = TypicalLabel();
  const Bytes sealed = Check(aead.Encrypt(RandomBytes(size), ad), "seal");
  const CipherPtr cipher = FetchGcm();
  const CtxPtr stream = StreamContext(cipher.get(), false);
  Bytes buf = RandomBytes(size);
  bool ok = true;
  SideBySide timer({"accord", "evp"}, static_cast<double>(size));
  for (auto _ : state) {
    timer.Run({[&] {
                 auto plain = aead.Decrypt(sealed, ad);
                 ok = ok && plain.has_value();
                 benchmark::DoNotOptimize(plain);
               },
               [&] {
                 int n = 0;
                 ok = ok && EVP_DecryptUpdate(stream.get(), buf.data(), &n, buf.data(),
                                              static_cast<int>(size)) == 1;
               }});
    if (!ok) {
      state.SkipWithError("opening failed");
      break;
    }
  }
  state.counters["ad_bytes"] = static_cast<double>(ad.size());
  timer.Report(state);
}

// --- registration, in the order they run --------------------------------------------------------

std::vector<uint64_t> ParseSizes(std::string_view text) {
  std::vector<uint64_t> sizes;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string item(text.substr(0, comma));
    char* end = nullptr;
    const unsigned long long v = std::strtoull(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v == 0) {
      Die("--sizes wants positive integers separated by commas, got `" + item + "`");
    }
    sizes.push_back(v);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  return sizes;
}

void RegisterAll(const std::vector<uint64_t>& sizes) {
  for (const int64_t bytes : {int64_t{16384}, int64_t{65536}}) {
    benchmark::RegisterBenchmark("BM_Seal", Seal)->Arg(bytes)->ArgName("bytes");
    benchmark::RegisterBenchmark("BM_Open", Open)->Arg(bytes)->ArgName("bytes");
  }
  benchmark::RegisterBenchmark("BM_NodeSeal/bytes:1024", NodeSeal);
  // Sizes grow in place: every benchmark at one size runs before the store grows to the next.
  // Puts make a fixed number of objects per repetition, so the store grows by the same amount
  // whatever the disk's speed. I/O-bound: wall-clock time.
  for (size_t k = 0; k < sizes.size(); ++k) {
    const uint64_t n = sizes[k];
    const std::string at = "/objects:" + std::to_string(n);
    benchmark::RegisterBenchmark(("BM_Put" + at).c_str(), Put, n)->UseRealTime()->Iterations(1000);
    benchmark::RegisterBenchmark(("BM_Get" + at).c_str(), Get, n)->UseRealTime();
    if (k == 0) {
      benchmark::RegisterBenchmark(("BM_StorePut" + at).c_str(), StorePut, n)
          ->UseRealTime()
          ->Iterations(1000);
      benchmark::RegisterBenchmark(("BM_SqlitePutNormal" + at).c_str(), SqlitePutNormal, n)
          ->UseRealTime()
          ->Iterations(2000);
      benchmark::RegisterBenchmark(("BM_StoreRead" + at).c_str(), StoreRead, n)->UseRealTime();
      benchmark::RegisterBenchmark(("BM_StoreReadInTransact" + at).c_str(), StoreReadInTransact, n)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("BM_StoreGetObject" + at).c_str(), StoreGetObject, n)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("BM_ReadGroup" + at).c_str(), ReadGroup, n)
          ->ArgName("reads")
          ->Arg(1)
          ->Arg(4)
          ->Arg(24);
    }
  }
}

}  // namespace
}  // namespace accord

int main(int argc, char** argv) {
  std::vector<uint64_t> sizes = {10'000, 100'000, 1'000'000};
  // Takes out our own flag before Google Benchmark sees the others.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    constexpr std::string_view kFlag = "--sizes=";
    const std::string_view arg = argv[i];
    if (arg.starts_with(kFlag)) {
      sizes = accord::ParseSizes(arg.substr(kFlag.size()));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  accord::RegisterAll(sizes);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  accord::g_world.reset();  // closes the stores and removes the homes
  return 0;
}
