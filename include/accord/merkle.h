// accord/merkle.h — the Merkle tree of RFC 9162 (Certificate Transparency v2) for the audit log.
//
// Leaves hash as SHA-256(0x00 || entry), interior nodes as SHA-256(0x01 || left || right); the
// tree over n leaves splits at the largest power of two below n. Proofs are generated from the
// hashes of complete subtrees, read through `NodeSource`, so that a store holding those hashes
// answers a proof with O(log n) reads; `MemoryTree` keeps them in memory.
//
// Verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) and needs
// nothing but the hashes: a partner checks a log without trusting its store. A proof that does not
// verify is `kDataLoss`; malformed arguments (an index past the size, sizes out of order) are
// `kInvalidArgument`.
//
// Thread safety: free functions are pure; a MemoryTree may be read concurrently while nobody
// appends.
#ifndef ACCORD_MERKLE_H_
#define ACCORD_MERKLE_H_

#include <array>
#include <boost/json/fwd.hpp>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "accord/status.h"

namespace accord::merkle {

inline constexpr size_t kHashSize = 32;
using Hash = std::array<uint8_t, kHashSize>;

// SHA-256(0x00 || entry).
[[nodiscard]] Hash LeafHash(std::span<const uint8_t> entry);
[[nodiscard]] Hash LeafHash(std::string_view entry);
// SHA-256(0x01 || left || right).
[[nodiscard]] Hash NodeHash(const Hash& left, const Hash& right);
// The root of the empty tree: SHA-256 of nothing.
[[nodiscard]] Hash EmptyRoot();

// The hashes of the complete subtrees of a log: Node(level, index) covers leaves
// [index·2^level, (index+1)·2^level), which the log holds in full.
class NodeSource {
 public:
  virtual ~NodeSource() = default;
  [[nodiscard]] virtual Hash Node(int level, uint64_t index) const = 0;
};

// The hash of leaves [begin, end) (end > begin), from O(log(end − begin)) complete subtrees.
[[nodiscard]] Hash SubtreeHash(const NodeSource& nodes, uint64_t begin, uint64_t end);
// The root of the first `size` leaves (EmptyRoot() for 0).
[[nodiscard]] Hash RootHash(const NodeSource& nodes, uint64_t size);

// RFC 9162 PATH(index, D[size]): the audit path of leaf `index` in the tree of the first `size`
// leaves. kInvalidArgument when index ≥ size.
[[nodiscard]] Result<std::vector<Hash>> InclusionProof(const NodeSource& nodes, uint64_t index,
                                                       uint64_t size);
// RFC 9162 PROOF(size1, D[size2]). kInvalidArgument when size1 > size2.
[[nodiscard]] Result<std::vector<Hash>> ConsistencyProof(const NodeSource& nodes, uint64_t size1,
                                                         uint64_t size2);

// The number of hashes in RFC 9162 PROOF(size1, D[size2]) for size1 ≤ size2 (§2.1.4.1): it depends
// on the sizes alone, and is 0 when size1 is 0 or equals size2 (and, by convention, when size1 >
// size2, where no proof exists). A proof of another length is malformed, whatever its hashes.
[[nodiscard]] size_t ConsistencyProofSize(uint64_t size1, uint64_t size2);

// OK when `proof` shows leaf `leaf_hash` at `index` in the tree of `size` leaves with `root`.
[[nodiscard]] Status VerifyInclusion(const Hash& leaf_hash, uint64_t index, uint64_t size,
                                     std::span<const Hash> proof, const Hash& root);
// OK when `proof` shows the tree of `size1` leaves with `root1` to be a prefix of the tree of
// `size2` leaves with `root2`. A tree of size 0 has only EmptyRoot() for its root: any other is
// kDataLoss.
[[nodiscard]] Status VerifyConsistency(uint64_t size1, uint64_t size2, std::span<const Hash> proof,
                                       const Hash& root1, const Hash& root2);

// A log held in memory: the leaf hashes and every complete subtree above them (about 2n hashes).
class MemoryTree final : public NodeSource {
 public:
  void Append(const Hash& leaf_hash);
  [[nodiscard]] uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  [[nodiscard]] Hash Root() const { return RootHash(*this, size()); }
  [[nodiscard]] Hash Node(int level, uint64_t index) const override;

