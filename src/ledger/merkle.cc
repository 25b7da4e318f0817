// RFC 9162 Merkle tree hashing, proofs and their verification, on OpenSSL's SHA-256.
#include "accord/merkle.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <bit>
#include <boost/json.hpp>
#include <cstdlib>
#include <optional>

#include "accord/json.h"

namespace accord::merkle {
namespace {

// SHA-256 over up to three parts. The digest is fetched once per thread; the context is reused.
class Sha256 {
 public:
  Sha256() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {
    if (md_ == nullptr || ctx_ == nullptr) std::abort();  // OpenSSL without SHA-256: unusable
  }
  ~Sha256() {
    EVP_MD_CTX_free(ctx_);
    EVP_MD_free(md_);
  }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Hash Digest(uint8_t prefix, std::span<const uint8_t> a, std::span<const uint8_t> b = {}) {
    Hash out;
    unsigned int n = 0;
    // These calls fail only on allocation failure or a broken provider; abort rather than
    // return a hash that is not SHA-256.
    if (EVP_DigestInit_ex2(ctx_, md_, nullptr) != 1 || EVP_DigestUpdate(ctx_, &prefix, 1) != 1 ||
        EVP_DigestUpdate(ctx_, a.data(), a.size()) != 1 ||
        (!b.empty() && EVP_DigestUpdate(ctx_, b.data(), b.size()) != 1) ||
        EVP_DigestFinal_ex(ctx_, out.data(), &n) != 1 || n != kHashSize) {
      std::abort();
    }
    return out;
  }

