// LineLimiter: at most one log line a second of each kind.
#ifndef ACCORD_SRC_SERVER_LINE_LIMITER_H_
#define ACCORD_SRC_SERVER_LINE_LIMITER_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace accord::server_internal {

// The lines that anyone who can open a TCP connection causes, one a connection (a failed
// handshake, a connection over the limit), or any certificate holder, one a request (a request
// over its caller's limit), so that a flood cannot flood the log with them: the first line of a
// kind is logged, and then at most one a second, which says how many of its kind were left out
// since the last. Not thread-safe (the io thread's).
//
//   LineLimiter limiter;
//   if (auto line = limiter.Admit(LineLimiter::kHandshake, "tls handshake ... failed", now)) {
//     log(*line);
//   }
class LineLimiter {
 public:
  enum Kind : uint8_t {
    kHandshake,
    kRefused,
    kAccept,
    kReclaimed,
    kCallerLimit,
    kRefusedCaller,
    kSlowRequest,
    kKinds
  };
  static constexpr std::chrono::seconds kInterval{1};

  // The line to log now for `line` of `kind` at `now`, or nullopt to leave it out.
  std::optional<std::string> Admit(Kind kind, std::string line,
                                   std::chrono::steady_clock::time_point now) {
    State& s = states_[kind];
    if (s.logged && now - *s.logged < kInterval) {
      ++s.left_out;
      return std::nullopt;
    }
    s.logged = now;
    if (s.left_out > 0) {
      line += " (and " + std::to_string(s.left_out) + " more like it left out)";
      s.left_out = 0;
    }
    return line;
  }

  // A line for each kind with lines left out since its last: logged when the server stops.
  std::vector<std::string> Flush() {
    static constexpr const char* kNames[] = {"failed handshakes",
                                             "refused connections",
                                             "failed accepts",
                                             "reclaimed connections",
                                             "requests over their caller's limit",
                                             "refused certificates",
                                             "requests not read in time"};
    static_assert(std::size(kNames) == kKinds, "a name for each kind");
    std::vector<std::string> lines;
    for (size_t kind = 0; kind < kKinds; ++kind) {
      if (states_[kind].left_out > 0) {
        lines.push_back(std::to_string(states_[kind].left_out) + " more lines of " + kNames[kind] +
                        " were left out");
        states_[kind].left_out = 0;
      }
    }
    return lines;
  }

 private:
  struct State {
    std::optional<std::chrono::steady_clock::time_point> logged;  // the last line logged
    uint64_t left_out = 0;                                        // since then
  };
  std::array<State, kKinds> states_{};
};

}  // namespace accord::server_internal

#endif  // ACCORD_SRC_SERVER_LINE_LIMITER_H_
