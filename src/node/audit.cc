#include "audit.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <optional>
#include <span>

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

// The leaves of a tile: the levels below kLogNodeMinLevel are recomputed from them.
constexpr uint64_t kTileWidth = uint64_t{1} << kLogNodeMinLevel;

using NodeKey = std::pair<int32_t, uint64_t>;

// The root of the perfect subtree over `leaves`, a power of two of them below kTileWidth.
merkle::Hash FoldLeaves(std::span<const merkle::Hash> leaves) {
  if (leaves.size() == 1) return leaves[0];
  std::array<merkle::Hash, kTileWidth / 2> row;
  size_t n = leaves.size() / 2;
  for (size_t i = 0; i < n; ++i) row[i] = merkle::NodeHash(leaves[2 * i], leaves[2 * i + 1]);
  for (; n > 1; n /= 2) {
    for (size_t i = 0; i < n / 2; ++i) row[i] = merkle::NodeHash(row[2 * i], row[2 * i + 1]);
  }
  return row[0];
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

// Leaf hashes [begin, end) of one tile, read in one range.
struct LeafRun {
  uint64_t begin = 0;
  uint64_t end = 0;
  std::vector<merkle::Hash> hashes;
};

tl::unexpected<Error> Damaged(std::string_view what, const Error& e) {
  return Fail(Code::kDataLoss,
              fmt::format("the log's {} are missing or damaged: {}", what, e.message));
}

}  // namespace

Bytes EncodeEntry(const AuditEntry& entry) {
  json::object o;
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
  boost::system::error_code ec;
  json::value v =
      json::parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), ec);
  const json::object* o = ec ? nullptr : v.if_object();
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

Status AuditLog::Sync() {
  ACCORD_ASSIGN_OR_RETURN(uint64_t size, store_->LogSize());
  if (size == edge_.size() && !invalid_) return OkStatus();
  invalid_ = false;
  if (size < edge_.size()) cache_.clear();  // a rolled-back append may have been cached
  // Start from nothing, so that a failure here leaves a state the next call syncs again.
  edge_ = merkle::CompactRange();
  tail_begin_ = 0;
  tail_.clear();
  const uint64_t tail_begin = size - size % kTileWidth;
  auto tail = store_->ReadLogLeafHashes(tail_begin, size - tail_begin);
  if (!tail) return Damaged("leaf hashes", tail.error());
  // The edge's nodes below kLogNodeMinLevel are all in the tail, now known.
  tail_begin_ = tail_begin;
  tail_ = std::move(*tail);
  const auto edge_of = [size](const merkle::NodeSource& nodes) -> Result<merkle::CompactRange> {
    return merkle::CompactRange::FromSource(nodes, size);
  };
  auto edge = Fetched(edge_of);
  if (!edge) {
    tail_begin_ = 0;
    tail_.clear();
    return tl::unexpected(edge.error());
  }
  edge_ = std::move(*edge);
  return OkStatus();
}

void AuditLog::Invalidate() {
  edge_ = merkle::CompactRange();
  tail_begin_ = 0;
  tail_.clear();
  cache_.clear();
  invalid_ = true;
}

Result<uint64_t> AuditLog::AppendEncoded(std::span<const Bytes> entries) {
  ACCORD_RETURN_IF_ERROR(Sync());
  const uint64_t first = edge_.size();
  const merkle::CompactRange before = edge_;
  created_.clear();
  std::vector<Digest> leaves;
  leaves.reserve(entries.size());
  for (const Bytes& e : entries) {
    leaves.push_back(merkle::LeafHash(e));
    edge_.Append(leaves.back(), created_);
  }
  // Levels below kLogNodeMinLevel are not stored: the leaf hashes go into the entries' rows.
  std::vector<LogNodeRecord> nodes;
  nodes.reserve(created_.size() / kTileWidth + 1);
  for (const auto& w : created_) {
    if (w.level >= kLogNodeMinLevel) nodes.push_back(LogNodeRecord{w.level, w.index, w.hash});
  }
  if (auto s = store_->AppendLog(first, entries, leaves, nodes); !s) {
    edge_ = before;
    return tl::unexpected(s.error());
  }
  const uint64_t size = edge_.size();
  const uint64_t tail_begin = size - size % kTileWidth;
  if (tail_begin == tail_begin_) {
    tail_.insert(tail_.end(), leaves.begin(), leaves.end());
  } else {
    // The tile moved on: its leaves are all among the new ones (tail_begin > first).
    tail_begin_ = tail_begin;
    tail_.assign(leaves.end() - static_cast<ptrdiff_t>(size - tail_begin), leaves.end());
  }
  return first;
}

