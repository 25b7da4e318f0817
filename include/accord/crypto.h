// accord/crypto.h — the primitives a node needs, all from OpenSSL 3.
//
//   Aead                AES-256-GCM with a 96-bit random nonce: seal a payload under a data key,
//                       binding associated data (the object's label) so an edited label fails.
//   KeyEncryptionKey    the node's key-encryption key: wraps data keys at rest. Backends: a key
//                       held in memory after unlocking the file key store (keystore.h), or a key
//                       that never leaves a PKCS#11 token.
//   WrapKeyPair         X25519: wraps a data key to a party's public key (ephemeral-static ECDH,
//                       HKDF-SHA256, AES-256-GCM), so only that party's node can unwrap it.
//   SigningKey          Ed25519 signatures; VerifyingKey checks them.
//
// Formats (all fixed, documented in docs/node.md):
//   sealed     = nonce(12) || ciphertext || tag(16)
//   party-wrap = ephemeral_public(32) || sealed(data key)
//
// Failures of integrity (a wrong key, a flipped bit, other associated data) are `kDataLoss` with
// the single message "decryption failed": no detail that would help an attacker.
//
// Thread safety: all classes are immutable after creation; const methods are safe to call
// concurrently.
#ifndef ACCORD_CRYPTO_H_
#define ACCORD_CRYPTO_H_

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "accord/secret.h"
#include "accord/status.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace accord {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline constexpr size_t kAeadKeySize = 32;
inline constexpr size_t kAeadNonceSize = 12;
inline constexpr size_t kAeadTagSize = 16;
inline constexpr size_t kAeadOverhead = kAeadNonceSize + kAeadTagSize;
inline constexpr size_t kPublicKeySize = 32;
inline constexpr size_t kSignatureSize = 64;

using PublicKey = std::array<uint8_t, kPublicKeySize>;

// Views text as bytes (for associated data built from strings).
[[nodiscard]] inline ByteView AsBytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// Cryptographically secure random bytes. Aborts if the system generator fails: nothing sensible
// can continue without randomness.
[[nodiscard]] Bytes RandomBytes(size_t size);
// The same, for a nonce: kUnavailable when OpenSSL's generator cannot give them now (it could
// not seed: decision #78), so that one operation fails and the node goes on.
[[nodiscard]] Result<Bytes> TryRandomBytes(size_t size);
// Fills `out`, memory of a secret, from OpenSSL's private generator; kUnavailable as
// TryRandomBytes, kInvalidArgument for more than INT_MAX bytes. For random values kept secret
// beside what they protect (a content salt).
[[nodiscard]] Status TryFillSecretRandom(std::span<uint8_t> out);
// A fresh random AES-256 key.
[[nodiscard]] SecretBytes NewDataKey();

// Compares in time independent of where the inputs differ (CRYPTO_memcmp). Unequal sizes are
// unequal.
[[nodiscard]] bool ConstantTimeEquals(ByteView a, ByteView b);

// SHA-256 of `data`.
[[nodiscard]] std::array<uint8_t, 32> Sha256(ByteView data);

// Standard base64 with padding, and its strict inverse (kInvalidArgument on bad input).
[[nodiscard]] std::string Base64Encode(ByteView bytes);
// Appends the base64 of `bytes` to `out`: a secret is encoded straight into a buffer that wipes
// itself, with no copy of the text anywhere else, whatever happens (an allocation that fails).
void AppendBase64(ByteView bytes, WipedString& out);
[[nodiscard]] Result<Bytes> Base64Decode(std::string_view text);
[[nodiscard]] std::string HexEncode(ByteView bytes);
// The value of one hex digit (either case), or -1.
[[nodiscard]] int HexDigitValue(char c);
// Lowercase or uppercase hex digits, an even number of them (kInvalidArgument otherwise).
[[nodiscard]] Result<Bytes> HexDecode(std::string_view hex);

class Aead {
 public:
  // `key` must be kAeadKeySize bytes (kInvalidArgument otherwise).
  [[nodiscard]] static Result<Aead> Create(SecretBytes key);

  // nonce || ciphertext || tag, with a fresh random nonce.
  [[nodiscard]] Result<Bytes> Encrypt(ByteView plaintext, ByteView associated_data) const;
  // The plaintext, or kDataLoss "decryption failed".
  [[nodiscard]] Result<SecretBytes> Decrypt(ByteView sealed, ByteView associated_data) const;

 private:
  explicit Aead(SecretBytes key) : key_(std::move(key)) {}
  SecretBytes key_;
};

// The node's key-encryption key. Implementations: LocalKek (below) and the PKCS#11 one
// (keystore.h).
class KeyEncryptionKey {
 public:
  virtual ~KeyEncryptionKey() = default;
  // Seals `key` (a data key or a private key) with `associated_data` bound.
  [[nodiscard]] virtual Result<Bytes> Wrap(const SecretBytes& key,
                                           ByteView associated_data) const = 0;
  // kDataLoss "decryption failed" when `wrapped` or `associated_data` is not what Wrap saw.
  [[nodiscard]] virtual Result<SecretBytes> Unwrap(ByteView wrapped,
                                                   ByteView associated_data) const = 0;
  // "file key store", "PKCS#11 token `accord`": for messages, never key material.
  [[nodiscard]] virtual std::string Describe() const = 0;
};

