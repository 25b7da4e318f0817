// The audit log kept durably in the node's SQLite store (Google Benchmark): batched appends with
// synchronous=FULL (one fsync'd transaction per batch), beside the same appends in memory with the
// compact range (the hashing cost alone); and inclusion proofs generated from SQLite at 10
// thousand to 1 million entries (10 million with ACCORD_LOG_BENCH_10M=1: building that log
// takes about a minute and 4 GB in the temporary directory).
//
//   build/release/bench/accord_log_store_bench --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "accord/merkle.h"
#include "accord/store.h"
#include "audit.h"

namespace accord {
namespace {

// A release entry of typical size (about 300 bytes).
Bytes Entry(uint64_t i) {
  const std::string text =
      R"({"v":1,"at":"2018-05-01T00:10:00Z","op":"release","party":"KOR","decision":"allow",)"
      R"("reason":"releasable","object":"k-)" +
      std::to_string(i) +
      R"(","to":"JPN","agreement":"kor-jpn-gsomia","marking":"JPN/GOKUHI","package":)"
      R"("94c3914b897263320ef5ead9aa4d1639","digest":"ddc0c1ca9f17996e2ec9a85df559783f6615b0a5)"
      R"(0794306cd7f2179de6490f5a"})";
  return Bytes(text.begin(), text.end());
}

std::string TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "accord-logbench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) std::abort();
  return tmpl;
}

// The hashing limit: the same entries appended to a compact range in memory.
void BM_AppendCompactRange(benchmark::State& state) {
  const auto batch = static_cast<uint64_t>(state.range(0));
  std::vector<Bytes> entries;
  for (uint64_t i = 0; i < batch; ++i) entries.push_back(Entry(i));
  merkle::CompactRange range;
  std::vector<merkle::NodeWrite> created;
  for (auto _ : state) {
    created.clear();
    for (const Bytes& e : entries) range.Append(merkle::LeafHash(e), created);
    benchmark::DoNotOptimize(created.data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch));
}

// Batches appended durably: entries, their leaf and subtree hashes, one committed transaction.
void BM_AppendDurable(benchmark::State& state) {
  const auto batch = static_cast<uint64_t>(state.range(0));
  const std::string dir = TempDir();
  auto store = OpenSqliteStore(dir + "/state.db");
  if (!store) std::abort();
  node_internal::AuditLog log(**store);
  std::vector<Bytes> entries;
  for (uint64_t i = 0; i < batch; ++i) entries.push_back(Entry(i));
  for (auto _ : state) {
    auto s = (*store)->Transact([&]() -> Status {
      ACCORD_RETURN_IF_ERROR(log.AppendEncoded(entries));
      return OkStatus();
    });
    if (!s) state.SkipWithError(s.error().message.c_str());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch));
  store->reset();
  std::filesystem::remove_all(dir);
}

// The ceiling: raw SQLite inserting the same entries, one row each (no hashes), with the store's
// pragmas (WAL, synchronous=FULL, secure_delete), one transaction per batch.
void BM_RawSqliteInsert(benchmark::State& state) {
  const auto batch = static_cast<uint64_t>(state.range(0));
  const std::string dir = TempDir();
  sqlite3* db = nullptr;
  if (sqlite3_open((dir + "/raw.db").c_str(), &db) != SQLITE_OK) std::abort();
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON; "
               "PRAGMA cache_size=-65536; CREATE TABLE e (idx INTEGER PRIMARY KEY, entry BLOB "
               "NOT NULL) STRICT;",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO e (idx, entry) VALUES (?1, ?2)", -1, &insert, nullptr);
  std::vector<Bytes> entries;
  for (uint64_t i = 0; i < batch; ++i) entries.push_back(Entry(i));
  int64_t next = 0;
  for (auto _ : state) {
    sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    for (const Bytes& e : entries) {
      sqlite3_bind_int64(insert, 1, next++);
      sqlite3_bind_blob(insert, 2, e.data(), static_cast<int>(e.size()), SQLITE_STATIC);
      if (sqlite3_step(insert) != SQLITE_DONE) state.SkipWithError("insert failed");
      sqlite3_reset(insert);
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch));
  sqlite3_finalize(insert);
  sqlite3_close(db);
  std::filesystem::remove_all(dir);
}

