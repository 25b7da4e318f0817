// The `accord` subcommands. main.cc parses flags into these option structs and calls Run*; each
// returns the process exit code (see kExit*). Commands use the library's public API only.
#ifndef ACCORD_SRC_CLI_COMMANDS_H_
#define ACCORD_SRC_CLI_COMMANDS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "accord/status.h"

namespace accord::cli {

// Prints "accord: MESSAGE" on standard error. A message may quote what a partner wrote (an id, a
// field, its error), so it is printed as one line with nothing a terminal would act on
// (OneLine, accord/utf8.h).
void PrintError(std::string_view message);

// Prints `text` on standard error as PrintError does, without the "accord: " prefix: a
// diagnostic that quotes a policy file, a line that names what a partner sent.
void PrintLine(std::string_view text);

// The most read from a small file named on the command line: a checkpoint, a log entry, proofs,
// a party's public keys, a passphrase. The largest of them (256 consistency proofs in hex) is
// under 3 MiB.
inline constexpr size_t kMaxTextFileBytes = 16 << 20;

// The whole of the file at `path` ("-": standard input) when it holds at most `max_bytes`;
// otherwise nullopt, with the reason printed (`limit`, when given, names what sets the bound:
// "`big` is larger than 1000 bytes (--max-payload)").
std::optional<std::string> ReadInputFile(const std::string& path,
                                         size_t max_bytes = kMaxTextFileBytes,
                                         std::string_view limit = {});
// Prints the reason a file could not be read, as ReadInputFile does.
void PrintReadError(const Error& e, std::string_view limit);

// Exit codes, documented in README.md.
inline constexpr int kExitOk = 0;
inline constexpr int kExitPolicyInvalid = 1;  // `check` found mistakes; a policy failed to load
inline constexpr int kExitUsage = 2;          // bad flags or arguments
inline constexpr int kExitIo = 3;             // a file could not be read or written

struct CheckOptions {
  std::string policy;
};
struct DecideOptions {
  std::string policy;
  std::string requests;  // empty: stdin
  bool explain = true;
  unsigned threads = 0;  // 0: one per core
};
struct AgreementOptions {
  std::string policy;
  std::string id;                 // empty: every agreement
  std::optional<std::string> at;  // empty: now
  bool json = false;
};
struct FlowsOptions {
  std::string policy;
  std::optional<std::string> at;
  std::string zone = "Z";  // clock for a plain date in --at and for printed instants
  bool json = false;
};
struct ReplayOptions {
  std::string policy;
  std::string zone = "+09:00";
};

// `accord log verify-inclusion` / `verify-consistency`: hashes as hex, proofs as comma-separated
// hex. Exit 0 when the proof verifies, 1 when it does not, 2 when an argument is malformed.
struct VerifyInclusionOptions {
  std::string leaf_hash;
  uint64_t index = 0;
  uint64_t size = 0;
  std::string root;
  std::string proof;
};
struct VerifyConsistencyOptions {
  uint64_t size1 = 0;
  uint64_t size2 = 0;
  std::string root1;
  std::string root2;
  std::string proof;
};

// `accord log verify-proof`: a signed checkpoint, an entry and its inclusion proof, checked with
// only the log's verifier key. The checkpoint's origin must be the log's: `origin`, or the key's
// name without it (an accord node's key is named after its log's origin, `accord/<PARTY>`).
struct VerifyProofOptions {
  std::string log_key;                // "<name>+<id>+<base64>"
  std::optional<std::string> origin;  // --origin; the key's name when absent
  std::string checkpoint;             // file holding the signed checkpoint
  std::string entry;                  // file holding the entry's bytes
  uint64_t index = 0;
  std::string proof;
};

int RunCheck(const CheckOptions& o);
int RunDecide(const DecideOptions& o);
int RunAgreementList(const AgreementOptions& o);
int RunAgreementStatus(const AgreementOptions& o);
int RunAgreementTimeline(const AgreementOptions& o);
int RunFlows(const FlowsOptions& o);
int RunReplay(const ReplayOptions& o);
int RunVerifyInclusion(const VerifyInclusionOptions& o);
int RunVerifyConsistency(const VerifyConsistencyOptions& o);
int RunVerifyProof(const VerifyProofOptions& o);

}  // namespace accord::cli

#endif  // ACCORD_SRC_CLI_COMMANDS_H_
