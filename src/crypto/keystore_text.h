// The file key store's text (file_keystore.cc) and its parse, apart from the key derivation:
// private to the crypto module, and fuzzed (fuzz/keystore_fuzz.cc).
//
//   accord-keystore v1
//   kdf scrypt n=131072 r=8 p=1
//   salt <base64 of 16 bytes>
//   kek <base64 of the KEK sealed with AES-256-GCM, the three lines above as associated data>
#ifndef ACCORD_SRC_CRYPTO_KEYSTORE_TEXT_H_
#define ACCORD_SRC_CRYPTO_KEYSTORE_TEXT_H_

#include <string>
#include <string_view>

#include "accord/crypto.h"
#include "accord/keystore.h"
#include "accord/status.h"

namespace accord::crypto_internal {

inline constexpr size_t kKeyStoreSaltSize = 16;

// What a key store file says, before any key is derived from it.
struct KeyStoreText {
  ScryptParams params;  // reasonable (KeyStoreParamsReasonable)
  Bytes salt;           // kKeyStoreSaltSize bytes
  Bytes sealed;         // the KEK, sealed under the passphrase's key
  std::string header;   // the text before the `kek` line: the sealing's associated data
};

// Whether scrypt may run with `p`: its own limits, and a ceiling on memory, so that a hostile
// file cannot exhaust the machine.
[[nodiscard]] bool KeyStoreParamsReasonable(const ScryptParams& p);

// The first three lines of a key store file, each ending in a newline.
[[nodiscard]] std::string KeyStoreHeader(const ScryptParams& params, ByteView salt);

// Parses a key store file's whole text. kInvalidArgument, with what is wrong, for anything but
// the four lines above with reasonable parameters and a salt of the right size.
[[nodiscard]] Result<KeyStoreText> ParseKeyStoreText(std::string_view text);

}  // namespace accord::crypto_internal

#endif  // ACCORD_SRC_CRYPTO_KEYSTORE_TEXT_H_
