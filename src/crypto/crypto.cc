#include "accord/crypto.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <limits>

namespace accord {
namespace {

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct KdfDeleter {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;
using KdfPtr = std::unique_ptr<EVP_KDF, KdfDeleter>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter>;

constexpr std::string_view kDecryptionFailed = "decryption failed";
constexpr std::string_view kPartyWrapInfo = "accord/v1 party-wrap";

// AES-256-GCM, fetched once: looking the cipher up on every call costs a few percent at 64 KiB.
const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* const cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    if (c == nullptr) std::abort();  // OpenSSL without AES-GCM cannot run accord
    return c;
  }();
  return cipher;
}

// OpenSSL takes int lengths; payloads beyond 2 GiB are refused before reaching it.
bool FitsInt(size_t n) { return n <= static_cast<size_t>(std::numeric_limits<int>::max()); }

// A raw 32-byte public key out of an EVP_PKEY.
PublicKey RawPublic(EVP_PKEY* key) {
  PublicKey out{};
  size_t n = out.size();
  if (EVP_PKEY_get_raw_public_key(key, out.data(), &n) != 1 || n != out.size()) {
    std::abort();  // a key we just built has a public half: impossible
  }
  return out;
}

// HKDF-SHA256 → a 32-byte key.
Result<SecretBytes> Hkdf(const SecretBytes& ikm, ByteView salt, std::string_view info) {
  KdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) {
    ERR_clear_error();
    return Fail(Code::kInternal, "hkdf unavailable");
  }
  KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) {
    ERR_clear_error();
    return Fail(Code::kInternal, "hkdf unavailable");
  }
  auto ikm_bytes = ikm.Reveal(InsecureSecretAccess());
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string("key", const_cast<uint8_t*>(ikm_bytes.data()),
                                        ikm_bytes.size()),
      OSSL_PARAM_construct_octet_string("salt", const_cast<uint8_t*>(salt.data()), salt.size()),
      OSSL_PARAM_construct_octet_string("info", const_cast<char*>(info.data()), info.size()),
      OSSL_PARAM_construct_end(),
  };
  SecretBytes out(kAeadKeySize);
  if (EVP_KDF_derive(ctx.get(), out.RevealMutable(InsecureSecretAccess()).data(), out.size(),
                     params) != 1) {
    ERR_clear_error();
    return Fail(Code::kInternal, "hkdf failed");
  }
  return out;
}

// X25519 shared secret between `ours` (private) and `theirs` (public).
Result<SecretBytes> Ecdh(EVP_PKEY* ours, const PublicKey& theirs) {
  PkeyPtr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, theirs.data(), theirs.size()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new(ours, nullptr));
  if (!peer || !ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1) {
    ERR_clear_error();  // a partner can send such a key: leave no error for a later TLS call
    return Fail(Code::kDataLoss, std::string(kDecryptionFailed));
  }
  SecretBytes shared(32);
  size_t n = shared.size();
  // Fails for low-order points (an all-zero shared secret): treated as a corrupt wrap.
  if (EVP_PKEY_derive(ctx.get(), shared.RevealMutable(InsecureSecretAccess()).data(), &n) != 1 ||
      n != 32) {
    ERR_clear_error();
    return Fail(Code::kDataLoss, std::string(kDecryptionFailed));
  }
  return shared;
}

PkeyPtr X25519FromPrivate(const SecretBytes& private_key) {
  auto raw = private_key.Reveal(InsecureSecretAccess());
  return PkeyPtr(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, raw.data(), raw.size()));
}

Result<SecretBytes> PartyWrapKey(const SecretBytes& shared, const PublicKey& ephemeral,
                                 const PublicKey& recipient) {
  uint8_t salt[2 * kPublicKeySize];
  std::copy(ephemeral.begin(), ephemeral.end(), salt);
  std::copy(recipient.begin(), recipient.end(), salt + kPublicKeySize);
  return Hkdf(shared, salt, kPartyWrapInfo);
}

}  // namespace

Bytes RandomBytes(size_t size) {
  Bytes out(size);
  if (size > 0 && (!FitsInt(size) || RAND_bytes(out.data(), static_cast<int>(size)) != 1)) {
    std::abort();
  }
  return out;
}

Result<Bytes> TryRandomBytes(size_t size) {
  Bytes out(size);
  if (!FitsInt(size)) return Fail(Code::kInvalidArgument, "too many random bytes asked for");
  if (size > 0 && RAND_bytes(out.data(), static_cast<int>(size)) != 1) {
    ERR_clear_error();
    return Fail(Code::kUnavailable, "no random bytes for a nonce now");
  }
  return out;
}

