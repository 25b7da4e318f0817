// The node's subcommands: `accord node init`, `put`, `get`, `ls`, `release`, `receive`,
// `forward`, `consent`, `reclassify`, `destroy`, `report`, `subject`, `keys`. Flags are declared
// and dispatched here so main.cc stays a list of commands.
#ifndef ACCORD_SRC_CLI_NODE_COMMANDS_H_
#define ACCORD_SRC_CLI_NODE_COMMANDS_H_

#include <memory>
#include <optional>

namespace CLI {
class App;
}
namespace accord {
class Node;
}

namespace accord::cli {

// Exit codes of the node commands, besides those of commands.h.
inline constexpr int kExitFailed = 1;     // the operation failed (not found, malformed, ...)
inline constexpr int kExitDenied = 4;     // the agreements refuse it; the reason code is printed
inline constexpr int kExitIntegrity = 5;  // a signature, a seal or a stored record failed its check

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
  std::unique_ptr<Flags> flags_;
};

}  // namespace accord::cli

#endif  // ACCORD_SRC_CLI_NODE_COMMANDS_H_
