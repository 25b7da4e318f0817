// libFuzzer target: the proof decoders and both verifiers. The input is five lines: leaf hash,
// "index size", root, proof (comma-separated hex), second root; the whole of it is also read as
// a document of consistency proofs (a partner's answer, or a file given to `accord log shown`).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "accord/merkle.h"

namespace {

// A document that decodes encodes to one that decodes to the same, within the bounds.
void CheckProofsDocument(std::string_view input) {
  using accord::merkle::ConsistencyProofs;
  auto decoded = accord::merkle::DecodeConsistencyProofs(input);
  if (!decoded) return;
  if (decoded->proofs.size() > accord::merkle::kMaxConsistencyProofs) __builtin_trap();
  for (const ConsistencyProofs::Proof& p : decoded->proofs) {
    if (p.proof.size() > accord::merkle::kMaxProofHashes) __builtin_trap();
  }
  auto again =
      accord::merkle::DecodeConsistencyProofs(accord::merkle::EncodeConsistencyProofs(*decoded));
  if (!again || *again != *decoded) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckProofsDocument(input);
  std::vector<std::string_view> lines;
  while (lines.size() < 5) {
    const size_t nl = input.find('\n');
    lines.push_back(input.substr(0, nl));
    if (nl == std::string_view::npos) break;
    input.remove_prefix(nl + 1);
  }
  while (lines.size() < 5) lines.emplace_back();
  const auto leaf = accord::merkle::HashFromHex(lines[0]);
  const auto root = accord::merkle::HashFromHex(lines[2]);
  const auto proof = accord::merkle::ProofFromHex(lines[3]);
  const auto root2 = accord::merkle::HashFromHex(lines[4]);
  const std::string numbers(lines[1]);
  char* end = nullptr;
  const uint64_t a = std::strtoull(numbers.c_str(), &end, 10);
  const uint64_t b = std::strtoull(end, nullptr, 10);
  if (!proof) return 0;
  const accord::merkle::Hash zero{};
  // Neither verifier may crash or loop; and a tree of more than one leaf never verifies an
  // inclusion with an empty path, nor a growing tree a consistency without a proof.
  const auto inclusion =
      accord::merkle::VerifyInclusion(leaf.value_or(zero), a, b, *proof, root.value_or(zero));
  if (inclusion && b > 1 && proof->empty()) __builtin_trap();
  const auto consistency =
      accord::merkle::VerifyConsistency(a, b, *proof, root.value_or(zero), root2.value_or(zero));
  if (consistency && a > 0 && a < b && proof->empty()) __builtin_trap();
  return 0;
}