Status TryFillSecretRandom(std::span<uint8_t> out) {
  if (!FitsInt(out.size())) return Fail(Code::kInvalidArgument, "too many random bytes asked for");
  if (!out.empty() && RAND_priv_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    ERR_clear_error();
    return Fail(Code::kUnavailable, "no random bytes for a secret now");
  }
  return OkStatus();
}

SecretBytes NewDataKey() {
  SecretBytes key(kAeadKeySize);
  if (RAND_priv_bytes(key.RevealMutable(InsecureSecretAccess()).data(),
                      static_cast<int>(kAeadKeySize)) != 1) {
    std::abort();
  }
  return key;
}

bool ConstantTimeEquals(ByteView a, ByteView b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::array<uint8_t, 32> Sha256(ByteView data) {
  std::array<uint8_t, 32> out{};
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha256(), nullptr) != 1) {
    std::abort();
  }
  return out;
}

namespace {

// Writes the base64 of `bytes` at `to`, which has room for it and one byte more.
void EncodeBase64At(ByteView bytes, char* at) {
  // EVP_EncodeBlock takes an int: 3 MiB at a time (a multiple of 3, so the pieces join), each
  // piece's terminating NUL overwritten by the next.
  constexpr size_t kPiece = 3 << 20;
  auto* to = reinterpret_cast<unsigned char*>(at);
  for (size_t done = 0; done < bytes.size(); done += kPiece) {
    const size_t n = std::min(kPiece, bytes.size() - done);
    to += EVP_EncodeBlock(to, bytes.data() + done, static_cast<int>(n));
  }
}

size_t Base64Size(size_t bytes) { return 4 * ((bytes + 2) / 3); }

// The value of a base64 digit (one of the 64, checked before).
int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  return c == '+' ? 62 : 63;
}

}  // namespace

std::string Base64Encode(ByteView bytes) {
  std::string out(Base64Size(bytes.size()), '\0');
  EncodeBase64At(bytes, out.data());  // the last NUL is the string's own
  return out;
}

void AppendBase64(ByteView bytes, WipedString& out) {
  const size_t at = out.size();
  out.resize(at + Base64Size(bytes.size()));
  EncodeBase64At(bytes, out.data() + at);
}

Result<Bytes> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0 || !FitsInt(text.size())) {
    return Fail(Code::kInvalidArgument, "bad base64");
  }
  for (char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/' || c == '=';
    if (!ok) {
      return Fail(Code::kInvalidArgument, "bad base64");
    }
  }
  Bytes out(text.size() / 4 * 3);
  if (text.empty()) {
    return out;
  }
  // What is decoded may be a secret (a payload): wiped on every way out but success.
  const auto bad = [&out] {
    SecureWipe(out.data(), out.size());
    return Fail(Code::kInvalidArgument, "bad base64");
  };
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return bad();
  // EVP_DecodeBlock keeps the bytes that padding stands for; drop them, and refuse '=' anywhere
  // but the end so every byte string has one encoding.
  size_t pad = 0;
  if (text.back() == '=') {
    pad = text[text.size() - 2] == '=' ? 2 : 1;
  }
  if (text.substr(0, text.size() - pad).find('=') != std::string_view::npos) return bad();
  // One encoding per byte string: the bits the last digit has beyond the bytes are zero.
  if (pad > 0 && (Base64Value(text[text.size() - pad - 1]) & (pad == 1 ? 0x3 : 0xf)) != 0) {
    return bad();
  }
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string HexEncode(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<Bytes> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return Fail(Code::kInvalidArgument, "odd number of hex digits");
  }
  Bytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexDigitValue(hex[2 * i]);
    const int lo = HexDigitValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Fail(Code::kInvalidArgument, "not a hex digit");
    }
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

// --- Aead ------------------------------------------------------------------------------------

Result<Aead> Aead::Create(SecretBytes key) {
  if (key.size() != kAeadKeySize) {
    return Fail(Code::kInvalidArgument, "an AES-256-GCM key is 32 bytes");
  }
  return Aead(std::move(key));
}

