// accord: the command line. Parses flags and wires objects; the work is in commands.cc.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "accord/harden.h"
#include "commands.h"
#include "node_commands.h"
#include "serve_command.h"

namespace {

constexpr const char* kFooter =
    R"(Exit codes: 0 success; 1 the policy has mistakes or failed to load, or the operation
failed (the message says why: a home, its store or a directory being made among them);
2 bad flags or arguments; 3 a file given to the command (an input, an output, a passphrase
or PIN file) could not be read or written;
4 the agreements refuse the operation (the reason code is printed);
5 a signature, seal or stored record failed its integrity check.
Instants are RFC 3339 with an offset, e.g. 2019-11-23T00:00:00+09:00 (or 2019-11-23T00:00+09:00).
See README.md for the formats.)";

int Main(int argc, char** argv);

}  // namespace

// Output to stdout (a payload, a public key file, a checkpoint) is buffered: a failure to write
// its last block shows only at the flush, which must not end in success.
int main(int argc, char** argv) {
  // Before anything holds a key or a payload: no core dump, and key-sized secrets and OpenSSL's
  // generated keys on its locked secure heap (accord/harden.h; `serve` warns when it is not
  // locked).
  if (auto hardened = accord::HardenProcess(); !hardened) {
    std::fprintf(stderr, "accord: %s\n", hardened.error().message.c_str());
    return accord::cli::kExitIo;
  }
  int code = Main(argc, argv);
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    std::fprintf(stderr, "accord: cannot write the output: %s\n", std::strerror(errno));
    if (code == 0) code = accord::cli::kExitIo;
  }
  return code;
}

