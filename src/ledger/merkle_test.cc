// RFC 9162 Merkle trees: known answers from the public Certificate Transparency test data, and
// every proof for every tree up to 64 leaves against an independent brute-force computation.
#include "accord/merkle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <bit>
#include <boost/json.hpp>

namespace accord::merkle {
namespace {

using ::testing::HasSubstr;

Hash H(std::string_view hex) {
  auto h = HashFromHex(hex);
  EXPECT_TRUE(h.has_value()) << hex;
  return h.value_or(Hash{});
}

std::string Unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  return out;
}

// Known-answer data from transparency-dev/merkle (Apache-2.0): testonly/constants.go
// (LeafInputs, NodeHashes, RootHashes) and proof/verify_test.go (inclusionProofs,
// consistencyProofs), the vectors Certificate Transparency implementations share.
const std::vector<std::string> kLeafInputs = {"",
                                              "00",
                                              "10",
                                              "2021",
                                              "3031",
                                              "40414243",
                                              "5051525354555657",
                                              "606162636465666768696a6b6c6d6e6f"};
const std::vector<std::string> kLeafHashes = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"};
const std::vector<std::string> kRoots = {  // by tree size, 0 to 8
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};

struct InclusionVector {
  uint64_t index, size;
  std::vector<std::string> proof;
};
const std::vector<InclusionVector> kInclusion = {
    {0,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5,
     8,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1,
     5,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {0, 1, {}},
};
struct ConsistencyVector {
  uint64_t size1, size2;
  std::vector<std::string> proof;
};
const std::vector<ConsistencyVector> kConsistency = {
    {1, 1, {}},
    {1,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2,
     5,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {6,
     7,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

std::vector<Hash> Hashes(const std::vector<std::string>& hex) {
  std::vector<Hash> out;
  for (const auto& h : hex) out.push_back(H(h));
  return out;
}

MemoryTree TreeOf(size_t n) {
  MemoryTree t;
  for (size_t i = 0; i < n; ++i)
    t.Append(
        LeafHash(i < kLeafInputs.size() ? Unhex(kLeafInputs[i]) : "leaf " + std::to_string(i)));
  return t;
}

// --- an independent brute-force reference, straight from RFC 9162's definitions --------------

Hash Sha(std::string_view bytes) {
  Hash out;
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), out.data(), &n, EVP_sha256(), nullptr);
  return out;
}
std::string Bytes(const Hash& h) {
  return std::string(reinterpret_cast<const char*>(h.data()), h.size());
}
uint64_t K(uint64_t n) {  // the largest power of two smaller than n
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
Hash Mth(const std::vector<std::string>& d) {
  if (d.empty()) return Sha("");
  if (d.size() == 1) return Sha(std::string(1, '\0') + d[0]);
  const uint64_t k = K(d.size());
  return Sha("\x01" + Bytes(Mth({d.begin(), d.begin() + k})) +
             Bytes(Mth({d.begin() + k, d.end()})));
}
std::vector<Hash> RefPath(uint64_t m, const std::vector<std::string>& d) {
  if (d.size() <= 1) return {};
  const uint64_t k = K(d.size());
  std::vector<std::string> left(d.begin(), d.begin() + k), right(d.begin() + k, d.end());
  std::vector<Hash> out = m < k ? RefPath(m, left) : RefPath(m - k, right);
  out.push_back(m < k ? Mth(right) : Mth(left));
  return out;
}
std::vector<Hash> RefSubproof(uint64_t m, const std::vector<std::string>& d, bool b) {
  if (m == d.size()) return b ? std::vector<Hash>{} : std::vector<Hash>{Mth(d)};
  const uint64_t k = K(d.size());
  std::vector<std::string> left(d.begin(), d.begin() + k), right(d.begin() + k, d.end());
  std::vector<Hash> out = m <= k ? RefSubproof(m, left, b) : RefSubproof(m - k, right, false);
  out.push_back(m <= k ? Mth(right) : Mth(left));
  return out;
}
std::vector<std::string> Entries(size_t n) {
  std::vector<std::string> d;
  for (size_t i = 0; i < n; ++i)
    d.push_back(i < kLeafInputs.size() ? Unhex(kLeafInputs[i]) : "leaf " + std::to_string(i));
  return d;
}

// --- known answers -------------------------------------------------------------------------------

TEST(MerkleTest, KnownLeafHashesAndRoots) {
  for (size_t i = 0; i < kLeafInputs.size(); ++i)
    EXPECT_EQ(ToHex(LeafHash(Unhex(kLeafInputs[i]))), kLeafHashes[i]);
  EXPECT_EQ(ToHex(EmptyRoot()), kRoots[0]);
  MemoryTree t;
  EXPECT_EQ(ToHex(t.Root()), kRoots[0]);
  for (size_t n = 1; n <= 8; ++n) {
    t.Append(LeafHash(Unhex(kLeafInputs[n - 1])));
    EXPECT_EQ(ToHex(t.Root()), kRoots[n]) << "size " << n;
  }
  EXPECT_EQ(ToHex(t.Node(1, 2)),
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a");
  EXPECT_EQ(ToHex(t.Node(3, 0)), kRoots[8]);
}

TEST(MerkleTest, KnownInclusionProofs) {
  const MemoryTree t = TreeOf(8);
  for (const auto& v : kInclusion) {
    SCOPED_TRACE(testing::Message() << "index " << v.index << " size " << v.size);
    auto proof = InclusionProof(t, v.index, v.size);
    ASSERT_TRUE(proof.has_value());
    EXPECT_EQ(*proof, Hashes(v.proof));
    EXPECT_TRUE(VerifyInclusion(H(kLeafHashes[v.index]), v.index, v.size, *proof, H(kRoots[v.size]))
                    .has_value());
  }
}

TEST(MerkleTest, KnownConsistencyProofs) {
  const MemoryTree t = TreeOf(8);
  for (const auto& v : kConsistency) {
    SCOPED_TRACE(testing::Message() << v.size1 << " → " << v.size2);
    auto proof = ConsistencyProof(t, v.size1, v.size2);
    ASSERT_TRUE(proof.has_value());
    EXPECT_EQ(*proof, Hashes(v.proof));
    EXPECT_TRUE(VerifyConsistency(v.size1, v.size2, *proof, H(kRoots[v.size1]), H(kRoots[v.size2]))
                    .has_value());
  }
}

// --- every proof of every tree up to 64 leaves
// ----------------------------------------------------

// Variants of a proof that must all be rejected.
std::vector<std::pair<std::string, std::vector<Hash>>> Corruptions(const std::vector<Hash>& proof,
                                                                   const Hash& extra) {
  std::vector<std::pair<std::string, std::vector<Hash>>> out;
  for (size_t i = 0; i < proof.size(); ++i) {
    for (int bit : {0, 3, 7}) {
      auto p = proof;
      p[i][i % kHashSize] ^= static_cast<uint8_t>(1 << bit);
      out.emplace_back("bit flipped in hash " + std::to_string(i), p);
    }
  }
  if (!proof.empty()) {
    out.emplace_back("last hash dropped", std::vector<Hash>(proof.begin(), proof.end() - 1));
    out.emplace_back("first hash dropped", std::vector<Hash>(proof.begin() + 1, proof.end()));
  }
  auto appended = proof;
  appended.push_back(extra);
  out.emplace_back("hash appended", appended);
  auto prepended = proof;
  prepended.insert(prepended.begin(), extra);
  out.emplace_back("hash prepended", prepended);
  return out;
}

TEST(MerkleTest, EveryInclusionProofUpTo64) {
  const MemoryTree tree = TreeOf(64);
  for (uint64_t size = 1; size <= 64; ++size) {
    const auto entries = Entries(size);
    const Hash root = Mth(entries);
    ASSERT_EQ(RootHash(tree, size), root) << size;
    for (uint64_t index = 0; index < size; ++index) {
      SCOPED_TRACE(testing::Message() << "index " << index << " size " << size);
      auto proof = InclusionProof(tree, index, size);
      ASSERT_TRUE(proof.has_value());
      ASSERT_EQ(*proof, RefPath(index, entries));
      const Hash leaf = LeafHash(entries[index]);
      ASSERT_TRUE(VerifyInclusion(leaf, index, size, *proof, root).has_value());
      for (const auto& [what, bad] : Corruptions(*proof, root)) {
        EXPECT_FALSE(VerifyInclusion(leaf, index, size, bad, root).has_value()) << what;
      }
      if (index > 0) {
        EXPECT_FALSE(VerifyInclusion(leaf, index - 1, size, *proof, root).has_value());
      }
      if (index + 1 < size) {
        EXPECT_FALSE(VerifyInclusion(leaf, index + 1, size, *proof, root).has_value());
      }
      // A wrong size that changes the shape of the path. (A neighbouring size whose path for
      // this index has the same shape combines the same hashes the same way: RFC 9162 proofs
      // cannot tell those apart, which is why a checkpoint signs the size with the root.)
      EXPECT_FALSE(VerifyInclusion(leaf, index, size * 2, *proof, root).has_value());
      if (index < size / 2) {
        EXPECT_FALSE(VerifyInclusion(leaf, index, size / 2, *proof, root).has_value());
      }
      EXPECT_FALSE(VerifyInclusion(LeafHash("other"), index, size, *proof, root).has_value());
    }
  }
}

TEST(MerkleTest, EveryConsistencyProofUpTo64) {
  const MemoryTree tree = TreeOf(64);
  std::vector<Hash> roots = {EmptyRoot()};
  for (uint64_t n = 1; n <= 64; ++n) roots.push_back(Mth(Entries(n)));
  for (uint64_t size2 = 1; size2 <= 64; ++size2) {
    const auto entries = Entries(size2);
    for (uint64_t size1 = 1; size1 <= size2; ++size1) {
      SCOPED_TRACE(testing::Message() << size1 << " → " << size2);
      auto proof = ConsistencyProof(tree, size1, size2);
      ASSERT_TRUE(proof.has_value());
      ASSERT_EQ(*proof, size1 == size2 ? std::vector<Hash>{} : RefSubproof(size1, entries, true));
      ASSERT_TRUE(VerifyConsistency(size1, size2, *proof, roots[size1], roots[size2]).has_value());
      if (size1 == size2) continue;
      for (const auto& [what, bad] : Corruptions(*proof, roots[size2])) {
        EXPECT_FALSE(VerifyConsistency(size1, size2, bad, roots[size1], roots[size2]).has_value())
            << what;
      }
      EXPECT_FALSE(VerifyConsistency(size1, size2, *proof, roots[size2], roots[size1]).has_value())
          << "swapped roots";
      EXPECT_FALSE(
          VerifyConsistency(size1 + 1, size2, *proof, roots[size1], roots[size2]).has_value());
      if (size1 > 1) {
        EXPECT_FALSE(
            VerifyConsistency(size1 - 1, size2, *proof, roots[size1], roots[size2]).has_value());
      }
      // As for inclusion, a wrong second size is caught when it changes the path's shape.
      EXPECT_FALSE(
          VerifyConsistency(size1, size2 * 2, *proof, roots[size1], roots[size2]).has_value());
      EXPECT_FALSE(VerifyConsistency(size1, size2, {}, roots[size1], roots[size2]).has_value())
          << "empty proof";
    }
  }
}

TEST(MerkleTest, EdgeCases) {
  const MemoryTree tree = TreeOf(4);
  EXPECT_EQ(InclusionProof(tree, 4, 4).error().code, Code::kInvalidArgument);
  EXPECT_EQ(ConsistencyProof(tree, 3, 2).error().code, Code::kInvalidArgument);
  const Hash some = LeafHash("x");
  EXPECT_EQ(VerifyInclusion(some, 0, 0, {}, some).error().code, Code::kInvalidArgument);
  EXPECT_TRUE(VerifyInclusion(some, 0, 1, {}, some).has_value());
  EXPECT_EQ(VerifyInclusion(some, 0, 1, {}, EmptyRoot()).error().code, Code::kDataLoss);
  EXPECT_TRUE(VerifyConsistency(0, 5, {}, EmptyRoot(), some).has_value());
  EXPECT_FALSE(VerifyConsistency(0, 5, std::vector<Hash>{some}, some, some).has_value());
  EXPECT_TRUE(VerifyConsistency(3, 3, {}, some, some).has_value());
  EXPECT_FALSE(VerifyConsistency(3, 3, {}, some, EmptyRoot()).has_value());
  EXPECT_FALSE(VerifyConsistency(3, 3, std::vector<Hash>{some}, some, some).has_value());
  EXPECT_EQ(VerifyConsistency(4, 3, {}, some, some).error().code, Code::kInvalidArgument);
  auto bad = VerifyInclusion(some, 0, 2, {}, some);
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message, HasSubstr("proof does not verify"));
}

// RFC 9162 §2.1.4: the length of PROOF(m, D[n]) depends on m and n alone. Checked against the
// proofs generated for every pair of sizes up to 64, the empty and equal ones included.
TEST(MerkleTest, ConsistencyProofSizeMatchesEveryProofUpTo64) {
  const MemoryTree tree = TreeOf(64);
  for (uint64_t size2 = 0; size2 <= 64; ++size2) {
    for (uint64_t size1 = 0; size1 <= size2; ++size1) {
      auto proof = ConsistencyProof(tree, size1, size2);
      ASSERT_TRUE(proof.has_value());
      EXPECT_EQ(ConsistencyProofSize(size1, size2), proof->size()) << size1 << " → " << size2;
    }
  }
  // Two hashes per level at most, even for the largest trees.
  EXPECT_EQ(ConsistencyProofSize(1, uint64_t{1} << 63), 63u);
  EXPECT_LE(ConsistencyProofSize((uint64_t{1} << 62) + 1, ~uint64_t{0}), kMaxProofHashes);
}

// A tree of size 0 has one root, SHA-256 of nothing: an empty proof connects only that root to a
// larger tree, and two trees of size 0 only if both have it.
TEST(MerkleTest, AnEmptyTreeHasOnlyTheEmptyRoot) {
  const MemoryTree tree = TreeOf(5);
  const Hash some = LeafHash("x");
  EXPECT_TRUE(VerifyConsistency(0, 5, {}, EmptyRoot(), tree.Root()).has_value());
  auto other = VerifyConsistency(0, 5, {}, some, tree.Root());
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().code, Code::kDataLoss);
  EXPECT_THAT(other.error().message, HasSubstr("empty tree"));
  EXPECT_TRUE(VerifyConsistency(0, 0, {}, EmptyRoot(), EmptyRoot()).has_value());
  EXPECT_EQ(VerifyConsistency(0, 0, {}, some, some).error().code, Code::kDataLoss);
  EXPECT_EQ(VerifyConsistency(0, 0, {}, EmptyRoot(), some).error().code, Code::kDataLoss);
}

TEST(MerkleTest, HexParsing) {
  EXPECT_EQ(ToHex(H(kRoots[8])), kRoots[8]);
  EXPECT_EQ(ToHex(H("5DC9DA79A70659A9AD559CB701DED9A2AB9D823AAD2F4960CFE370EFF4604328")),
            kRoots[8]);
  EXPECT_FALSE(HashFromHex("5dc9").has_value());
  EXPECT_FALSE(HashFromHex(std::string(64, 'g')).has_value());
  EXPECT_TRUE(ProofFromHex("")->empty());
  EXPECT_EQ(ProofFromHex(kRoots[1] + "," + kRoots[2])->size(), 2u);
  EXPECT_FALSE(ProofFromHex(kRoots[1] + ",").has_value());
  EXPECT_FALSE(ProofFromHex("," + kRoots[1]).has_value());
  std::string long_proof = kRoots[1];
  for (int i = 0; i < 128; ++i) long_proof += "," + kRoots[1];
  EXPECT_FALSE(ProofFromHex(long_proof).has_value());
}

// The document of several consistency proofs: what EncodeConsistencyProofs writes,
// DecodeConsistencyProofs reads back; every malformed form is refused with what is wrong.
TEST(MerkleTest, ConsistencyProofsDocument) {
  const ConsistencyProofs proofs{8, H(kRoots[8]), {{3, {H(kRoots[1]), H(kRoots[2])}}, {8, {}}}};
  const std::string text = EncodeConsistencyProofs(proofs);
  EXPECT_EQ(text, R"({"to":8,"root":")" + kRoots[8] + R"(","proofs":[{"from":3,"proof":[")" +
                      kRoots[1] + R"(",")" + kRoots[2] + R"("]},{"from":8,"proof":[]}]})");
  auto back = DecodeConsistencyProofs(text);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->to, 8u);
  EXPECT_EQ(back->root, H(kRoots[8]));
  ASSERT_EQ(back->proofs.size(), 2u);
  EXPECT_EQ(back->proofs[0].from, 3u);
  EXPECT_EQ(back->proofs[0].proof, proofs.proofs[0].proof);
  EXPECT_EQ(back->proofs[1].from, 8u);
  EXPECT_TRUE(back->proofs[1].proof.empty());
  EXPECT_EQ(*back, proofs);
  // Sizes past int64 (Boost.JSON gives them as uint64), and unknown keys ignored.
  auto big = DecodeConsistencyProofs(R"({"to":18446744073709551615,"root":")" + kRoots[1] +
                                     R"(","proofs":[],"note":"x"})");
  ASSERT_TRUE(big) << big.error().ToString();
  EXPECT_EQ(big->to, 18446744073709551615u);

  const std::string root = R"("root":")" + kRoots[1] + R"(")";
  std::string many = "{\"to\":1," + root + ",\"proofs\":[";
  for (size_t i = 0; i <= kMaxConsistencyProofs; ++i) {
    many += std::string(i == 0 ? "" : ",") + R"({"from":1,"proof":[]})";
  }
  many += "]}";
  std::string long_proof = "{\"to\":1," + root + ",\"proofs\":[{\"from\":1,\"proof\":[";
  for (size_t i = 0; i <= kMaxProofHashes; ++i) {
    long_proof += std::string(i == 0 ? "" : ",") + "\"" + kRoots[1] + "\"";
  }
  long_proof += "]}]}";
  const struct {
    std::string text;
    std::string_view message;
  } kMalformed[] = {
      {"", "incomplete JSON"},
      {"[]", "not a JSON object"},
      {"{" + root + R"(,"proofs":[]})", "`to` is not a size"},
      {"{\"to\":-1," + root + R"(,"proofs":[]})", "`to` is not a size"},
      {"{\"to\":1.5," + root + R"(,"proofs":[]})", "`to` is not a size"},
      {R"({"to":1,"proofs":[]})", "`root`"},
      {R"({"to":1,"root":"abc","proofs":[]})", "`root`"},
      {"{\"to\":1," + root + "}", "`proofs` is not a list"},
      {"{\"to\":1," + root + R"(,"proofs":{}})", "`proofs` is not a list"},
      {many, "257 proofs, at most 256"},
      {"{\"to\":1," + root + R"(,"proofs":[1]})", "proof 0: `from` is not a size"},
      {"{\"to\":1," + root + R"(,"proofs":[{"proof":[]}]})", "proof 0: `from` is not a size"},
      {"{\"to\":1," + root + R"(,"proofs":[{"from":1}]})", "the proof from 1: not a list"},
      {"{\"to\":1," + root + R"(,"proofs":[{"from":1,"proof":[7]}]})",
       "the proof from 1: not a string"},
      {"{\"to\":1," + root + R"(,"proofs":[{"from":1,"proof":["ab"]}]})", "the proof from 1:"},
      {long_proof, "129 hashes, at most 128"},
      {"{\"to\":1,\"to\":2," + root + R"(,"proofs":[]})", "duplicate key `to`"},
  };
  for (const auto& [bad, message] : kMalformed) {
    auto refused = DecodeConsistencyProofs(bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().code, Code::kInvalidArgument) << bad;
    EXPECT_THAT(refused.error().message, HasSubstr("malformed consistency proofs: ")) << bad;
    EXPECT_THAT(refused.error().message, HasSubstr(message)) << bad;
  }
}