Result<Bytes> Aead::Encrypt(ByteView plaintext, ByteView associated_data) const {
  if (!FitsInt(plaintext.size()) || !FitsInt(associated_data.size())) {
    return Fail(Code::kInvalidArgument, "payload too large to seal");
  }
  Bytes out(kAeadNonceSize + plaintext.size() + kAeadTagSize);
  if (RAND_bytes(out.data(), static_cast<int>(kAeadNonceSize)) != 1) {
    // OpenSSL's generator could not seed (its seeds come from the secure heap): try again later.
    ERR_clear_error();
    return Fail(Code::kUnavailable, "no random bytes for a nonce now");
  }
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  if (!ctx ||
      EVP_EncryptInit_ex2(ctx.get(), Aes256Gcm(), key_.Reveal(InsecureSecretAccess()).data(),
                          out.data(), nullptr) != 1 ||
      (!associated_data.empty() &&
       EVP_EncryptUpdate(ctx.get(), nullptr, &n, associated_data.data(),
                         static_cast<int>(associated_data.size())) != 1) ||
      EVP_EncryptUpdate(ctx.get(), out.data() + kAeadNonceSize, &n, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + kAeadNonceSize + n, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kAeadTagSize),
                          out.data() + kAeadNonceSize + plaintext.size()) != 1) {
    return Fail(Code::kInternal, "encryption failed");
  }
  return out;
}

Result<SecretBytes> Aead::Decrypt(ByteView sealed, ByteView associated_data) const {
  if (sealed.size() < kAeadOverhead || !FitsInt(sealed.size()) ||
      !FitsInt(associated_data.size())) {
    return Fail(Code::kDataLoss, std::string(kDecryptionFailed));
  }
  const size_t length = sealed.size() - kAeadOverhead;
  SecretBytes out(length);
  auto plain = out.RevealMutable(InsecureSecretAccess());
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  const bool ok =
      ctx &&
      EVP_DecryptInit_ex2(ctx.get(), Aes256Gcm(), key_.Reveal(InsecureSecretAccess()).data(),
                          sealed.data(), nullptr) == 1 &&
      (associated_data.empty() ||
       EVP_DecryptUpdate(ctx.get(), nullptr, &n, associated_data.data(),
                         static_cast<int>(associated_data.size())) == 1) &&
      EVP_DecryptUpdate(ctx.get(), plain.data(), &n, sealed.data() + kAeadNonceSize,
                        static_cast<int>(length)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kAeadTagSize),
                          const_cast<uint8_t*>(sealed.data() + kAeadNonceSize + length)) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), plain.data() + n, &n) == 1;
  if (!ok) {
    return Fail(Code::kDataLoss, std::string(kDecryptionFailed));  // `out` is wiped on return
  }
  return out;
}

// --- LocalKek --------------------------------------------------------------------------------

Result<std::unique_ptr<LocalKek>> LocalKek::Create(SecretBytes key, std::string description) {
  ACCORD_ASSIGN_OR_RETURN(auto aead, Aead::Create(std::move(key)));
  return std::unique_ptr<LocalKek>(new LocalKek(std::move(aead), std::move(description)));
}

Result<Bytes> LocalKek::Wrap(const SecretBytes& key, ByteView associated_data) const {
  return aead_.Encrypt(key.Reveal(InsecureSecretAccess()), associated_data);
}

Result<SecretBytes> LocalKek::Unwrap(ByteView wrapped, ByteView associated_data) const {
  return aead_.Decrypt(wrapped, associated_data);
}

// --- Ed25519 ---------------------------------------------------------------------------------

Result<VerifyingKey> VerifyingKey::FromRaw(ByteView raw) {
  if (raw.size() != kPublicKeySize) {
    return Fail(Code::kInvalidArgument, "an Ed25519 public key is 32 bytes");
  }
  PublicKey key{};
  std::copy(raw.begin(), raw.end(), key.begin());
  std::shared_ptr<EVP_PKEY> pkey(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(), key.size()),
      PkeyDeleter());
  if (!pkey) {
    return Fail(Code::kInvalidArgument, "bad Ed25519 public key");
  }
  return VerifyingKey(key, std::move(pkey));
}

Status VerifyingKey::Verify(ByteView message, ByteView signature) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!key_ || !ctx || signature.size() != kSignatureSize ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                       message.size()) != 1) {
    return Fail(Code::kDataLoss, "signature verification failed");
  }
  return OkStatus();
}

bool VerifyingKey::AcceptsForgeries() const {
  Bytes signature(kSignatureSize, 0);
  signature[0] = 1;  // R: the identity point's encoding (y = 1); S: 0
  for (int i = 0; i < 256; ++i) {
    const std::string message = "accord/1 small-order probe " + std::to_string(i);
    if (Verify(AsBytes(message), signature)) return true;
  }
  ERR_clear_error();
  return false;
}

SigningKey SigningKey::Generate() {
  SecretBytes seed(32);
  if (RAND_priv_bytes(seed.RevealMutable(InsecureSecretAccess()).data(), 32) != 1) {
    std::abort();
  }
  auto key = FromSeed(std::move(seed));
  if (!key) {
    std::abort();
  }
  return std::move(*key);
}

