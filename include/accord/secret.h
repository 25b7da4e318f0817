// accord/secret.h — bytes that must never outlive their use: keys, passphrases, plaintext.
//
// `SecretBytes` owns a buffer whose memory is wiped (OPENSSL_cleanse) whenever it is released:
// on destruction, on reallocation and on move-assignment over an old value. A key-sized one lives
// on OpenSSL's locked secure heap once HardenProcess has set it up (SecretAllocator). It is
// move-only, so a secret is never copied by accident; `Copy()` is the explicit way. Reaching the
// raw bytes takes a `SecretAccess` token from `InsecureSecretAccess()`, so every place that touches
// key material is greppable.
//
// Thread safety: a plain value; const methods are safe to call concurrently.
#ifndef ACCORD_SECRET_H_
#define ACCORD_SECRET_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace accord {

// Overwrites `size` bytes at `data` in a way the compiler cannot elide.
void SecureWipe(void* data, size_t size);

// Overwrites the stack below the caller's frame, 32 KiB deep: where a library that copied a
// secret through a local array left it (Boost.JSON's parser copies a string with an escape in
// it through a 4 KiB one). Called from the frame that made the library call, once it returned.
void WipeStackBelow();

// An allocator that wipes memory before giving it back.
template <typename T>
struct WipingAllocator {
  using value_type = T;
  WipingAllocator() = default;
  template <typename U>
  explicit WipingAllocator(const WipingAllocator<U>&) {}
  T* allocate(size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, size_t n) {
    SecureWipe(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
  friend bool operator==(const WipingAllocator&, const WipingAllocator&) { return true; }
};

// Blocks on OpenSSL's secure heap (accord/harden.h), for key-sized secrets: `SecureAllocate`
// returns nullptr when the heap is not set up or half of it is in use (the other half is kept
// for OpenSSL's keys and its random generator's seeds); `SecureFree` wipes and frees a block that
// came from it and returns true, or returns false for any other block.
[[nodiscard]] void* SecureAllocate(size_t size);
bool SecureFree(void* data, size_t size);

// An allocator for secrets that wipes memory before giving it back, and takes a block of up to
// kLockedBytes (keys, seeds, passphrases, a payload that small) from OpenSSL's secure heap when
// HardenProcess has set it up, so that it is locked in memory and left out of core dumps; larger
// blocks (payloads), and any block once SecureAllocate declines, come from the ordinary heap.
template <typename T>
struct SecretAllocator {
  static constexpr size_t kLockedBytes = 256;
  using value_type = T;
  SecretAllocator() = default;
  template <typename U>
  explicit SecretAllocator(const SecretAllocator<U>&) {}
  T* allocate(size_t n) {
    if (n * sizeof(T) <= kLockedBytes) {
      if (void* p = SecureAllocate(n * sizeof(T))) return static_cast<T*>(p);
    }
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) <= kLockedBytes && SecureFree(p, n * sizeof(T))) return;
    SecureWipe(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
  friend bool operator==(const SecretAllocator&, const SecretAllocator&) { return true; }
};

// A string whose memory is wiped whenever it is released: for text that may carry a secret, such
// as an answer holding a payload in base64. Short strings live inside the object, not on the heap
// (under 16 bytes in libstdc++), and are not wiped; no secret text is that short.
using WipedString = std::basic_string<char, std::char_traits<char>, WipingAllocator<char>>;

// The token that unlocks a secret's bytes. Only `InsecureSecretAccess()` makes one.
class SecretAccess {
 private:
  SecretAccess() = default;
  friend SecretAccess InsecureSecretAccess();
};
[[nodiscard]] inline SecretAccess InsecureSecretAccess() { return SecretAccess(); }

class SecretBytes {
 public:
  SecretBytes() = default;
  // `size` zero bytes.
  explicit SecretBytes(size_t size) : bytes_(size) {}
  // A secret holding a copy of `bytes`; the caller wipes its own copy.
  [[nodiscard]] static SecretBytes Copy(std::span<const uint8_t> bytes) {
    SecretBytes s(bytes.size());
    std::copy(bytes.begin(), bytes.end(), s.bytes_.begin());
    return s;
  }
  [[nodiscard]] static SecretBytes Copy(std::string_view text) {
    return Copy(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }

  SecretBytes(SecretBytes&&) noexcept = default;
  SecretBytes& operator=(SecretBytes&& other) noexcept {
    if (this != &other) {
      bytes_.swap(other.bytes_);
      other.Clear();
    }
    return *this;
  }
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes() = default;  // the allocator wipes

  // An explicit copy, for the rare place that needs two owners.
  [[nodiscard]] SecretBytes Clone() const { return Copy(std::span<const uint8_t>(bytes_)); }

  [[nodiscard]] size_t size() const { return bytes_.size(); }
  [[nodiscard]] bool empty() const { return bytes_.empty(); }
  void Resize(size_t size) { bytes_.resize(size); }
  // Drops the first `n` bytes (all of them if fewer), in place: no second copy is made, and the
  // bytes moved out of the tail are wiped when the memory is freed.
  void RemovePrefix(size_t n) {
    n = std::min(n, bytes_.size());
    if (n == 0) return;  // std::copy onto its own start is not allowed
    std::copy(bytes_.begin() + static_cast<std::ptrdiff_t>(n), bytes_.end(), bytes_.begin());
    bytes_.resize(bytes_.size() - n);
  }
  // Wipes and frees the bytes now.
  void Clear() { std::vector<uint8_t, SecretAllocator<uint8_t>>().swap(bytes_); }

  [[nodiscard]] std::span<const uint8_t> Reveal(SecretAccess) const { return bytes_; }
  [[nodiscard]] std::span<uint8_t> RevealMutable(SecretAccess) { return bytes_; }
  [[nodiscard]] std::string_view RevealText(SecretAccess) const {
    return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
  }

 private:
  std::vector<uint8_t, SecretAllocator<uint8_t>> bytes_;
};

}  // namespace accord

#endif  // ACCORD_SECRET_H_
