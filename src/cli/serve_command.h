// `accord serve`: one node's HTTPS API with mutual TLS (docs/api.md), until SIGTERM or Ctrl-C.
#ifndef ACCORD_SRC_CLI_SERVE_COMMAND_H_
#define ACCORD_SRC_CLI_SERVE_COMMAND_H_

#include <memory>
#include <optional>

namespace CLI {
class App;
}

namespace accord::cli {

class ServeCommand {
 public:
  explicit ServeCommand(CLI::App& app);
  ~ServeCommand();
  // The exit code if `serve` ran, else nullopt.
  [[nodiscard]] std::optional<int> Run();

  struct Flags;

 private:
  std::unique_ptr<Flags> flags_;
};

}  // namespace accord::cli

#endif  // ACCORD_SRC_CLI_SERVE_COMMAND_H_