 private:
  // levels_[k][i] is the hash of leaves [i·2^k, (i+1)·2^k).
  std::vector<std::vector<Hash>> levels_;
};

// A complete subtree hash created by an append: it covers leaves [index·2^level,
// (index+1)·2^level).
struct NodeWrite {
  int level = 0;
  uint64_t index = 0;
  Hash hash{};
};

// The right edge of a log: the roots of the perfect subtrees that make up its first `size()`
// leaves, one per set bit of the size. Appending needs nothing else, so a durable log appends
// without reading its store, and writes exactly the complete subtrees each append creates.
class CompactRange {
 public:
  CompactRange() = default;
  // The right edge of the first `size` leaves of `nodes`: O(log size) reads.
  [[nodiscard]] static CompactRange FromSource(const NodeSource& nodes, uint64_t size);

  // Appends `leaf_hash` as leaf size(); adds to `created` the leaf node and every subtree it
  // completes (on average two per append).
  void Append(const Hash& leaf_hash, std::vector<NodeWrite>& created);

  [[nodiscard]] uint64_t size() const { return size_; }
  // RFC 9162 MTH of the first size() leaves.
  [[nodiscard]] Hash Root() const;

 private:
  uint64_t size_ = 0;
  // INVARIANT: edge_[k] is the root of the perfect subtree of 2^levels_[k] leaves, in order from
  // the left (largest) to the right (smallest); the levels are the set bits of size_.
  std::vector<Hash> edge_;
  std::vector<int> levels_;
};

// Lowercase hex, 64 characters.
[[nodiscard]] std::string ToHex(const Hash& hash);
// Parses 64 hex digits (either case).
[[nodiscard]] Result<Hash> HashFromHex(std::string_view hex);
// Parses a comma-separated list of hashes; an empty string is an empty proof.
[[nodiscard]] Result<std::vector<Hash>> ProofFromHex(std::string_view list);

// A proof's hashes, at most: two per level of a tree of 2^64 leaves.
inline constexpr size_t kMaxProofHashes = 128;
// Consistency proofs in one document, at most.
inline constexpr size_t kMaxConsistencyProofs = 256;

// Consistency proofs from several earlier sizes of one tree to its tree of `to` leaves with
// `root`, as one document: the answer of `POST /v1/log/consistency` and the output of
// `accord log consistency --json` (docs/api.md):
//   {"to":12,"root":"HEX","proofs":[{"from":5,"proof":["HEX",...]},...]}
struct ConsistencyProofs {
  struct Proof {
    uint64_t from = 0;
    std::vector<Hash> proof;
    friend bool operator==(const Proof&, const Proof&) = default;
  };
  uint64_t to = 0;
  Hash root{};
  std::vector<Proof> proofs;  // in the order asked for
  friend bool operator==(const ConsistencyProofs&, const ConsistencyProofs&) = default;
};
[[nodiscard]] std::string EncodeConsistencyProofs(const ConsistencyProofs& proofs);
// Parses that document (duplicate keys refused, unknown keys ignored), with at most
// kMaxConsistencyProofs proofs of at most kMaxProofHashes hashes each; kInvalidArgument with
// what is wrong. It checks the form only: whether the proofs verify is VerifyConsistency's.
[[nodiscard]] Result<ConsistencyProofs> DecodeConsistencyProofs(std::string_view text);
// One proof as JSON gives it: a list of hashes in hex (`proof` in the answers of `/v1/log/proof`
// and `/v1/log/consistency`). DecodeProof takes at most kMaxProofHashes, and says what is wrong
// (kInvalidArgument), also when `list` is null (absent).
[[nodiscard]] boost::json::array EncodeProof(std::span<const Hash> proof);
[[nodiscard]] Result<std::vector<Hash>> DecodeProof(const boost::json::value* list);

}  // namespace accord::merkle

#endif  // ACCORD_MERKLE_H_