Result<SigningKey> SigningKey::FromSeed(SecretBytes seed) {
  if (seed.size() != 32) {
    return Fail(Code::kInvalidArgument, "an Ed25519 seed is 32 bytes");
  }
  auto raw = seed.Reveal(InsecureSecretAccess());
  std::shared_ptr<EVP_PKEY> key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size()),
      PkeyDeleter());
  if (!key) {
    return Fail(Code::kInvalidArgument, "bad Ed25519 seed");
  }
  const PublicKey pub = RawPublic(key.get());
  return SigningKey(std::move(seed), std::move(key), pub);
}

Bytes SigningKey::Sign(ByteView message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  Bytes sig(kSignatureSize);
  size_t n = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &n, message.data(), message.size()) != 1 ||
      n != kSignatureSize) {
    std::abort();  // signing with a valid key cannot fail
  }
  return sig;
}

VerifyingKey SigningKey::verifying_key() const {
  auto key = VerifyingKey::FromRaw(public_key_);
  if (!key) std::abort();  // 32 bytes that OpenSSL derived itself
  return *std::move(key);
}

// --- X25519 party wrapping -------------------------------------------------------------------

Result<Bytes> WrapToParty(const PublicKey& recipient, const SecretBytes& key,
                          ByteView associated_data) {
  // Not Generate, which aborts when OpenSSL cannot make the key (out of memory): a release fails
  // then, not the node.
  ACCORD_ASSIGN_OR_RETURN(const WrapKeyPair ephemeral, WrapKeyPair::TryGenerate());
  auto shared = Ecdh(ephemeral.key_.get(), recipient);
  if (!shared) {
    return Fail(Code::kInvalidArgument, "unusable recipient public key");
  }
  ACCORD_ASSIGN_OR_RETURN(SecretBytes wrap_key,
                          PartyWrapKey(*shared, ephemeral.public_key(), recipient));
  ACCORD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(std::move(wrap_key)));
  ACCORD_ASSIGN_OR_RETURN(Bytes sealed,
                          aead.Encrypt(key.Reveal(InsecureSecretAccess()), associated_data));
  Bytes out(ephemeral.public_key().begin(), ephemeral.public_key().end());
  out.insert(out.end(), sealed.begin(), sealed.end());
  return out;
}

Result<WrapKeyPair> WrapKeyPair::TryGenerate() {
  SecretBytes priv(32);
  if (RAND_priv_bytes(priv.RevealMutable(InsecureSecretAccess()).data(), 32) != 1) {
    ERR_clear_error();
    return Fail(Code::kUnavailable, "no random bytes for an X25519 key");
  }
  auto made = FromPrivate(std::move(priv));
  if (!made) {
    ERR_clear_error();
    return Fail(Code::kUnavailable, "cannot make an X25519 key now (out of memory)");
  }
  return made;
}

WrapKeyPair WrapKeyPair::Generate() {
  auto pair = TryGenerate();
  if (!pair) std::abort();  // no random bytes or no memory: nothing sensible to go on with
  return *std::move(pair);
}

Result<WrapKeyPair> WrapKeyPair::FromPrivate(SecretBytes private_key) {
  if (private_key.size() != 32) {
    return Fail(Code::kInvalidArgument, "an X25519 private key is 32 bytes");
  }
  std::shared_ptr<EVP_PKEY> key = X25519FromPrivate(private_key);
  if (!key) {
    return Fail(Code::kInvalidArgument, "bad X25519 private key");
  }
  const PublicKey pub = RawPublic(key.get());
  return WrapKeyPair(std::move(private_key), std::move(key), pub);
}

Result<SecretBytes> WrapKeyPair::Unwrap(ByteView wrapped, ByteView associated_data) const {
  if (wrapped.size() < kPublicKeySize + kAeadOverhead) {
    return Fail(Code::kDataLoss, std::string(kDecryptionFailed));
  }
  PublicKey ephemeral{};
  std::copy(wrapped.begin(), wrapped.begin() + kPublicKeySize, ephemeral.begin());
  ACCORD_ASSIGN_OR_RETURN(SecretBytes shared, Ecdh(key_.get(), ephemeral));
  ACCORD_ASSIGN_OR_RETURN(SecretBytes wrap_key, PartyWrapKey(shared, ephemeral, public_key_));
  ACCORD_ASSIGN_OR_RETURN(Aead aead, Aead::Create(std::move(wrap_key)));
  return aead.Decrypt(wrapped.subspan(kPublicKeySize), associated_data);
}

}  // namespace accord
