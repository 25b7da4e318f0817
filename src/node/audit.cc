#include "audit.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cstring>
#include <optional>
#include <span>

#include "accord/json.h"

namespace accord::node_internal {
namespace json = boost::json;
namespace {

// The fields of an entry in their canonical order.
constexpr std::string_view kVersionKey = "v";

struct Field {
  std::string_view key;
  std::string AuditEntry::*member;
};
constexpr Field kFields[] = {
    {"op", &AuditEntry::op},
    {"party", &AuditEntry::party},
    {"decision", &AuditEntry::decision},
    {"reason", &AuditEntry::reason},
    {"subject", &AuditEntry::subject},
    {"object", &AuditEntry::object},
    {"from", &AuditEntry::from},
    {"to", &AuditEntry::to},
    {"agreement", &AuditEntry::agreement},
    {"marking", &AuditEntry::marking},
    {"level", &AuditEntry::level},
    {"version", &AuditEntry::version},
    {"package", &AuditEntry::package},
    {"digest", &AuditEntry::digest},
};

using NodeKey = std::pair<int32_t, uint64_t>;

constexpr auto TileSlot = LogTileSlot;  // store.h

// The tile a subtree hash belongs to, and its slot there.
struct Place {
  int32_t level;  // of the tile
  uint64_t tile;
  int k;       // the node's level within the tile, 0 to 3
  uint64_t j;  // its index among the tile's nodes of that level
};
Place PlaceOf(int level, uint64_t index) {
  const int k = level % kLogTileHeight;
  return Place{level / kLogTileHeight, index >> (kLogTileHeight - k), k,
               index & ((kLogTileWidth >> k) - 1)};
}

// The number of complete tiles of `level` in a log of `size` entries.
uint64_t CompleteTiles(uint64_t size, int32_t level) {
  const int shift = kLogTileHeight * (level + 1);
  return shift >= 64 ? 0 : size >> shift;
}

merkle::Hash HashAt(ByteView tile, size_t slot) {
  merkle::Hash h;
  std::copy_n(tile.begin() + static_cast<ptrdiff_t>(32 * slot), h.size(), h.begin());
  return h;
}

// Node (4L + k, j) of a stored tile.
merkle::Hash TileNode(ByteView tile, int k, uint64_t j) { return HashAt(tile, TileSlot(k, j)); }

// The root of a stored tile: the hash of level 4L + 4 it completes.
merkle::Hash TileRoot(ByteView tile) {
  return merkle::NodeHash(HashAt(tile, TileSlot(3, 0)), HashAt(tile, TileSlot(3, 1)));
}

// Pass one of a proof: records which subtree hashes it reads. Which ones depends only on the
// index and sizes, never on the hashes, so pass two can fetch them all at once.
class RecordingNodes final : public merkle::NodeSource {
 public:
  [[nodiscard]] merkle::Hash Node(int level, uint64_t index) const override {
    keys_.emplace_back(level, index);
    return merkle::Hash{};
  }
  [[nodiscard]] const std::vector<NodeKey>& keys() const { return keys_; }

 private:
  mutable std::vector<NodeKey> keys_;
};

// Pass two: the same reads, in the same order, answered from what was fetched.
class FetchedNodes final : public merkle::NodeSource {
 public:
  FetchedNodes(const std::vector<NodeKey>& keys, const std::vector<merkle::Hash>& hashes)
      : keys_(keys), hashes_(hashes) {}
  [[nodiscard]] merkle::Hash Node(int level, uint64_t index) const override {
    if (next_ < keys_.size() && keys_[next_] == NodeKey(level, index)) return hashes_[next_++];
    out_of_order_ = true;
    return merkle::Hash{};
  }
  // kInternal if pass two did not read what pass one did.
  [[nodiscard]] Status Check() const {
    if (out_of_order_ || next_ != keys_.size()) {
      return Fail(Code::kInternal, "the log's tree was read differently in two passes");
    }
    return OkStatus();
  }