 private:
  EVP_MD* md_;
  EVP_MD_CTX* ctx_;
};

Sha256& Hasher() {
  thread_local Sha256 sha;
  return sha;
}

// The largest power of two strictly below n (n ≥ 2).
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

Status ProofFailure(std::string_view what) {
  return Fail(Code::kDataLoss, fmt::format("proof does not verify: {}", what));
}

// RFC 9162 §2.1.3.1 PATH(m, D[begin:end]), appended to `out`.
void Path(const NodeSource& nodes, uint64_t m, uint64_t begin, uint64_t end,
          std::vector<Hash>& out) {
  const uint64_t n = end - begin;
  if (n <= 1) return;
  const uint64_t k = SplitPoint(n);
  if (m < k) {
    Path(nodes, m, begin, begin + k, out);
    out.push_back(SubtreeHash(nodes, begin + k, end));
  } else {
    Path(nodes, m - k, begin + k, end, out);
    out.push_back(SubtreeHash(nodes, begin, begin + k));
  }
}

// RFC 9162 §2.1.4.1 SUBPROOF(m, D[begin:end], b), appended to `out`.
void Subproof(const NodeSource& nodes, uint64_t m, uint64_t begin, uint64_t end, bool complete,
              std::vector<Hash>& out) {
  const uint64_t n = end - begin;
  if (m == n) {
    if (!complete) out.push_back(SubtreeHash(nodes, begin, end));
    return;
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    Subproof(nodes, m, begin, begin + k, complete, out);
    out.push_back(SubtreeHash(nodes, begin + k, end));
  } else {
    Subproof(nodes, m - k, begin + k, end, false, out);
    out.push_back(SubtreeHash(nodes, begin, begin + k));
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Hash LeafHash(std::span<const uint8_t> entry) { return Hasher().Digest(0x00, entry); }

Hash LeafHash(std::string_view entry) {
  return LeafHash(std::span(reinterpret_cast<const uint8_t*>(entry.data()), entry.size()));
}

Hash NodeHash(const Hash& left, const Hash& right) { return Hasher().Digest(0x01, left, right); }

Hash EmptyRoot() {
  // SHA-256 of the empty string, without a prefix byte.
  Hash out;
  unsigned int n = 0;
  if (EVP_Digest(nullptr, 0, out.data(), &n, EVP_sha256(), nullptr) != 1) std::abort();
  return out;
}

Hash SubtreeHash(const NodeSource& nodes, uint64_t begin, uint64_t end) {
  const uint64_t n = end - begin;
  // A complete, aligned subtree is stored as one node.
  if (std::has_single_bit(n) && begin % n == 0) {
    const int level = std::countr_zero(n);
    return nodes.Node(level, begin >> level);
  }
  const uint64_t k = SplitPoint(n);
  return NodeHash(SubtreeHash(nodes, begin, begin + k), SubtreeHash(nodes, begin + k, end));
}

Hash RootHash(const NodeSource& nodes, uint64_t size) {
  return size == 0 ? EmptyRoot() : SubtreeHash(nodes, 0, size);
}

Result<std::vector<Hash>> InclusionProof(const NodeSource& nodes, uint64_t index, uint64_t size) {
  if (index >= size) {
    return Fail(Code::kInvalidArgument,
                fmt::format("leaf index {} is not below the tree size {}", index, size));
  }
  std::vector<Hash> out;
  Path(nodes, index, 0, size, out);
  return out;
}

Result<std::vector<Hash>> ConsistencyProof(const NodeSource& nodes, uint64_t size1,
                                           uint64_t size2) {
  if (size1 > size2) {
    return Fail(Code::kInvalidArgument,
                fmt::format("the first size {} is larger than the second {}", size1, size2));
  }
  std::vector<Hash> out;
  if (size1 > 0 && size1 < size2) Subproof(nodes, size1, 0, size2, true, out);
  return out;
}

size_t ConsistencyProofSize(uint64_t size1, uint64_t size2) {
  if (size1 == 0 || size1 >= size2) return 0;
  // As in the verification (§2.1.4.2): the paths of leaves size1 − 1 and size2 − 1 share their top
  // above bit `inner`; below it the proof holds one hash per level above the largest complete
  // subtree that ends at size1 (`shift` levels), and above it one per set bit of size1 − 1 there
  // (`border`). The seed, the root of that subtree, is in the proof unless it is the whole first
  // tree (size1 a power of two).
  const int inner = static_cast<int>(std::bit_width((size1 - 1) ^ (size2 - 1)));
  const int shift = std::countr_zero(size1);
  // (A shift by 64, when the paths part at the top bit, is undefined: no bit is left there.)
  const int border = inner >= 64 ? 0 : std::popcount((size1 - 1) >> inner);
  return (std::has_single_bit(size1) ? 0 : 1) + static_cast<size_t>(inner - shift + border);
}

Status VerifyInclusion(const Hash& leaf_hash, uint64_t index, uint64_t size,
                       std::span<const Hash> proof, const Hash& root) {
  if (index >= size) {
    return Fail(Code::kInvalidArgument,
                fmt::format("leaf index {} is not below the tree size {}", index, size));
  }
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) return ProofFailure("the proof is longer than the tree is deep");
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return ProofFailure("the proof is shorter than the tree is deep");
  if (r != root) return ProofFailure("the computed root differs from the root given");
  return OkStatus();
}

Status VerifyConsistency(uint64_t size1, uint64_t size2, std::span<const Hash> proof,
                         const Hash& root1, const Hash& root2) {
  if (size1 > size2) {
    return Fail(Code::kInvalidArgument,
                fmt::format("the first size {} is larger than the second {}", size1, size2));
  }
  // A tree of size 0 has one root, whatever else a checkpoint may claim for it.
  if (size1 == 0 && root1 != EmptyRoot()) {
    return ProofFailure("the first tree is empty, and its root is not the empty tree's");
  }
  if (size2 == 0 && root2 != EmptyRoot()) {
    return ProofFailure("the second tree is empty, and its root is not the empty tree's");
  }
  if (size1 == size2) {
    if (!proof.empty()) return ProofFailure("trees of equal size need an empty proof");
    if (root1 != root2) return ProofFailure("trees of equal size have different roots");
    return OkStatus();
  }
  if (size1 == 0) {
    // Every tree extends the empty tree (whose root is checked above).
    if (!proof.empty()) return ProofFailure("a proof from the empty tree must be empty");
    return OkStatus();
  }
  if (proof.empty()) return ProofFailure("the proof is empty");
  // RFC 9162 §2.1.4.2. When size1 is a power of two, root1 is the first node of the path.
  size_t next = 0;
  Hash fr, sr;
  uint64_t fn = size1 - 1;
  uint64_t sn = size2 - 1;
  if (std::has_single_bit(size1)) {
    fr = sr = root1;
  } else {
    fr = sr = proof[0];
    next = 1;
  }
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  for (; next < proof.size(); ++next) {
    const Hash& c = proof[next];
    if (sn == 0) return ProofFailure("the proof is longer than the trees are deep");
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return ProofFailure("the proof is shorter than the trees are deep");
  if (fr != root1) return ProofFailure("the proof does not lead to the first root");
  if (sr != root2) return ProofFailure("the proof does not lead to the second root");
  return OkStatus();
}

void MemoryTree::Append(const Hash& leaf_hash) {
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(leaf_hash);
  // Each completed pair of siblings completes their parent, up the levels.
  for (size_t level = 0; levels_[level].size() % 2 == 0; ++level) {
    if (level + 1 == levels_.size()) levels_.emplace_back();
    const auto& row = levels_[level];
    levels_[level + 1].push_back(NodeHash(row[row.size() - 2], row[row.size() - 1]));
  }
}

Hash MemoryTree::Node(int level, uint64_t index) const { return levels_.at(level).at(index); }

CompactRange CompactRange::FromSource(const NodeSource& nodes, uint64_t size) {
  CompactRange range;
  range.size_ = size;
  uint64_t begin = 0;
  for (int level = 63; level >= 0; --level) {
    const uint64_t width = uint64_t{1} << level;
    if ((size & width) != 0) {
      range.edge_.push_back(nodes.Node(level, begin >> level));
      range.levels_.push_back(level);
      begin += width;
    }
  }
  return range;
}

void CompactRange::Append(const Hash& leaf_hash, std::vector<NodeWrite>& created) {
  created.push_back(NodeWrite{0, size_, leaf_hash});
  edge_.push_back(leaf_hash);
  levels_.push_back(0);
  ++size_;
  // Two neighbours of the same height merge into their parent, up the edge.
  while (levels_.size() >= 2 && levels_[levels_.size() - 1] == levels_[levels_.size() - 2]) {
    const Hash parent = NodeHash(edge_[edge_.size() - 2], edge_.back());
    const int level = levels_.back() + 1;
    edge_.pop_back();
    levels_.pop_back();
    edge_.back() = parent;
    levels_.back() = level;
    created.push_back(NodeWrite{level, (size_ >> level) - 1, parent});
  }
}

Hash CompactRange::Root() const {
  if (edge_.empty()) {
    return EmptyRoot();
  }
  // RFC 9162 splits at the largest power of two below the size, so the root folds the edge from
  // the right.
  Hash root = edge_.back();
  for (size_t i = edge_.size() - 1; i-- > 0;) {
    root = NodeHash(edge_[i], root);
  }
  return root;
}

std::string ToHex(const Hash& hash) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * kHashSize, '0');
  for (size_t i = 0; i < kHashSize; ++i) {
    out[2 * i] = kDigits[hash[i] >> 4];
    out[2 * i + 1] = kDigits[hash[i] & 0xF];
  }
  return out;
}

Result<Hash> HashFromHex(std::string_view hex) {
  if (hex.size() != 2 * kHashSize) {
    return Fail(Code::kInvalidArgument,
                fmt::format("a hash is 64 hex digits; `{}` has {} characters", hex.substr(0, 80),
                            hex.size()));
  }
  Hash out;
  for (size_t i = 0; i < kHashSize; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Fail(Code::kInvalidArgument, fmt::format("`{}` is not hexadecimal", hex));
    }
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

Result<std::vector<Hash>> ProofFromHex(std::string_view list) {
  std::vector<Hash> out;
  if (list.empty()) return out;
  while (true) {
    const size_t comma = list.find(',');
    ACCORD_ASSIGN_OR_RETURN(Hash h, HashFromHex(list.substr(0, comma)));
    if (out.size() == kMaxProofHashes) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("a proof has at most {} hashes", kMaxProofHashes));
    }
    out.push_back(h);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

namespace {

namespace json = boost::json;

std::optional<uint64_t> Count(const json::value* v) {
  return v != nullptr ? JsonCount(*v) : std::nullopt;
}

}  // namespace

std::string EncodeConsistencyProofs(const ConsistencyProofs& proofs) {
  json::array list;
  list.reserve(proofs.proofs.size());
  for (const ConsistencyProofs::Proof& p : proofs.proofs) {
    json::object one;
    one["from"] = p.from;
    one["proof"] = EncodeProof(p.proof);
    list.emplace_back(std::move(one));
  }
  json::object o;
  o["to"] = proofs.to;
  o["root"] = ToHex(proofs.root);
  o["proofs"] = std::move(list);
  return json::serialize(o);
}

json::array EncodeProof(std::span<const Hash> proof) {
  json::array hashes;
  hashes.reserve(proof.size());
  for (const Hash& h : proof) hashes.emplace_back(ToHex(h));
  return hashes;
}

Result<std::vector<Hash>> DecodeProof(const json::value* list) {
  const json::array* hashes = list != nullptr ? list->if_array() : nullptr;
  if (hashes == nullptr) return Fail(Code::kInvalidArgument, "not a list");
  if (hashes->size() > kMaxProofHashes) {
    return Fail(Code::kInvalidArgument,
                fmt::format("{} hashes, at most {}", hashes->size(), kMaxProofHashes));
  }
  std::vector<Hash> out;
  out.reserve(hashes->size());
  for (const json::value& h : *hashes) {
    if (!h.is_string()) return Fail(Code::kInvalidArgument, "not a string");
    ACCORD_ASSIGN_OR_RETURN(Hash hash, HashFromHex(h.get_string()));
    out.push_back(hash);
  }
  return out;
}

Result<ConsistencyProofs> DecodeConsistencyProofs(std::string_view text) {
  const auto malformed = [](std::string_view what) {
    return Fail(Code::kInvalidArgument, fmt::format("malformed consistency proofs: {}", what));
  };
  auto v = ParseJson(text);
  if (!v) return malformed(v.error());
  const json::object* o = v->if_object();
  if (o == nullptr) return malformed("not a JSON object");
  ConsistencyProofs out;
  const auto to = Count(o->if_contains("to"));
  if (!to) return malformed("`to` is not a size");
  out.to = *to;
  const json::value* root = o->if_contains("root");
  if (root == nullptr || !root->is_string()) return malformed("`root` is not a hash");
  auto hash = HashFromHex(root->get_string());
  if (!hash) return malformed(fmt::format("`root`: {}", hash.error().message));
  out.root = *hash;
  const json::value* list = o->if_contains("proofs");
  if (list == nullptr || !list->is_array()) return malformed("`proofs` is not a list");
  if (list->as_array().size() > kMaxConsistencyProofs) {
    return malformed(
        fmt::format("{} proofs, at most {}", list->as_array().size(), kMaxConsistencyProofs));
  }
  for (const json::value& item : list->as_array()) {
    const json::object* one = item.if_object();
    const auto from = Count(one != nullptr ? one->if_contains("from") : nullptr);
    if (!from) return malformed(fmt::format("proof {}: `from` is not a size", out.proofs.size()));
    auto proof = DecodeProof(one->if_contains("proof"));
    if (!proof) {
      return malformed(fmt::format("the proof from {}: {}", *from, proof.error().message));
    }
    out.proofs.push_back(ConsistencyProofs::Proof{*from, std::move(*proof)});
  }
  return out;
}

}  // namespace accord::merkle