namespace {

int Main(int argc, char** argv) {
  using namespace accord::cli;
  CLI::App app{
      "accord: exchange classified information under machine-readable security agreements"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.set_version_flag("--version", "accord 0.1.0");

  CheckOptions check;
  auto* check_cmd = app.add_subcommand("check", "Validate a policy directory; print every mistake");
  check_cmd->add_option("--policy", check.policy, "Policy directory")->required();

  DecideOptions decide;
  auto* decide_cmd = app.add_subcommand(
      "decide",
      "Decide JSON Lines requests (read, release, forward); one JSON line out per line in");
  decide_cmd->add_option("--policy", decide.policy, "Policy directory")->required();
  decide_cmd->add_option("--requests", decide.requests, "Requests file (default: standard input)");
  bool no_explain = false;
  decide_cmd->add_flag("--no-explain", no_explain, "Leave out the human explanation");
  decide_cmd
      ->add_option("--threads", decide.threads,
                   "Worker threads, at most 256 (default: one per core); output order always "
                   "follows input order")
      ->check(CLI::Range(0, 256));

  AgreementOptions agreement;
  auto* agreement_cmd = app.add_subcommand("agreement", "Agreements: list, status, timeline");
  agreement_cmd->require_subcommand(1);
  auto add_agreement_options = [&](CLI::App* cmd, const char* at_help) {
    cmd->add_option("--policy", agreement.policy, "Policy directory")->required();
    cmd->add_option("--id", agreement.id, "Agreement id (default: every agreement)");
    cmd->add_option("--at", agreement.at, at_help);
    cmd->add_flag("--json", agreement.json, "Print JSON");
  };
  auto* list_cmd = agreement_cmd->add_subcommand("list", "One line per agreement with its state");
  add_agreement_options(list_cmd, "Instant of the state (default: now)");
  auto* status_cmd =
      agreement_cmd->add_subcommand("status", "State, scheduled end and notice at an instant");
  add_agreement_options(status_cmd,
                        "Instant (default: now); a plain date is 00:00 in the agreement's zone");
  auto* timeline_cmd = agreement_cmd->add_subcommand(
      "timeline", "Every anniversary, notice and end with what each did");
  add_agreement_options(timeline_cmd, "List anniversaries up to this instant (default: now)");

  FlowsOptions flows;
  auto* flows_cmd = app.add_subcommand(
      "flows", "For every ordered pair of parties: may the originator release to the recipient?");
  flows_cmd->add_option("--policy", flows.policy, "Policy directory")->required();
  flows_cmd->add_option("--at", flows.at, "Instant (default: now)");
  flows_cmd->add_option("--zone", flows.zone,
                        "Offset for a plain date in --at and for output (default Z)");
  flows_cmd->add_flag("--json", flows.json, "Print JSON");

  ReplayOptions replay;
  auto* replay_cmd = app.add_subcommand(
      "replay",
      "Replay a policy's history: at each key instant, what happened, each agreement's "
      "state and the flow matrix");
  replay_cmd->add_option("--policy", replay.policy, "Policy directory")->required();
  replay_cmd->add_option("--zone", replay.zone, "Offset to print instants in (default +09:00)");

  auto* log_cmd = app.add_subcommand("log", "The audit log: check Merkle proofs (RFC 9162)");
  log_cmd->require_subcommand(1);
  VerifyInclusionOptions inclusion;
  auto* inclusion_cmd = log_cmd->add_subcommand(
      "verify-inclusion", "Check that a leaf hash is in a tree of a given size and root");
  inclusion_cmd->add_option("--leaf-hash", inclusion.leaf_hash, "SHA-256(0x00 || entry), hex")
      ->required();
  inclusion_cmd->add_option("--index", inclusion.index, "Leaf index, from 0")
      ->required()
      ->check(CountValidator());
  inclusion_cmd->add_option("--size", inclusion.size, "Tree size")
      ->required()
      ->check(CountValidator());
  inclusion_cmd->add_option("--root", inclusion.root, "Root hash of that tree, hex")->required();
  inclusion_cmd->add_option(
      "--proof", inclusion.proof,
      "Audit path: hex hashes, comma-separated (none for the only entry of a tree of one)");
  VerifyConsistencyOptions consistency;
  auto* consistency_cmd = log_cmd->add_subcommand(
      "verify-consistency", "Check that the tree of size1 is a prefix of the tree of size2");
  consistency_cmd->add_option("--size1", consistency.size1, "The earlier tree size")
      ->required()
      ->check(CountValidator());
  consistency_cmd->add_option("--size2", consistency.size2, "The later tree size")
      ->required()
      ->check(CountValidator());
  consistency_cmd->add_option("--root1", consistency.root1, "Root of the earlier tree, hex")
      ->required();
  consistency_cmd->add_option("--root2", consistency.root2, "Root of the later tree, hex")
      ->required();
  consistency_cmd->add_option(
      "--proof", consistency.proof,
      "Consistency proof: hex hashes, comma-separated (none from an empty tree or to the same "
      "size)");

  VerifyProofOptions verify_proof;
  auto* verify_proof_cmd = log_cmd->add_subcommand(
      "verify-proof",
      "Check a signed checkpoint, an entry and its inclusion proof with the log's key");
  verify_proof_cmd
      ->add_option("--log-key", verify_proof.log_key, "The log's verifier key (name+id+base64)")
      ->required();
  verify_proof_cmd->add_option(
      "--origin", verify_proof.origin,
      "The log's origin, which the checkpoint must name (default: the key's name, which for an "
      "accord node is its log's origin, e.g. accord/KOR)");
  verify_proof_cmd
      ->add_option("--checkpoint", verify_proof.checkpoint,
                   "File with the signed checkpoint (-: standard input)")
      ->required();
  verify_proof_cmd
      ->add_option("--entry", verify_proof.entry, "File with the entry's bytes (-: standard input)")
      ->required();
  verify_proof_cmd->add_option("--index", verify_proof.index, "The entry's index in the log")
      ->required()
      ->check(CountValidator());
  verify_proof_cmd->add_option("--proof", verify_proof.proof,
                               "Inclusion proof: hex hashes, comma-separated");

  NodeCommands node_commands(app);
  ServeCommand serve_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  if (*check_cmd) return RunCheck(check);
  if (*decide_cmd) {
    decide.explain = !no_explain;
    return RunDecide(decide);
  }
  if (*list_cmd) return RunAgreementList(agreement);
  if (*status_cmd) return RunAgreementStatus(agreement);
  if (*timeline_cmd) return RunAgreementTimeline(agreement);
  if (*flows_cmd) return RunFlows(flows);
  if (*replay_cmd) return RunReplay(replay);
  if (*inclusion_cmd) return RunVerifyInclusion(inclusion);
  if (*consistency_cmd) return RunVerifyConsistency(consistency);
  if (*verify_proof_cmd) return RunVerifyProof(verify_proof);
  if (auto code = node_commands.Run()) return *code;
  if (auto code = serve_command.Run()) return *code;
  return kExitUsage;
}

}  // namespace