// One proof as a JSON list, as the answers of /v1/log/proof and /v1/log/consistency give it.
TEST(MerkleTest, ProofAsJson) {
  const boost::json::value two = boost::json::array{kRoots[1], kRoots[2]};
  auto proof = DecodeProof(&two);
  ASSERT_TRUE(proof) << proof.error().ToString();
  EXPECT_EQ(*proof, (std::vector<Hash>{H(kRoots[1]), H(kRoots[2])}));
  const boost::json::value empty = boost::json::array{};
  EXPECT_TRUE(DecodeProof(&empty).value().empty());
  const boost::json::value number = boost::json::array{1};
  const boost::json::value short_hash = boost::json::array{"ab"};
  const boost::json::value text = "ab";
  for (const auto& [list, message] :
       {std::pair<const boost::json::value*, std::string_view>{nullptr, "not a list"},
        {&text, "not a list"},
        {&number, "not a string"},
        {&short_hash, "64 hex digits"}}) {
    auto refused = DecodeProof(list);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Code::kInvalidArgument);
    EXPECT_THAT(refused.error().message, HasSubstr(message));
  }
}

// The compact range agrees with the full tree at every size, creates exactly the complete
// subtrees MemoryTree holds, and resumes from any size read back through a NodeSource.
TEST(CompactRangeTest, MatchesTheFullTreeAndResumes) {
  MemoryTree tree;
  CompactRange range;
  std::vector<NodeWrite> created;
  for (uint64_t n = 0; n < 300; ++n) {
    ASSERT_EQ(range.Root(), tree.Root()) << n;
    ASSERT_EQ(CompactRange::FromSource(tree, n).Root(), tree.Root()) << n;
    const Hash leaf = LeafHash("entry " + std::to_string(n));
    tree.Append(leaf);
    created.clear();
    range.Append(leaf, created);
    ASSERT_FALSE(created.empty());
    for (const NodeWrite& w : created) {
      EXPECT_EQ(w.hash, tree.Node(w.level, w.index)) << n << " " << w.level << " " << w.index;
    }
    // A leaf at index n completes one subtree per trailing one bit of n.
    EXPECT_EQ(created.size(), static_cast<size_t>(1 + std::countr_one(n))) << n;
  }
  EXPECT_EQ(range.size(), 300u);
  EXPECT_EQ(CompactRange().Root(), EmptyRoot());
}

}  // namespace
}  // namespace accord::merkle
