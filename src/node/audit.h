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

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
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

// A tile's hashes in store.h's slot order (a tile of level 0 uses the first 16).
using TileHashes = std::array<merkle::Hash, kLogTileHashes>;

// The hashes of a log's tiles (store.h) as its nodes are created, for each level of tiles those of
// its last, incomplete tile; a node that completes a tile hands the tile over for storing.
class TileBuilder {
 public:
  // Records `node`, created by an append in order (CompactRange::Append); if it completes a tile,
  // appends that tile to `completed`.
  void Add(const merkle::NodeWrite& node, std::vector<LogTileRecord>& completed);
  // Sets the hashes of the incomplete tile of `level` from its bottom `bottom` (fewer than 16).
  void Reset(int32_t level, std::span<const merkle::Hash> bottom);
  // A hash in the incomplete tile of `level` (store.h's slot order), or nullptr if the tile
  // holds none there.
  [[nodiscard]] const merkle::Hash* Find(int32_t level, size_t slot) const;
  void Clear() { tiles_.clear(); }

 private:
  std::vector<TileHashes> tiles_;
};

class AuditLog {
 public:
  explicit AuditLog(Store& store) : store_(&store) {}

  // Appends inside the caller's transaction. Returns the entry's index.
  [[nodiscard]] Result<uint64_t> Append(const AuditEntry& entry);
  // Appends many encoded entries at once (one store write). Returns the first index.
  [[nodiscard]] Result<uint64_t> AppendEncoded(std::span<const Bytes> entries);

  // Holds `entry` back: the next use of the log (an append, its size, a root, a checkpoint, a
  // proof, VerifyAll, FlushDeferred) appends it, with the others held, in one store write before
  // doing anything else, so every reader of the log sees it in its place. For a group commit's
  // reads (Node::Group), whose entries are their only writes. Invalidate keeps what is held.
  void Defer(const AuditEntry& entry);
  // Appends the entries held back, inside the caller's transaction. Once it has failed it fails
  // again, with the same error, until EndDeferral: the transaction the entries were for must not
  // commit without them.
  [[nodiscard]] Status FlushDeferred();
  // The transaction the entries held back were for has ended (committed after FlushDeferred, or
  // rolled back): drops them and any failure to append them.
  void EndDeferral();

  // Forgets the in-memory edge and cache; the next use rebuilds them from the store. Called when
  // a transaction that may have appended rolls back.
  void Invalidate();

  [[nodiscard]] Result<uint64_t> Size();
  [[nodiscard]] Result<merkle::Hash> Root(uint64_t size);
  // The log's current size and root, as the checkpoint `origin` would sign.
  [[nodiscard]] Result<note::Checkpoint> Head(const std::string& origin);
  // The checkpoint of the log's current size, signed by `signer`.
  [[nodiscard]] Result<std::string> Checkpoint(const note::Signer& signer);
  // `head` (of Head) as the checkpoint `signer` signs.
  [[nodiscard]] static Result<std::string> Sign(const note::Checkpoint& head,
                                                const note::Signer& signer);
  [[nodiscard]] Result<std::vector<merkle::Hash>> Inclusion(uint64_t index, uint64_t size);
  [[nodiscard]] Result<std::vector<merkle::Hash>> Consistency(uint64_t size1, uint64_t size2);
  // Recomputes every leaf and subtree hash from the entries and compares them with the stored
  // tiles; kDataLoss naming the first mismatch, a missing tile or one past the end. Each of
  // `signed_checkpoints` (this log's, their signatures checked by the caller) must be the
  // entries' own tree at its size: kDataLoss when the entries lead elsewhere, or stop short of
  // it; kDataLoss also when the log shrank during the check, and kUnavailable when the store
  // stays busy (another process) past its busy timeout. Returns the recomputed root.
  [[nodiscard]] Result<merkle::Hash> VerifyAll(
      uint64_t* entries_checked = nullptr,
      std::span<const note::Checkpoint> signed_checkpoints = {});

 private:
  // Appends what Defer held back, then brings the edge in line with the store (SyncEdge).
  Status Sync();
  // Brings the right edge and the incomplete tiles in line with the store: after Invalidate, it
  // rebuilds them from the store; when another process or thread appended, it folds in the new
  // leaf hashes (or rebuilds, for many).
  Status SyncEdge();
  // AppendEncoded without first appending what Defer held back.
  Result<uint64_t> AppendNow(std::span<const Bytes> entries);
  // Runs `compute` (a proof, a root, the right edge) over the tree of a log of `size` entries
  // (the store's current size), stored in tiles (store.h): a first pass records which subtree
  // hashes it reads; those in complete tiles come from the tile cache (levels ≥ 1) or from one
  // query, one tile for four levels, and those in the last, incomplete tile of a level from
  // memory; a second pass computes the result.
  template <typename Fn>
  std::invoke_result_t<Fn&, const merkle::NodeSource&> Fetched(uint64_t size, Fn&& compute);
  // Runs `read` (returning a Result) in one read snapshot of the store: the size and the hashes
  // a proof reads come from one state, and take the database's locks once.
  template <typename Fn>
  std::invoke_result_t<Fn&> InSnapshot(Fn&& read);

  // Tiles above level 0 kept once read: one per 256 entries, so a log of 10 million entries
  // keeps all of them in about 40 MiB, and a proof reads only its tile of leaf hashes.
  static constexpr size_t kMaxCachedTiles = size_t{1} << 16;
  // Sync folds in up to this many entries appended elsewhere; more, and it rebuilds, which reads
  // a few rows per level however many were appended.
  static constexpr uint64_t kMaxCatchUp = 256;
  // One integer per tile (level, index), for the cache.
  static constexpr uint64_t TileKey(int32_t level, uint64_t index) {
    return uint64_t{static_cast<uint32_t>(level)} << 48 | index;
  }

  Store* store_;
  std::unordered_map<uint64_t, TileHashes> upper_;  // levels ≥ 1
  merkle::CompactRange edge_;
  // Rebuild edge_ and pending_ at the next Sync; a new object has yet to read the store.
  bool invalid_ = true;
  // The leaf hash of entry edge_.size() − 1, when known: Sync checks it before folding in
  // entries appended elsewhere.
  std::optional<Digest> last_leaf_;
  // INVARIANT: the incomplete tiles of a log of edge_.size() entries.
  TileBuilder pending_;
  std::vector<merkle::NodeWrite> created_;
  std::vector<Bytes> deferred_;        // Defer
  std::optional<Error> flush_failed_;  // FlushDeferred failed since the last EndDeferral
};

}  // namespace accord::node_internal

#endif  // ACCORD_SRC_NODE_AUDIT_H_