 private:
  const std::vector<NodeKey>& keys_;
  const std::vector<merkle::Hash>& hashes_;
  mutable size_t next_ = 0;
  mutable bool out_of_order_ = false;
};

// The store could not read (kUnavailable: another process held it past the busy timeout;
// kInternal: an I/O error or no memory), which is no sign of damage.
bool CouldNotRead(const Error& e) {
  return e.code == Code::kUnavailable || e.code == Code::kInternal;
}

// A read of `store`'s log that failed: the data's fault (kDataLoss, which the store is told of:
// Store::CheckIntact), unless the store could not read.
tl::unexpected<Error> Damaged(Store& store, std::string_view what, const Error& e) {
  if (CouldNotRead(e)) return tl::unexpected(e);
  auto damaged =
      OwnStateDamaged(fmt::format("the log's {} are missing or damaged: {}", what, e.message));
  store.NoteDamage(damaged.value());
  return damaged;
}

}  // namespace

Bytes EncodeEntry(const AuditEntry& entry) {
  // The tree in one arena: every operation logs.
  std::array<unsigned char, 2048> first_block;
  json::monotonic_resource arena(first_block.data(), first_block.size());
  json::object o(&arena);
  o.reserve(16);
  o[kVersionKey] = 1;
  o["at"] = FormatInstant(entry.at);
  for (const Field& f : kFields) {
    const std::string& value = entry.*f.member;
    if (!value.empty()) o[f.key] = value;
  }
  const std::string text = json::serialize(o);
  return Bytes(text.begin(), text.end());
}

Result<AuditEntry> DecodeEntry(ByteView bytes) {
  // An entry naming a field twice is not one of ours: EncodeEntry writes each field once.
  auto v = ParseJson(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  const json::object* o = v ? v->if_object() : nullptr;
  if (o == nullptr || !o->contains(kVersionKey) || !o->at(kVersionKey).is_int64() ||
      o->at(kVersionKey).get_int64() != 1 || !o->contains("at") || !o->at("at").is_string()) {
    return Fail(Code::kDataLoss, "not an accord log entry (version 1)");
  }
  AuditEntry e;
  auto at = ParseInstant(std::string_view(o->at("at").get_string()));
  if (!at) return Fail(Code::kDataLoss, "log entry: bad instant");
  e.at = *at;
  for (const Field& f : kFields) {
    if (const json::value* value = o->if_contains(f.key)) {
      if (!value->is_string()) return Fail(Code::kDataLoss, "log entry: a field is not a string");
      e.*f.member = std::string(value->get_string());
    }
  }
  return e;
}

std::string LogOrigin(std::string_view party) { return fmt::format("accord/{}", party); }

void TileBuilder::Add(const merkle::NodeWrite& node, std::vector<LogTileRecord>& completed) {
  const Place p = PlaceOf(node.level, node.index);
  if (p.level >= kLogTileMaxLevel) return;  // level 64: a log of 2^64 entries
  if (tiles_.size() <= static_cast<size_t>(p.level)) tiles_.resize(p.level + 1);
  TileHashes& tile = tiles_[p.level];
  tile[TileSlot(p.k, p.j)] = node.hash;
  if (p.k == kLogTileHeight - 1 && p.j == 1) {  // the tile's last node: it is complete
    LogTileRecord& done = completed.emplace_back();
    done.level = p.level;
    done.index = p.tile;
    const auto* bytes = reinterpret_cast<const uint8_t*>(tile.data());
    done.hashes.assign(bytes, bytes + kLogTileBytes);
  }
}

void TileBuilder::Reset(int32_t level, std::span<const merkle::Hash> bottom) {
  if (tiles_.size() <= static_cast<size_t>(level)) tiles_.resize(level + 1);
  TileHashes& tile = tiles_[level];
  std::copy(bottom.begin(), bottom.end(), tile.begin());
  for (int k = 1; k < kLogTileHeight; ++k) {
    for (uint64_t j = 0; j < (bottom.size() >> k); ++j) {
      tile[TileSlot(k, j)] =
          merkle::NodeHash(tile[TileSlot(k - 1, 2 * j)], tile[TileSlot(k - 1, 2 * j + 1)]);
    }
  }
}

const merkle::Hash* TileBuilder::Find(int32_t level, size_t slot) const {
  if (level < 0 || static_cast<size_t>(level) >= tiles_.size()) return nullptr;
  return &tiles_[level][slot];
}

void AuditLog::Defer(const AuditEntry& entry) { deferred_.push_back(EncodeEntry(entry)); }

Status AuditLog::FlushDeferred() {
  if (flush_failed_) return tl::unexpected(*flush_failed_);
  if (deferred_.empty()) return OkStatus();
  // Failed until it succeeds: should the append throw (an allocation), the entries are not lost
  // silently and the transaction they are for cannot commit.
  flush_failed_ = Error{Code::kInternal, "the log entries held back were not appended"};
  if (auto appended = AppendNow(deferred_); !appended) {
    flush_failed_ = appended.error();
    return tl::unexpected(std::move(appended).error());
  }
  deferred_.clear();
  flush_failed_.reset();
  return OkStatus();
}

void AuditLog::EndDeferral() {
  deferred_.clear();
  flush_failed_.reset();
}

Status AuditLog::Sync() {
  ACCORD_RETURN_IF_ERROR(FlushDeferred());
  return SyncEdge();
}

Status AuditLog::SyncEdge() {
  ACCORD_ASSIGN_OR_RETURN(uint64_t size, store_->LogSize());
  if (size == edge_.size() && !invalid_) return OkStatus();
  bool diverged = false;  // the store's entries are not the ones this object holds
  if (!invalid_ && last_leaf_ && size > edge_.size() && size - edge_.size() <= kMaxCatchUp) {
    // Another connection appended a few entries after the ones this object holds: fold their
    // leaf hashes in as AppendEncoded does, without writing (the other connection wrote their
    // tiles). The entries held are the store's if the last of them still is: a rollback of this
    // object's own appends should have invalidated it, and this checks it did.
    auto leaves = store_->ReadLogLeafHashes(edge_.size() - 1, size - edge_.size() + 1);
    if (leaves && leaves->front() == *last_leaf_) {
      std::vector<LogTileRecord> already_stored;
      for (size_t i = 1; i < leaves->size(); ++i) {
        created_.clear();
        edge_.Append((*leaves)[i], created_);
        for (const merkle::NodeWrite& w : created_) pending_.Add(w, already_stored);
      }
      last_leaf_ = leaves->back();
      return OkStatus();
    }
    // Otherwise rebuild, which also reports what is missing.
    diverged = leaves.has_value();
  }
  // A rolled-back append, or entries that are no longer these, may have had tiles cached.
  if (size < edge_.size() || diverged) upper_.clear();
  // Start from nothing, so that a failure here leaves a state the next call syncs again.
  invalid_ = true;
  last_leaf_.reset();
  edge_ = merkle::CompactRange();
  pending_.Clear();
  std::optional<Digest> last_leaf;
  // The bottom of the incomplete tile of level L: the hashes of level 4L past its complete
  // tiles, each a leaf (level 0) or the root of a complete tile of level L − 1.
  for (int32_t level = 0; level < kLogTileMaxLevel; ++level) {
    const uint64_t first = CompleteTiles(size, level) * kLogTileWidth;
    const uint64_t nodes = kLogTileHeight * level >= 64 ? 0 : size >> (kLogTileHeight * level);
    if (nodes == 0) break;
    std::vector<merkle::Hash> bottom;
    if (level == 0) {
      auto leaves = store_->ReadLogLeafHashes(first, nodes - first);
      if (!leaves) return Damaged(*store_, "leaf hashes", leaves.error());
      if (!leaves->empty()) last_leaf = leaves->back();
      bottom = std::move(*leaves);
    } else {
      std::vector<NodeKey> keys;
      for (uint64_t t = first; t < nodes; ++t) keys.emplace_back(level - 1, t);
      auto tiles = store_->ReadLogTiles(keys);
      if (!tiles) return Damaged(*store_, "tiles", tiles.error());
      for (const Bytes& tile : *tiles) bottom.push_back(TileRoot(tile));  // 960 bytes each
    }
    pending_.Reset(level, bottom);
  }
  // The right edge lies in the incomplete tiles: no read.
  auto edge =
      Fetched(size, [size](const merkle::NodeSource& nodes) -> Result<merkle::CompactRange> {
        return merkle::CompactRange::FromSource(nodes, size);
      });
  if (!edge) return tl::unexpected(edge.error());
  edge_ = std::move(*edge);
  last_leaf_ = last_leaf;
  invalid_ = false;
  return OkStatus();
}

void AuditLog::Invalidate() {
  upper_.clear();
  edge_ = merkle::CompactRange();
  pending_.Clear();
  last_leaf_.reset();
  invalid_ = true;
}

Result<uint64_t> AuditLog::AppendEncoded(std::span<const Bytes> entries) {
  ACCORD_RETURN_IF_ERROR(FlushDeferred());
  return AppendNow(entries);
}

Result<uint64_t> AuditLog::AppendNow(std::span<const Bytes> entries) {
  ACCORD_RETURN_IF_ERROR(SyncEdge());
  const uint64_t first = edge_.size();
  std::vector<Digest> leaves;
  leaves.reserve(entries.size());
  std::vector<LogTileRecord> tiles;
  tiles.reserve(entries.size() / kLogTileWidth + 2);
  for (const Bytes& e : entries) {
    leaves.push_back(merkle::LeafHash(e));
    created_.clear();
    edge_.Append(leaves.back(), created_);
    for (const merkle::NodeWrite& w : created_) pending_.Add(w, tiles);
  }
  if (auto s = store_->AppendLog(first, entries, leaves, tiles); !s) {
    Invalidate();
    return tl::unexpected(s.error());
  }
  if (!leaves.empty()) last_leaf_ = leaves.back();
  return first;
}

template <typename Fn>
std::invoke_result_t<Fn&, const merkle::NodeSource&> AuditLog::Fetched(uint64_t size,
                                                                       Fn&& compute) {
  RecordingNodes recording;
  ACCORD_RETURN_IF_ERROR(compute(recording));
  const std::vector<NodeKey>& keys = recording.keys();
  std::vector<merkle::Hash> found(keys.size());
  std::vector<NodeKey> stored;  // the complete tiles to read, each once
  std::vector<size_t> tile_of(keys.size(), SIZE_MAX);
  for (size_t i = 0; i < keys.size(); ++i) {
    const Place p = PlaceOf(keys[i].first, keys[i].second);
    if (p.tile < CompleteTiles(size, p.level)) {
      if (p.level > 0) {
        if (auto it = upper_.find(TileKey(p.level, p.tile)); it != upper_.end()) {
          found[i] = it->second[TileSlot(p.k, p.j)];
          continue;
        }
      }
      const NodeKey key(p.level, p.tile);
      auto it = std::find(stored.begin(), stored.end(), key);
      tile_of[i] = static_cast<size_t>(it - stored.begin());
      if (it == stored.end()) stored.push_back(key);
      continue;
    }
    const merkle::Hash* hash = pending_.Find(p.level, TileSlot(p.k, p.j));
    if (hash == nullptr || p.tile != CompleteTiles(size, p.level)) {
      return Fail(Code::kInternal, fmt::format("the log's tree has no subtree ({}, {}) at size {}",
                                               keys[i].first, keys[i].second, size));
    }
    found[i] = *hash;
  }
  if (!stored.empty()) {
    auto tiles = store_->ReadLogTiles(stored);
    if (!tiles) return Damaged(*store_, "tiles", tiles.error());
    for (size_t t = 0; t < stored.size(); ++t) {
      const auto [level, index] = stored[t];
      const Bytes& tile = (*tiles)[t];  // kLogTileBytes: the store checks
      // Complete tiles never change; only a rollback of the append that wrote one could remove
      // it, and Invalidate() clears the cache then.
      if (level > 0 && upper_.size() < kMaxCachedTiles) {
        TileHashes& cached = upper_[TileKey(level, index)];
        std::memcpy(cached.data(), tile.data(), tile.size());
      }
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      if (tile_of[i] == SIZE_MAX) continue;
      const Place p = PlaceOf(keys[i].first, keys[i].second);
      found[i] = TileNode((*tiles)[tile_of[i]], p.k, p.j);
    }
  }
  FetchedNodes fetched(keys, found);
  auto result = compute(fetched);
  ACCORD_RETURN_IF_ERROR(fetched.Check());
  return result;
}

Result<uint64_t> AuditLog::Append(const AuditEntry& entry) {
  const Bytes encoded = EncodeEntry(entry);
  return AppendEncoded(std::span<const Bytes>(&encoded, 1));
}

Result<uint64_t> AuditLog::Size() {
  ACCORD_RETURN_IF_ERROR(Sync());
  return edge_.size();
}

template <typename Fn>
std::invoke_result_t<Fn&> AuditLog::InSnapshot(Fn&& read) {
  std::optional<std::invoke_result_t<Fn&>> out;
  ACCORD_RETURN_IF_ERROR(store_->ReadSnapshot([&]() -> Status {
    out.emplace(read());
    if (!out->has_value()) return tl::unexpected(out->error());
    return OkStatus();
  }));
  return std::move(*out);
}

Result<merkle::Hash> AuditLog::Root(uint64_t size) {
  return InSnapshot([&]() -> Result<merkle::Hash> {
    ACCORD_ASSIGN_OR_RETURN(uint64_t current, Size());
    if (size > current) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("the log has {} entries, not {}", current, size));
    }
    if (size == current) return edge_.Root();
    return Fetched(current, [size](const merkle::NodeSource& nodes) -> Result<merkle::Hash> {
      return merkle::RootHash(nodes, size);
    });
  });
}

