// The node's audit log: every operation and every decision as one entry of an append-only
// RFC 9162 Merkle log kept in the store, appended in the same transaction as the change it
// records, with signed checkpoints (C2SP tlog-checkpoint) by the node's identity key.
//
// Entries are canonical JSON, version 1 (docs/ledger.md): keys in a fixed order, only those
// that apply, strings only, instants in UTC. They never hold payloads or keys.
//
// Thread safety: one AuditLog per Node, used by one thread at a time. Another process appending
// to the same home is noticed at the next append (the store's size is the truth).
#ifndef ACCORD_SRC_NODE_AUDIT_H_
#define ACCORD_SRC_NODE_AUDIT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "accord/merkle.h"
#include "accord/note.h"
#include "accord/status.h"
#include "accord/store.h"
#include "accord/time.h"

namespace accord::node_internal {

struct AuditEntry {
  std::string op;  // create read release receive receipt forward consent reclassify destroy
                   // report subject partner
  Instant at;
  std::string party;     // the node that logged it
  std::string decision;  // allow | deny | "" (not a decision)
  std::string reason;    // the reason code of a decision, or why a package was refused
  std::string subject;
  std::string object;
  std::string from;
  std::string to;
  std::string agreement;
  std::string marking;  // PARTY/LEVEL
  std::string level;
  std::string version;
  std::string package;  // a package or notice id
  std::string digest;   // hex SHA-256 of the package body or envelope
};

[[nodiscard]] Bytes EncodeEntry(const AuditEntry& entry);
[[nodiscard]] Result<AuditEntry> DecodeEntry(ByteView bytes);

// "accord/KOR": the log's origin line and the name of its checkpoint key.
[[nodiscard]] std::string LogOrigin(std::string_view party);

class AuditLog {
 public:
  explicit AuditLog(Store& store) : store_(&store) {}

  // Appends inside the caller's transaction. Returns the entry's index.
  [[nodiscard]] Result<uint64_t> Append(const AuditEntry& entry);
  // Appends many encoded entries at once (one store write). Returns the first index.
  [[nodiscard]] Result<uint64_t> AppendEncoded(std::span<const Bytes> entries);

  // Forgets the in-memory edge and cache; the next use rebuilds them from the store. Called when
  // a transaction that may have appended rolls back.
  void Invalidate();

  [[nodiscard]] Result<uint64_t> Size();
  [[nodiscard]] Result<merkle::Hash> Root(uint64_t size);
  // The checkpoint of the log's current size, signed by `signer`.
  [[nodiscard]] Result<std::string> Checkpoint(const note::Signer& signer);
  [[nodiscard]] Result<std::vector<merkle::Hash>> Inclusion(uint64_t index, uint64_t size);
  [[nodiscard]] Result<std::vector<merkle::Hash>> Consistency(uint64_t size1, uint64_t size2);
  // Recomputes every leaf and subtree hash from the entries and compares them with the stored
  // ones (each entry's leaf hash, every stored subtree); kDataLoss naming the first mismatch.
  // Returns the recomputed root.
  [[nodiscard]] Result<merkle::Hash> VerifyAll(uint64_t* entries_checked = nullptr);

 private:
  // Brings the right edge and the tail in line with the store (after Invalidate, or another
  // process or thread appended).
  Status Sync();
  // Runs `compute` (a proof, a root, the right edge) over the store's tree, stored in tiles
  // (store.h): a first pass records which subtree hashes it reads; those of level
  // ≥ kLogNodeMinLevel are fetched in one query (or found in the cache, where they are kept once
  // read: complete subtrees never change), the lower ones are recomputed from the leaf hashes
  // of their tile, read in one range (or found in the tail); a second pass computes the result.
  template <typename Fn>
  std::invoke_result_t<Fn&, const merkle::NodeSource&> Fetched(Fn&& compute);
  // Runs `read` (returning a Result) in one read snapshot of the store: the size and the hashes
  // a proof reads come from one state, and take the database's locks once.
  template <typename Fn>
  std::invoke_result_t<Fn&> InSnapshot(Fn&& read);

  static constexpr size_t kMaxCached = size_t{1} << 18;  // about 20 MiB

  // A hash table, not a tree: a proof looks up a dozen keys, and in a cache of 10^5 of them each
  // step down a tree is a miss of the processor's cache.
  struct NodeKeyHash {
    size_t operator()(const std::pair<int32_t, uint64_t>& key) const {
      return std::hash<uint64_t>()(key.second * 64 + static_cast<uint64_t>(key.first));
    }
  };

  Store* store_;
  std::unordered_map<std::pair<int32_t, uint64_t>, merkle::Hash, NodeKeyHash>
      cache_;  // stored levels only
  merkle::CompactRange edge_;
  bool invalid_ = false;  // rebuild edge_ and the tail at the next Sync
  // The leaf hashes of the last, incomplete tile: leaves [tail_begin_, edge_.size()), so that
  // proofs at the current size need not read them.
  // INVARIANT: tail_begin_ is edge_.size() rounded down to a multiple of 2^kLogNodeMinLevel.
  uint64_t tail_begin_ = 0;
  std::vector<merkle::Hash> tail_;
  std::vector<merkle::NodeWrite> created_;
};

}  // namespace accord::node_internal

#endif  // ACCORD_SRC_NODE_AUDIT_H_
