// `accord log ...`: checks anyone can run on bare hashes, with no access to the log.
#include <fmt/format.h>

#include "accord/merkle.h"
#include "commands.h"

namespace accord::cli {
namespace {

// Prints the outcome in one line and maps it to the exit code.
int Report(const Status& verified) {
  if (verified) {
    fmt::print("valid\n");
    return kExitOk;
  }
  if (verified.error().code == Code::kDataLoss) {
    fmt::print("invalid: {}\n", verified.error().message);
    return 1;
  }
  fmt::print(stderr, "accord: {}\n", verified.error().message);
  return kExitUsage;
}

int BadArgument(std::string_view flag, const Error& e) {
  fmt::print(stderr, "accord: {}: {}\n", flag, e.message);
  return kExitUsage;
}

}  // namespace

int RunVerifyInclusion(const VerifyInclusionOptions& o) {
  const auto leaf = merkle::HashFromHex(o.leaf_hash);
  if (!leaf) return BadArgument("--leaf-hash", leaf.error());
  const auto root = merkle::HashFromHex(o.root);
  if (!root) return BadArgument("--root", root.error());
  const auto proof = merkle::ProofFromHex(o.proof);
  if (!proof) return BadArgument("--proof", proof.error());
  return Report(merkle::VerifyInclusion(*leaf, o.index, o.size, *proof, *root));
}

int RunVerifyConsistency(const VerifyConsistencyOptions& o) {
  const auto root1 = merkle::HashFromHex(o.root1);
  if (!root1) return BadArgument("--root1", root1.error());
  const auto root2 = merkle::HashFromHex(o.root2);
  if (!root2) return BadArgument("--root2", root2.error());
  const auto proof = merkle::ProofFromHex(o.proof);
  if (!proof) return BadArgument("--proof", proof.error());
  return Report(merkle::VerifyConsistency(o.size1, o.size2, *proof, *root1, *root2));
}

}  // namespace accord::cli
