// The audit log's Merkle tree (Google Benchmark): appends in memory beside the hashing limit
// (OpenSSL SHA-256 on 64-byte blocks, as `openssl speed -bytes 64 sha256` measures), and
// inclusion and consistency proofs generated and verified at 10 thousand to 10 million entries.
//
//   build/release/bench/accord_ledger_bench --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <map>
#include <memory>
#include <random>

#include "accord/merkle.h"

namespace accord::merkle {
namespace {

// A log entry of typical size (a decision record is 100–300 bytes).
std::string Entry(uint64_t i) { return std::string(160, 'x') + std::to_string(i); }

void BM_Sha256_64Bytes(benchmark::State& state) {
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char block[64] = {};
  unsigned char out[32];
  unsigned int n = 0;
  for (auto _ : state) {
    EVP_DigestInit_ex2(ctx, md, nullptr);
    EVP_DigestUpdate(ctx, block, sizeof(block));
    EVP_DigestFinal_ex(ctx, out, &n);
    block[0] = out[0];
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * 64);
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);
}

// Appends of whole batches: hash each entry, then extend the tree.
void BM_AppendMemory(benchmark::State& state) {
  const auto batch = static_cast<uint64_t>(state.range(0));
  std::vector<std::string> entries;
  for (uint64_t i = 0; i < batch; ++i) entries.push_back(Entry(i));
  MemoryTree tree;
  for (auto _ : state) {
    for (const std::string& e : entries) tree.Append(LeafHash(e));
    benchmark::DoNotOptimize(tree.size());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

const MemoryTree& TreeOfSize(uint64_t n) {
  static std::map<uint64_t, std::unique_ptr<MemoryTree>> trees;
  auto& t = trees[n];
  if (!t) {
    t = std::make_unique<MemoryTree>();
    for (uint64_t i = 0; i < n; ++i) t->Append(LeafHash(Entry(i)));
  }
  return *t;
}

void BM_InclusionProof(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  const MemoryTree& tree = TreeOfSize(n);
  std::mt19937_64 rng(1);
  for (auto _ : state) {
    auto proof = InclusionProof(tree, rng() % n, n);
    benchmark::DoNotOptimize(proof);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_VerifyInclusion(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  const MemoryTree& tree = TreeOfSize(n);
  const Hash root = tree.Root();
  struct Case {
    uint64_t index;
    Hash leaf;
    std::vector<Hash> proof;
  };
  std::vector<Case> cases;
  std::mt19937_64 rng(2);
  for (int i = 0; i < 256; ++i) {
    const uint64_t index = rng() % n;
    cases.push_back({index, tree.Node(0, index), *InclusionProof(tree, index, n)});
  }
  size_t i = 0;
  for (auto _ : state) {
    const Case& c = cases[i++ % cases.size()];
    if (!VerifyInclusion(c.leaf, c.index, n, c.proof, root)) state.SkipWithError("did not verify");
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ConsistencyProof(benchmark::State& state) {
  const uint64_t n = static_cast<uint64_t>(state.range(0));
  const MemoryTree& tree = TreeOfSize(n);
  std::mt19937_64 rng(3);
  for (auto _ : state) {
    auto proof = ConsistencyProof(tree, 1 + rng() % (n - 1), n);
    benchmark::DoNotOptimize(proof);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_Sha256_64Bytes);
BENCHMARK(BM_AppendMemory)->Arg(1000)->ArgName("batch");
BENCHMARK(BM_InclusionProof)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Arg(10'000'000)
    ->ArgName("entries");
BENCHMARK(BM_VerifyInclusion)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Arg(10'000'000)
    ->ArgName("entries");
BENCHMARK(BM_ConsistencyProof)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Arg(10'000'000)
    ->ArgName("entries");

}  // namespace
}  // namespace accord::merkle

BENCHMARK_MAIN();
