#include "audit.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <map>

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

// Node hashes read from the store. A failed read yields a zero hash and marks the source, so a
// damaged store gives a clear error instead of a wrong proof.
class StoreNodes final : public merkle::NodeSource {
 public:
  explicit StoreNodes(Store& store) : store_(store) {}
  [[nodiscard]] merkle::Hash Node(int level, uint64_t index) const override {
    auto h = store_.GetLogNode(level, index);
    if (!h) {
      if (!error_) error_ = h.error();
      return merkle::Hash{};
    }
    return *h;
  }
  [[nodiscard]] Status Check() const {
    if (error_) {
      return Fail(Code::kDataLoss,
                  "the log's subtree hashes are missing or damaged: " + error_->message);
    }
    return OkStatus();
  }

 private:
  Store& store_;
  mutable std::optional<Error> error_;
};

// Pass one of a proof: records which subtree hashes it reads. Which ones depends only on the
// index and sizes, never on the hashes, so pass two can fetch them all in one query.
class RecordingNodes final : public merkle::NodeSource {
 public:
  [[nodiscard]] merkle::Hash Node(int level, uint64_t index) const override {
    keys_.emplace_back(level, index);
    return merkle::Hash{};
  }
  [[nodiscard]] const std::vector<std::pair<int32_t, uint64_t>>& keys() const { return keys_; }

 private:
  mutable std::vector<std::pair<int32_t, uint64_t>> keys_;
};

// Pass two: the same reads, in the same order, answered from what was fetched.
class FetchedNodes final : public merkle::NodeSource {
 public:
  explicit FetchedNodes(const std::vector<merkle::Hash>& hashes) : hashes_(hashes) {}
  [[nodiscard]] merkle::Hash Node(int /*level*/, uint64_t /*index*/) const override {
    return next_ < hashes_.size() ? hashes_[next_++] : merkle::Hash{};
  }

 private:
  const std::vector<merkle::Hash>& hashes_;
  mutable size_t next_ = 0;
};

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
  if (size != edge_.size() || invalid_) {
    if (size < edge_.size()) cache_.clear();  // a rolled-back append may have been cached
    invalid_ = false;
    StoreNodes nodes(*store_);
    edge_ = merkle::CompactRange::FromSource(nodes, size);
    ACCORD_RETURN_IF_ERROR(nodes.Check());
  }
  return OkStatus();
}

void AuditLog::Invalidate() {
  edge_ = merkle::CompactRange();
  cache_.clear();
  invalid_ = true;
}

Result<uint64_t> AuditLog::AppendEncoded(std::span<const Bytes> entries) {
  ACCORD_RETURN_IF_ERROR(Sync());
  const uint64_t first = edge_.size();
  const merkle::CompactRange before = edge_;
  created_.clear();
  for (const Bytes& e : entries) {
    edge_.Append(merkle::LeafHash(e), created_);
  }
  std::vector<LogNodeRecord> nodes;
  nodes.reserve(created_.size());
  for (const auto& w : created_) {
    nodes.push_back(LogNodeRecord{w.level, w.index, w.hash});
  }
  if (auto s = store_->AppendLog(first, entries, nodes); !s) {
    edge_ = before;
    return tl::unexpected(s.error());
  }
  return first;
}

template <typename Fn>
Result<std::vector<merkle::Hash>> AuditLog::Batched(Fn&& proof) {
  RecordingNodes recording;
  ACCORD_RETURN_IF_ERROR(proof(recording));
  const auto& keys = recording.keys();
  std::vector<merkle::Hash> found(keys.size());
  std::vector<std::pair<int32_t, uint64_t>> missing;
  std::vector<size_t> slots;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (auto it = cache_.find(keys[i]); it != cache_.end()) {
      found[i] = it->second;
    } else {
      missing.push_back(keys[i]);
      slots.push_back(i);
    }
  }
  auto hashes = store_->GetLogNodes(missing);
  if (!hashes) {
    return Fail(Code::kDataLoss,
                "the log's subtree hashes are missing or damaged: " + hashes.error().message);
  }
  for (size_t i = 0; i < missing.size(); ++i) {
    found[slots[i]] = (*hashes)[i];
    // Complete subtrees never change, so a cached hash stays right; only a rollback of the
    // append that wrote it could remove it, and Sync() clears the cache then.
    if (missing[i].first >= kCachedLevel && cache_.size() < kMaxCached) {
      cache_.emplace(missing[i], (*hashes)[i]);
    }
  }
  FetchedNodes fetched(found);
  return proof(fetched);
}

Result<uint64_t> AuditLog::Append(const AuditEntry& entry) {
  const Bytes encoded = EncodeEntry(entry);
  return AppendEncoded(std::span<const Bytes>(&encoded, 1));
}

Result<uint64_t> AuditLog::Size() {
  ACCORD_RETURN_IF_ERROR(Sync());
  return edge_.size();
}

Result<merkle::Hash> AuditLog::Root(uint64_t size) {
  ACCORD_ASSIGN_OR_RETURN(uint64_t current, Size());
  if (size > current) {
    return Fail(Code::kInvalidArgument,
                fmt::format("the log has {} entries, not {}", current, size));
  }
  if (size == current) return edge_.Root();
  StoreNodes nodes(*store_);
  const merkle::Hash root = merkle::RootHash(nodes, size);
  ACCORD_RETURN_IF_ERROR(nodes.Check());
  return root;
}

Result<std::string> AuditLog::Checkpoint(const note::Signer& signer) {
  ACCORD_ASSIGN_OR_RETURN(uint64_t size, Size());
  const note::Checkpoint c{signer.name(), size, edge_.Root(), {}};
  const note::Signer* signers[] = {&signer};
  return note::Sign(note::CheckpointText(c), signers);
}

Result<std::vector<merkle::Hash>> AuditLog::Inclusion(uint64_t index, uint64_t size) {
  ACCORD_ASSIGN_OR_RETURN(uint64_t current, Size());
  if (size > current) {
    return Fail(Code::kInvalidArgument,
                fmt::format("the log has {} entries, not {}", current, size));
  }
  return Batched(
      [&](const merkle::NodeSource& nodes) { return merkle::InclusionProof(nodes, index, size); });
}

Result<std::vector<merkle::Hash>> AuditLog::Consistency(uint64_t size1, uint64_t size2) {
  ACCORD_ASSIGN_OR_RETURN(uint64_t current, Size());
  if (size2 > current) {
    return Fail(Code::kInvalidArgument,
                fmt::format("the log has {} entries, not {}", current, size2));
  }
  return Batched([&](const merkle::NodeSource& nodes) {
    return merkle::ConsistencyProof(nodes, size1, size2);
  });
}

Result<merkle::Hash> AuditLog::VerifyAll(uint64_t* entries_checked) {
  ACCORD_ASSIGN_OR_RETURN(uint64_t size, store_->LogSize());
  merkle::CompactRange recomputed;
  std::vector<merkle::NodeWrite> created;
  constexpr uint64_t kChunk = 4096;
  for (uint64_t from = 0; from < size; from += kChunk) {
    ACCORD_ASSIGN_OR_RETURN(auto entries,
                            store_->ReadLogEntries(from, std::min(kChunk, size - from)));
    for (const Bytes& e : entries) {
      created.clear();
      recomputed.Append(merkle::LeafHash(e), created);
      for (const auto& w : created) {
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
