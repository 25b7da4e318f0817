// libFuzzer target: the signed-note and checkpoint parsers, opening a note with a known key, and a
// witness resuming from a stored cosignature (which keeps only the log's signature lines).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

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
  // A note that opens with the key parses, and carries a signature of the key's name.
  const accord::note::Verifier keys[] = {key};
  if (auto opened = accord::note::Open(input, keys)) {
    if (!parsed) __builtin_trap();
    bool signed_by_key = false;
    for (const accord::note::Signature& s : opened->signatures) {
      signed_by_key = signed_by_key || s.name == key.name();
    }
    if (!signed_by_key) __builtin_trap();
  }
  // A checkpoint that parses is written back as it came: one text for one checkpoint.
  if (auto checkpoint = accord::note::ParseCheckpoint(input)) {
    if (accord::note::CheckpointText(*checkpoint) != input) __builtin_trap();
  }
  (void)accord::note::Verifier::FromVerifierKey(input);

  // A witness resuming from its own stored record keeps the log's signature lines only, each
  // once, and resuming from what it kept keeps the same.
  static constexpr std::array<uint8_t, 32> kSeed = {7};
  auto signer = accord::note::Signer::FromSeed("witness", kSeed);
  if (!signer) __builtin_trap();
  accord::note::Witness witness(std::move(*signer));
  std::string origin = "example.com/log";
  if (parsed) {
    if (auto c = accord::note::ParseCheckpoint(parsed->text)) origin = c->origin;
  }
  if (witness.Resume(origin, key, input)) {
    const auto latest = witness.Latest(origin);
    if (!latest) __builtin_trap();
    const auto kept = accord::note::Parse(*latest);
    if (!kept || kept->signatures.empty()) __builtin_trap();
    for (const accord::note::Signature& s : kept->signatures) {
      if (s.name != key.name()) __builtin_trap();
    }
    auto again_signer = accord::note::Signer::FromSeed("witness", kSeed);
    if (!again_signer) __builtin_trap();
    accord::note::Witness again(std::move(*again_signer));
    if (!again.Resume(origin, key, *latest) || again.Latest(origin) != latest) __builtin_trap();
  }
  return 0;
}
