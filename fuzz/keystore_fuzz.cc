// libFuzzer target: the file key store's text (src/crypto/keystore_text.h), parsed before any key
// is derived from it. What parses is, byte for byte, what CreateFileKeyStore writes for its
// fields (KeyStoreHeader, then the `kek` line), but for numbers written with leading zeros, and
// written again it parses to the same fields; what does not parse is refused with
// kInvalidArgument and a message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "accord/crypto.h"
#include "keystore_text.h"

namespace {

namespace ci = accord::crypto_internal;

bool SameFields(const ci::KeyStoreText& a, const ci::KeyStoreText& b) {
  return a.params.n == b.params.n && a.params.r == b.params.r && a.params.p == b.params.p &&
         a.salt == b.salt && a.sealed == b.sealed;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = ci::ParseKeyStoreText(text);
  if (!parsed) {
    if (parsed.error().code != accord::Code::kInvalidArgument || parsed.error().message.empty()) {
      __builtin_trap();
    }
    return 0;
  }
  const std::string header = ci::KeyStoreHeader(parsed->params, parsed->salt);
  const std::string written = header + "kek " + accord::Base64Encode(parsed->sealed) + "\n";
  const bool leading_zero = text.find(" n=0") != std::string_view::npos ||
                            text.find(" r=0") != std::string_view::npos ||
                            text.find(" p=0") != std::string_view::npos;
  if ((text == written) == leading_zero) __builtin_trap();
  if (!leading_zero && parsed->header != header) __builtin_trap();
  const auto again = ci::ParseKeyStoreText(written);
  if (!again || !SameFields(*parsed, *again) || again->header != header) __builtin_trap();
  return 0;
}