template <typename Fn>
std::invoke_result_t<Fn&, const merkle::NodeSource&> AuditLog::Fetched(Fn&& compute) {
  RecordingNodes recording;
  ACCORD_RETURN_IF_ERROR(compute(recording));
  const std::vector<NodeKey>& keys = recording.keys();
  std::vector<merkle::Hash> found(keys.size());
  std::vector<NodeKey> missing;  // stored levels not in the cache
  std::vector<size_t> slots;
  std::vector<LeafRun> runs;  // at most one per tile
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto [level, index] = keys[i];
    if (level >= kLogNodeMinLevel) {
      if (auto it = cache_.find(keys[i]); it != cache_.end()) {
        found[i] = it->second;
      } else {
        missing.push_back(keys[i]);
        slots.push_back(i);
      }
      continue;
    }
    const uint64_t begin = index << level;
    const uint64_t end = begin + (uint64_t{1} << level);
    if (begin >= tail_begin_ && end <= tail_begin_ + tail_.size()) continue;
    auto run = std::find_if(runs.begin(), runs.end(), [&](const LeafRun& r) {
      return r.begin / kTileWidth == begin / kTileWidth;
    });
    if (run == runs.end()) {
      runs.push_back(LeafRun{begin, end, {}});
    } else {
      run->begin = std::min(run->begin, begin);
      run->end = std::max(run->end, end);
    }
  }
  if (!missing.empty()) {
    auto hashes = store_->GetLogNodes(missing);
    if (!hashes) return Damaged("subtree hashes", hashes.error());
    for (size_t i = 0; i < missing.size(); ++i) {
      found[slots[i]] = (*hashes)[i];
      // Complete subtrees never change, so a cached hash stays right; only a rollback of the
      // append that wrote it could remove it, and Sync() clears the cache then.
      if (cache_.size() < kMaxCached) cache_.emplace(missing[i], (*hashes)[i]);
    }
  }
  for (LeafRun& run : runs) {
    auto hashes = store_->ReadLogLeafHashes(run.begin, run.end - run.begin);
    if (!hashes) return Damaged("leaf hashes", hashes.error());
    run.hashes = std::move(*hashes);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto [level, index] = keys[i];
    if (level >= kLogNodeMinLevel) continue;
    const uint64_t begin = index << level;
    const size_t width = size_t{1} << level;
    std::span<const merkle::Hash> leaves;
    if (begin >= tail_begin_ && begin + width <= tail_begin_ + tail_.size()) {
      leaves = std::span(tail_).subspan(begin - tail_begin_, width);
    } else {
      const auto run = std::find_if(runs.begin(), runs.end(), [&](const LeafRun& r) {
        return r.begin <= begin && begin + width <= r.end;
      });
      leaves = std::span(run->hashes).subspan(begin - run->begin, width);
    }
    found[i] = FoldLeaves(leaves);
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
    return Fetched([size](const merkle::NodeSource& nodes) -> Result<merkle::Hash> {
      return merkle::RootHash(nodes, size);
    });
  });
}

Result<std::string> AuditLog::Checkpoint(const note::Signer& signer) {
  ACCORD_ASSIGN_OR_RETURN(uint64_t size, Size());
  const note::Checkpoint c{signer.name(), size, edge_.Root(), {}};
  const note::Signer* signers[] = {&signer};
  return note::Sign(note::CheckpointText(c), signers);
}

Result<std::vector<merkle::Hash>> AuditLog::Inclusion(uint64_t index, uint64_t size) {
  return InSnapshot([&]() -> Result<std::vector<merkle::Hash>> {
    ACCORD_ASSIGN_OR_RETURN(uint64_t current, Size());
    if (size > current) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("the log has {} entries, not {}", current, size));
    }
    return Fetched([&](const merkle::NodeSource& nodes) {
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
    return Fetched([&](const merkle::NodeSource& nodes) {
      return merkle::ConsistencyProof(nodes, size1, size2);
    });
  });
}

Result<merkle::Hash> AuditLog::VerifyAll(uint64_t* entries_checked) {
  ACCORD_ASSIGN_OR_RETURN(uint64_t size, store_->LogSize());
  merkle::CompactRange recomputed;
  std::vector<merkle::NodeWrite> created;
  constexpr uint64_t kChunk = 4096;
  for (uint64_t from = 0; from < size; from += kChunk) {
    const uint64_t count = std::min(kChunk, size - from);
    ACCORD_ASSIGN_OR_RETURN(auto entries, store_->ReadLogEntries(from, count));
    ACCORD_ASSIGN_OR_RETURN(auto leaves, store_->ReadLogLeafHashes(from, count));
    for (size_t i = 0; i < entries.size(); ++i) {
      const merkle::Hash leaf = merkle::LeafHash(entries[i]);
      if (leaf != leaves[i]) {
        return Fail(Code::kDataLoss,
                    fmt::format("entry {}: the stored leaf hash does not match the entries",
                                recomputed.size()));
      }
      created.clear();
      recomputed.Append(leaf, created);
      for (const auto& w : created) {
        if (w.level < kLogNodeMinLevel) continue;  // not stored: recomputed from the leaves
        auto stored = store_->GetLogNode(w.level, w.index);
        if (!stored || *stored != w.hash) {
          return Fail(Code::kDataLoss,
                      fmt::format("entry {}: the stored hash of subtree (level {}, index {}) "
                                  "does not match the entries",
                                  recomputed.size() - 1, w.level, w.index));
        }
      }
    }
  }
  if (recomputed.size() != size) {
    return Fail(Code::kDataLoss,
                fmt::format("the log claims {} entries but holds {}", size, recomputed.size()));
  }
  if (entries_checked != nullptr) *entries_checked = size;
  return recomputed.Root();
}

}  // namespace accord::node_internal
