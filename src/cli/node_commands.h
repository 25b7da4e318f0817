// The node's subcommands: `accord node init`, `put`, `get`, `ls`, `release`, `receive`,
// `forward`, `consent`, `reclassify`, `destroy`, `report`, `subject`, `keys`, `outbox`. Flags
// are declared and dispatched here so main.cc stays a list of commands.
#ifndef ACCORD_SRC_CLI_NODE_COMMANDS_H_
#define ACCORD_SRC_CLI_NODE_COMMANDS_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "accord/crypto.h"

namespace CLI {
class App;
class Validator;
}  // namespace CLI
namespace accord {
class Node;
struct NodeOptions;
}  // namespace accord

namespace accord::cli {

// A tree size, leaf index or count given on the command line: decimal digits, without a sign or a
// leading zero, below 2^64. CLI11 reads integers with strtoull in base 0, which takes `-1` for
// 2^64 − 1, `010` for 8 and 2^64 for 2^64 − 1; each of those is refused instead (exit 2).
const CLI::Validator& CountValidator();

// Exit codes of the node commands, besides those of commands.h.
inline constexpr int kExitFailed = 1;     // the operation failed (not found, malformed, ...)
inline constexpr int kExitDenied = 4;     // the agreements refuse it; the reason code is printed
inline constexpr int kExitIntegrity = 5;  // a signature, a seal or a stored record failed its check

// The largest --max-payload: a payload is held in memory whole (a package takes about 1.8 times
// as much), and the files read are bounded by it.
inline constexpr size_t kMaxMaxPayload = size_t{1} << 30;

// The exit code for a failed node operation, after printing why (PrintError): 4 when the
// agreements refuse it, 5 when an integrity check fails, 1 otherwise.
int Report(const Error& e);

// Fills the passphrase and the PIN of `options` from the given files or ACCORD_PASSPHRASE and
// ACCORD_PKCS11_PIN (the home says which one it needs), then wipes and unsets both variables,
// used or not. Call it before any thread starts. Returns 0, or the exit code after an error has
// been printed.
int ReadHomeSecrets(const std::string& passphrase_file, const std::string& pin_file,
                    NodeOptions& options);

// Writes `bytes` to `path` ("-": standard output) through a temporary file and a rename, so that
// a reader never sees half of it. The temporary file is new (mkostemp: O_EXCL), so that neither
// a file planted under its name nor a symbolic link receives what is written (a payload, with
// `get --out`); it has `mode` from the start. The rename is made durable with a sync of the
// directory. False, after printing why, on failure.
bool WriteFile(const std::string& path, ByteView bytes, mode_t mode = 0600);

// Whether WriteFile(path) can create its file, asked before an operation whose output it is.
// It must be nothing, a regular file, or a link to one or to nothing: never a directory, nor a
// device or FIFO that the output would replace. True for "-"; false after printing why.
bool CanWrite(const std::string& path);

// Whether `path` lies inside the home `home` (its store, key store, policy), where no output may
// go: WriteFile would replace one of the home's files.
bool InsideHome(const std::string& path, const std::string& home);

class NodeCommands {
 public:
  // Declares the subcommands on `app`.
  explicit NodeCommands(CLI::App& app);
  ~NodeCommands();
  // After parsing: the exit code of the node subcommand that ran, or nullopt if none did.
  [[nodiscard]] std::optional<int> Run();

 private:
  struct Flags;
  // The `log` subcommands on a home; nullopt if `ran` is not one of them.
  std::optional<int> RunLog(Node& node, CLI::App* ran);
  // `log shown`: lists the checkpoints a partner showed as evidence and that are not yet proved,
  // or proves them with its proofs (--proofs).
  int ProveShown(Node& node);
  std::unique_ptr<Flags> flags_;
};

}  // namespace accord::cli

#endif  // ACCORD_SRC_CLI_NODE_COMMANDS_H_