Result<note::Checkpoint> AuditLog::Head(const std::string& origin) {
  ACCORD_ASSIGN_OR_RETURN(uint64_t size, Size());
  return note::Checkpoint{origin, size, edge_.Root(), {}};
}

Result<std::string> AuditLog::Checkpoint(const note::Signer& signer) {
  ACCORD_ASSIGN_OR_RETURN(const note::Checkpoint head, Head(signer.name()));
  return Sign(head, signer);
}

Result<std::string> AuditLog::Sign(const note::Checkpoint& head, const note::Signer& signer) {
  const note::Signer* signers[] = {&signer};
  return note::Sign(note::CheckpointText(head), signers);
}

Result<std::vector<merkle::Hash>> AuditLog::Inclusion(uint64_t index, uint64_t size) {
  return InSnapshot([&]() -> Result<std::vector<merkle::Hash>> {
    ACCORD_ASSIGN_OR_RETURN(uint64_t current, Size());
    if (size > current) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("the log has {} entries, not {}", current, size));
    }
    return Fetched(current, [&](const merkle::NodeSource& nodes) {
      return merkle::InclusionProof(nodes, index, size);
    });
  });
}

Result<std::vector<merkle::Hash>> AuditLog::Consistency(uint64_t size1, uint64_t size2) {
  return InSnapshot([&]() -> Result<std::vector<merkle::Hash>> {
    ACCORD_ASSIGN_OR_RETURN(uint64_t current, Size());
    if (size2 > current) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("the log has {} entries, not {}", current, size2));
    }
    return Fetched(current, [&](const merkle::NodeSource& nodes) {
      return merkle::ConsistencyProof(nodes, size1, size2);
    });
  });
}

