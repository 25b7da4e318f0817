// `accord log ...`: checks anyone can run on bare hashes, with no access to the log.
#include <fmt/format.h>

#include "accord/merkle.h"
#include "accord/note.h"
#include "accord/utf8.h"
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
  PrintError(verified.error().message);
  return kExitUsage;
}

int BadArgument(std::string_view flag, const Error& e) {
  PrintError(fmt::format("{}: {}", flag, e.message));
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

int RunVerifyProof(const VerifyProofOptions& o) {
  const auto key = note::Verifier::FromVerifierKey(o.log_key);
  if (!key) return BadArgument("--log-key", key.error());
  if (o.checkpoint == "-" && o.entry == "-") {
    PrintError("--entry: standard input is the checkpoint already");
    return kExitUsage;
  }
  const auto signed_checkpoint = ReadInputFile(o.checkpoint);
  if (!signed_checkpoint) return kExitIo;
  const auto entry = ReadInputFile(o.entry);
  if (!entry) return kExitIo;
  const auto proof = merkle::ProofFromHex(o.proof);
  if (!proof) return BadArgument("--proof", proof.error());
  const note::Verifier keys[] = {*key};
  const auto opened = note::Open(*signed_checkpoint, keys);
  if (!opened) {
    fmt::print("invalid: checkpoint: {}\n", opened.error().message);
    return 1;
  }
  const auto checkpoint = note::ParseCheckpoint(opened->text);
  if (!checkpoint) {
    fmt::print("invalid: {}\n", checkpoint.error().message);
    return 1;
  }
  // A key signs more than its log's checkpoints: an accord node cosigns its partners' with the
  // key that signs its own, so the key alone does not say whose log the checkpoint is of.
  const std::string& origin = o.origin.value_or(key->name());
  if (checkpoint->origin != origin) {
    fmt::print("invalid: checkpoint: it is of the log `{}`, not of `{}` ({})\n",
               OneLine(checkpoint->origin), OneLine(origin),
               o.origin ? "--origin" : "the key's name; --origin sets another");
    return 1;
  }
  return Report(merkle::VerifyInclusion(merkle::LeafHash(*entry), o.index, checkpoint->size, *proof,
                                        checkpoint->root));
}

}  // namespace accord::cli
