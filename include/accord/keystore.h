// accord/keystore.h — where a node's key-encryption key lives.
//
// Two backends behind `KeyEncryptionKey` (crypto.h):
//
//   File key store (the embedded default): a small text file holding a random 256-bit KEK sealed
//   with AES-256-GCM under a key derived from a passphrase by scrypt (OpenSSL's EVP_KDF). The
//   header (format, KDF parameters, salt) is the associated data, so an edited parameter fails
//   like a wrong passphrase.
//
//       accord-keystore v1
//       kdf scrypt n=131072 r=8 p=1
//       salt <base64, 16 bytes>
//       kek <base64 of nonce || sealed KEK || tag>
//
//   PKCS#11 (an HSM, tested with SoftHSM2): an AES-256 key generated inside the token as
//   sensitive and non-extractable; wrapping and unwrapping are CKM_AES_GCM operations done by the
//   token, so the KEK never leaves it.
//
// Thread safety: the returned KEKs are safe to share; the PKCS#11 one serialises token calls.
#ifndef ACCORD_KEYSTORE_H_
#define ACCORD_KEYSTORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "accord/crypto.h"
#include "accord/secret.h"
#include "accord/status.h"

namespace accord {

struct ScryptParams {
  uint64_t n = 1u << 17;  // CPU/memory cost: 128 MiB with r = 8 (OWASP's minimum)
  uint32_t r = 8;
  uint32_t p = 1;
};

// Creates a file key store at `path` with a fresh KEK. kAlreadyExists if anything is at `path`
// (a file, a symbolic link); kInvalidArgument for an empty passphrase or unreasonable parameters;
// kFailedPrecondition when the file cannot be written; kUnavailable when it is in place but its
// directory could not be made durable. The file, mode 0600, is written whole and made durable
// beside `path`, then renamed to it if nothing is there: never cut short under its name.
[[nodiscard]] Status CreateFileKeyStore(const std::string& path, const SecretBytes& passphrase,
                                        const ScryptParams& params = {});

// Unlocks the file key store. kPermissionDenied "wrong passphrase" when the passphrase (or the
// header) does not match; kInvalidArgument for a malformed file; kNotFound if absent.
[[nodiscard]] Result<std::unique_ptr<KeyEncryptionKey>> OpenFileKeyStore(
    const std::string& path, const SecretBytes& passphrase);

struct Pkcs11Options {
  std::string module = "/usr/lib/softhsm/libsofthsm2.so";  // the PKCS#11 library to dlopen
  std::string token_label;                                 // the token to use (found by label)
  SecretBytes pin;                                         // the user PIN
  std::string key_label = "accord-kek";                    // the KEK object's CKA_LABEL
};

// Generates the KEK inside the token (CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_TOKEN) and returns
// the random CKA_ID it gave it, which tells this key from another of the same label.
// kAlreadyExists if a key with that label is there; kNotFound for a missing token;
// kPermissionDenied for a wrong PIN; kUnavailable when the module cannot be loaded.
[[nodiscard]] Result<Bytes> CreatePkcs11Kek(const Pkcs11Options& options);

// Destroys the KEK that CreatePkcs11Kek made with `options` and returned `id` for: what a
// home's making that failed after it does, so that the label is free again. A key of the same
// label and another id (made since by someone else) is not touched. kNotFound for no such key;
// kFailedPrecondition, destroying none, when more than one matches; kInvalidArgument for an
// empty `id`.
[[nodiscard]] Status DestroyPkcs11Kek(const Pkcs11Options& options, ByteView id);

// Logs in and finds the KEK; same errors as CreatePkcs11Kek, kNotFound for a missing key.
[[nodiscard]] Result<std::unique_ptr<KeyEncryptionKey>> OpenPkcs11Kek(const Pkcs11Options& options);

}  // namespace accord

#endif  // ACCORD_KEYSTORE_H_
