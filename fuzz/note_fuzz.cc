// libFuzzer target: the signed-note and checkpoint parsers, and opening a note with a known key.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "accord/note.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const accord::note::Verifier key = *accord::note::Verifier::FromVerifierKey(
      "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto parsed = accord::note::Parse(input);
  if (parsed) {
    // Formatting what parsed gives back the input, byte for byte.
    if (accord::note::Format(*parsed) != input) __builtin_trap();
    (void)accord::note::ParseCheckpoint(parsed->text);
  }
  const accord::note::Verifier keys[] = {key};
  (void)accord::note::Open(input, keys);
  (void)accord::note::ParseCheckpoint(input);
  (void)accord::note::Verifier::FromVerifierKey(input);
  return 0;
}
