// IdTable: id → dense index for the decision path (party and agreement ids).
//
// Ids are short ASCII strings (party ids are at most 16 bytes), so the first 16 bytes are packed
// into two words and compared as integers; a longer id is also compared in full. Open addressing
// with linear probing over a power-of-two table at most half full. Find() is noexcept and does not
// allocate.
//
// Thread safety: immutable after Build; Find may be called concurrently.
#ifndef ACCORD_SRC_POLICY_ID_TABLE_H_
#define ACCORD_SRC_POLICY_ID_TABLE_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace accord {

class IdTable {
 public:
  // Indexes `ids` by position. Ids must be distinct (ValidatePolicy guarantees it).
  void Build(const std::vector<std::string>& ids) {
    ids_ = ids;
    size_t capacity = 16;
    while (capacity < ids.size() * 2) capacity *= 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (size_t i = 0; i < ids.size(); ++i) {
      const Key k = KeyOf(ids[i]);
      size_t s = k.hash & mask_;
      while (slots_[s].index >= 0) s = (s + 1) & mask_;
      slots_[s] = Slot{k.a, k.b, static_cast<uint32_t>(ids[i].size()), static_cast<int32_t>(i)};
    }
  }

  // The index of `id`, or -1.
  [[nodiscard]] int32_t Find(std::string_view id) const noexcept {
    const Key k = KeyOf(id);
    for (size_t s = k.hash & mask_;; s = (s + 1) & mask_) {
      const Slot& slot = slots_[s];
      if (slot.index < 0) return -1;
      if (slot.a == k.a && slot.b == k.b && slot.size == id.size() &&
          (id.size() <= 16 || ids_[slot.index] == id)) {
        return slot.index;
      }
    }
  }

 private:
  struct Key {
    uint64_t a = 0, b = 0, hash = 0;
  };
  struct Slot {
    uint64_t a = 0, b = 0;
    uint32_t size = 0;
    int32_t index = -1;
  };

  static Key KeyOf(std::string_view id) noexcept {
    Key k;
    // Packs the first 16 bytes little-endian without a buffer; ids are a few bytes long.
    const size_t n = id.size() < 16 ? id.size() : 16;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t byte = static_cast<unsigned char>(id[i]);
      if (i < 8) {
        k.a |= byte << (8 * i);
      } else {
        k.b |= byte << (8 * (i - 8));
      }
    }
    uint64_t h = (k.a * 0x9E3779B97F4A7C15ull) ^ (k.b * 0xC2B2AE3D27D4EB4Full) ^ id.size();
    for (size_t i = 16; i < id.size(); ++i) {
      h = (h ^ static_cast<unsigned char>(id[i])) * 0x100000001B3ull;
    }
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    k.hash = h ^ (h >> 32);
    return k;
  }

  std::vector<std::string> ids_;
  std::vector<Slot> slots_ = std::vector<Slot>(1);  // never empty, so Find terminates
  size_t mask_ = 0;
};

}  // namespace accord

#endif  // ACCORD_SRC_POLICY_ID_TABLE_H_