namespace {

// The first hash where a recomputed tile and the stored one differ, named as `log verify`
// reports it.
std::string TileMismatch(const LogTileRecord& want, ByteView have) {
  const size_t slots = want.hashes.size() / 32;
  for (size_t slot = 0; slot < slots; ++slot) {
    if (!std::equal(want.hashes.begin() + 32 * slot, want.hashes.begin() + 32 * (slot + 1),
                    have.begin() + 32 * slot)) {
      int k = 0;
      while (k + 1 < kLogTileHeight && slot >= TileSlot(k + 1, 0)) ++k;
      const int level = kLogTileHeight * want.level + k;
      const uint64_t index = (want.index << (kLogTileHeight - k)) + (slot - TileSlot(k, 0));
      const uint64_t last_entry = ((index + 1) << level) - 1;
      if (level == 0) {
        return fmt::format("entry {}: the stored leaf hash does not match the entries", last_entry);
      }
      return fmt::format(
          "entry {}: the stored hash of subtree (level {}, index {}) does not match the entries",
          last_entry, level, index);
    }
  }
  return "";
}

}  // namespace

Result<merkle::Hash> AuditLog::VerifyAll(uint64_t* entries_checked,
                                         std::span<const note::Checkpoint> signed_checkpoints) {
  ACCORD_RETURN_IF_ERROR(FlushDeferred());
  ACCORD_ASSIGN_OR_RETURN(uint64_t size, store_->LogSize());
  // The checkpoints by size: each is compared with the recomputed tree when it reaches that size.
  std::vector<const note::Checkpoint*> anchors;
  for (const note::Checkpoint& c : signed_checkpoints) anchors.push_back(&c);
  std::sort(anchors.begin(), anchors.end(),
            [](const note::Checkpoint* a, const note::Checkpoint* b) { return a->size < b->size; });
  if (!anchors.empty() && anchors.back()->size > size) {
    return Fail(Code::kDataLoss,
                fmt::format("the log holds {} entries, fewer than the {} of a checkpoint this "
                            "node signed: entries were removed",
                            size, anchors.back()->size));
  }
  size_t next_anchor = 0;
  merkle::CompactRange recomputed;
  const auto check_anchors = [&]() -> Status {
    for (; next_anchor < anchors.size() && anchors[next_anchor]->size == recomputed.size();
         ++next_anchor) {
      if (recomputed.Root() != anchors[next_anchor]->root) {
        return Fail(Code::kDataLoss,
                    fmt::format("the entries do not lead to the root of the checkpoint of {} "
                                "entries this node signed: one of those {} was changed, removed "
                                "or moved since",
                                recomputed.size(), recomputed.size()));
      }
    }
    return OkStatus();
  };
  ACCORD_RETURN_IF_ERROR(check_anchors());  // of the empty tree
  TileBuilder builder;
  std::vector<merkle::NodeWrite> created;
  std::vector<LogTileRecord> completed;
  const auto check = [&]() -> Status {
    std::vector<NodeKey> keys;
    keys.reserve(completed.size());
    for (const LogTileRecord& t : completed) keys.emplace_back(t.level, t.index);
    const auto stored = store_->ReadLogTiles(keys);
    // A store that could not read (busy, I/O) is no sign of damage: said as it is.
    if (!stored && CouldNotRead(stored.error())) return tl::unexpected(stored.error());
    for (size_t i = 0; i < completed.size(); ++i) {
      const LogTileRecord& t = completed[i];
      const uint64_t last_entry = ((t.index + 1) << (kLogTileHeight * (t.level + 1))) - 1;
      Result<std::vector<Bytes>> one;
      if (!stored) {  // the batch failed: read each alone, to name the one missing or damaged
        one = store_->ReadLogTiles(std::span(keys).subspan(i, 1));
        if (!one && CouldNotRead(one.error())) return tl::unexpected(one.error());
        if (!one || one->size() != 1) {
          return Fail(Code::kDataLoss, fmt::format("entry {}: the stored tile (level {}, index {}) "
                                                   "is missing or damaged: {}",
                                                   last_entry, t.level, t.index,
                                                   one ? "not found" : one.error().message));
        }
      }
      const Bytes& have = stored ? (*stored)[i] : one->front();
      if (std::string mismatch = TileMismatch(t, have); !mismatch.empty()) {
        return Fail(Code::kDataLoss, mismatch);
      }
    }
    completed.clear();
    return OkStatus();
  };
  constexpr uint64_t kChunk = 4096;
  for (uint64_t from = 0; from < size; from += kChunk) {
    const uint64_t count = std::min(kChunk, size - from);
    ACCORD_ASSIGN_OR_RETURN(auto entries, store_->ReadLogEntries(from, count));
    ACCORD_ASSIGN_OR_RETURN(auto leaves, store_->ReadLogLeafHashes(from, count));
    for (size_t i = 0; i < entries.size(); ++i) {
      const merkle::Hash leaf = merkle::LeafHash(entries[i]);
      if (leaf != leaves[i]) {
        return Fail(
            Code::kDataLoss,
            fmt::format("entry {}: the stored leaf hash does not match the entries", from + i));
      }
      created.clear();
      recomputed.Append(leaf, created);
      for (const merkle::NodeWrite& w : created) builder.Add(w, completed);
      ACCORD_RETURN_IF_ERROR(check_anchors());
    }
    ACCORD_RETURN_IF_ERROR(check());
  }
  if (recomputed.size() != size) {
    return Fail(Code::kDataLoss,
                fmt::format("the log claims {} entries but holds {}", size, recomputed.size()));
  }
  // A truncated log that kept its tiles. Looked for past the log's size as it is now, in one
  // snapshot: a node serving this home appends meanwhile, and a tile it completed since the
  // verification began is not past the end.
  ACCORD_RETURN_IF_ERROR(store_->ReadSnapshot([&]() -> Status {
    ACCORD_ASSIGN_OR_RETURN(const uint64_t now, store_->LogSize());
    if (now < size) {
      return Fail(Code::kDataLoss,
                  fmt::format("the log held {} entries and now holds {}", size, now));
    }
    for (int32_t level = 0; level < kLogTileMaxLevel; ++level) {
      const NodeKey next(level, CompleteTiles(now, level));
      if (store_->ReadLogTiles(std::span(&next, 1))) {
        return Fail(Code::kDataLoss,
                    fmt::format("the log holds tile (level {}, index {}) past its {} entries",
                                level, next.second, now));
      }
    }
    return OkStatus();
  }));
  if (entries_checked != nullptr) *entries_checked = size;
  return recomputed.Root();
}

}  // namespace accord::node_internal