// A KEK held in process memory (wiped on destruction), AES-256-GCM.
class LocalKek final : public KeyEncryptionKey {
 public:
  [[nodiscard]] static Result<std::unique_ptr<LocalKek>> Create(SecretBytes key,
                                                                std::string description);
  [[nodiscard]] Result<Bytes> Wrap(const SecretBytes& key, ByteView associated_data) const override;
  [[nodiscard]] Result<SecretBytes> Unwrap(ByteView wrapped,
                                           ByteView associated_data) const override;
  [[nodiscard]] std::string Describe() const override { return description_; }

 private:
  LocalKek(Aead aead, std::string description)
      : aead_(std::move(aead)), description_(std::move(description)) {}
  const Aead aead_;
  const std::string description_;
};

class VerifyingKey {
 public:
  // kInvalidArgument unless `raw` is 32 bytes.
  [[nodiscard]] static Result<VerifyingKey> FromRaw(ByteView raw);
  // kDataLoss "signature verification failed" on any mismatch.
  [[nodiscard]] Status Verify(ByteView message, ByteView signature) const;
  // Whether signatures made with no private key verify under this key: true for a point of
  // small order (the identity, say), which OpenSSL 3.0 takes as a key and whose "signatures"
  // anyone can make. Probed with OpenSSL's own verification: the signature (R = the identity,
  // S = 0) verifies exactly when [h]A is the identity, which for such a key happens for one
  // message in at most eight; 256 messages are tried, and a key of prime order passes none.
  [[nodiscard]] bool AcceptsForgeries() const;
  [[nodiscard]] const PublicKey& raw() const { return raw_; }

 private:
  VerifyingKey(const PublicKey& raw, std::shared_ptr<evp_pkey_st> key)
      : raw_(raw), key_(std::move(key)) {}
  PublicKey raw_;
  // The key as OpenSSL's, made once (as SigningKey::key_): a node verifies with the same few
  // partners' keys again and again.
  std::shared_ptr<evp_pkey_st> key_;
};

class SigningKey {
 public:
  [[nodiscard]] static SigningKey Generate();
  // From the 32-byte Ed25519 seed (kInvalidArgument otherwise).
  [[nodiscard]] static Result<SigningKey> FromSeed(SecretBytes seed);

  [[nodiscard]] Bytes Sign(ByteView message) const;
  [[nodiscard]] const PublicKey& public_key() const { return public_key_; }
  [[nodiscard]] VerifyingKey verifying_key() const;
  [[nodiscard]] const SecretBytes& seed(SecretAccess) const { return seed_; }

 private:
  SigningKey(SecretBytes seed, std::shared_ptr<evp_pkey_st> key, const PublicKey& public_key)
      : seed_(std::move(seed)), key_(std::move(key)), public_key_(public_key) {}
  SecretBytes seed_;
  // The seed as OpenSSL's key, made once: making it derives the public key, which cost as much as
  // a signature. OpenSSL wipes it when freed; signing only reads it.
  std::shared_ptr<evp_pkey_st> key_;
  PublicKey public_key_;
};

// Wraps `key` to the X25519 public key of a party: ephemeral_public || sealed(key), where the
// sealing key is HKDF-SHA256(ECDH(ephemeral, recipient), salt = ephemeral_public ||
// recipient_public, info = "accord/v1 party-wrap"). `associated_data` is bound as well.
[[nodiscard]] Result<Bytes> WrapToParty(const PublicKey& recipient, const SecretBytes& key,
                                        ByteView associated_data);

class WrapKeyPair {
 public:
  [[nodiscard]] static WrapKeyPair Generate();
  // From the 32-byte X25519 private key (kInvalidArgument otherwise).
  [[nodiscard]] static Result<WrapKeyPair> FromPrivate(SecretBytes private_key);

  // The inverse of WrapToParty; kDataLoss "decryption failed" for anything else.
  [[nodiscard]] Result<SecretBytes> Unwrap(ByteView wrapped, ByteView associated_data) const;
  [[nodiscard]] const PublicKey& public_key() const { return public_key_; }
  [[nodiscard]] const SecretBytes& private_key(SecretAccess) const { return private_key_; }

 private:
  friend Result<Bytes> WrapToParty(const PublicKey&, const SecretBytes&, ByteView);
  // Generate's work; kUnavailable when OpenSSL has no random bytes or memory for the key.
  [[nodiscard]] static Result<WrapKeyPair> TryGenerate();
  WrapKeyPair(SecretBytes private_key, std::shared_ptr<evp_pkey_st> key,
              const PublicKey& public_key)
      : private_key_(std::move(private_key)), key_(std::move(key)), public_key_(public_key) {}
  SecretBytes private_key_;
  std::shared_ptr<evp_pkey_st> key_;  // as SigningKey::key_
  PublicKey public_key_;
};

}  // namespace accord

#endif  // ACCORD_CRYPTO_H_