// A durable log of `n` entries, built once per size.
struct Filled {
  Filled() = default;
  Filled(const Filled&) = delete;
  Filled& operator=(const Filled&) = delete;
  // The logs live until the program exits; then their files go (a 10 M log is about 4 GB).
  ~Filled() {
    log.reset();
    store.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }

  std::string dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<node_internal::AuditLog> log;
};
Filled& LogOfSize(uint64_t n) {
  static std::map<uint64_t, Filled> logs;
  Filled& f = logs[n];
  if (!f.store) {
    f.dir = TempDir();
    auto store = OpenSqliteStore(f.dir + "/state.db", SqliteOptions{10'000, false});
    if (!store) std::abort();
    f.store = std::move(*store);
    f.log = std::make_unique<node_internal::AuditLog>(*f.store);
    std::vector<Bytes> batch;
    // Larger batches for the largest log only to build it faster; the proofs do not depend on it.
    const uint64_t batch_size = n >= 10'000'000 ? 200'000 : 10'000;
    for (uint64_t i = 0; i < n; i += batch_size) {
      batch.clear();
      for (uint64_t j = i; j < std::min(n, i + batch_size); ++j) batch.push_back(Entry(j));
      if (!f.store->Transact([&]() -> Status {
            ACCORD_RETURN_IF_ERROR(f.log->AppendEncoded(batch));
            return OkStatus();
          })) {
        std::abort();
      }
    }
  }
  return f;
}

void BM_ProveDurable(benchmark::State& state) {
  const auto n = static_cast<uint64_t>(state.range(0));
  Filled& f = LogOfSize(n);
  std::mt19937_64 rng(7);
  for (auto _ : state) {
    auto proof = f.log->Inclusion(rng() % n, n);
    if (!proof) state.SkipWithError(proof.error().message.c_str());
    benchmark::DoNotOptimize(proof->data());
  }
}

// A proof at an earlier size (a checkpoint a partner holds) that is not a multiple of a tile:
// besides the leaf's tile, the size's last, incomplete tile is read from the store.
void BM_ProveDurableEarlierSize(benchmark::State& state) {
  const auto n = static_cast<uint64_t>(state.range(0));
  Filled& f = LogOfSize(n);
  const uint64_t size = n - 5;
  std::mt19937_64 rng(7);
  for (auto _ : state) {
    auto proof = f.log->Inclusion(rng() % size, size);
    if (!proof) state.SkipWithError(proof.error().message.c_str());
    benchmark::DoNotOptimize(proof->data());
  }
}

void ProofSizes(benchmark::internal::Benchmark* b) {
  b->Arg(10'000)->Arg(100'000)->Arg(1'000'000);
  if (const char* big = getenv("ACCORD_LOG_BENCH_10M"); big != nullptr && std::string(big) == "1") {
    b->Arg(10'000'000);
  }
}

BENCHMARK(BM_AppendCompactRange)->Arg(1000);
// Three seconds each: the first half second of appends also grows the new WAL and database files,
// which a node running for days does not do at every append; both sides are timed alike.
BENCHMARK(BM_AppendDurable)->Arg(1)->Arg(100)->Arg(1000)->Arg(10000)->UseRealTime()->MinTime(3);
BENCHMARK(BM_RawSqliteInsert)->Arg(1000)->Arg(10000)->UseRealTime()->MinTime(3);
BENCHMARK(BM_ProveDurable)->Apply(ProofSizes);
BENCHMARK(BM_ProveDurableEarlierSize)->Arg(1'000'000);

}  // namespace
}  // namespace accord

BENCHMARK_MAIN();
