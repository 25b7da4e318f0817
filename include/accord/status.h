// accord/status.h — errors as values.
//
// Every fallible function in accord returns `Result<T>` (a `tl::expected<T, Error>`) or `Status`
// (`Result<void>`). No exception crosses a module boundary: where a library throws (toml11,
// Boost.JSON), the caller catches at the call and converts to an `Error`.
//
// Codes are canonical (the google.rpc.Code set, as in absl::Status) so that they map 1:1 to HTTP
// later. Return the most specific one; `kDataLoss` is for failed integrity checks.
//
// Error text follows one style: lowercase, no final period, user values in backticks, no C++ type
// names, no newlines.
//
// Thread safety: plain values; safe to share when not mutated.
#ifndef ACCORD_STATUS_H_
#define ACCORD_STATUS_H_

#include <exception>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace accord {

enum class Code {
  kOk = 0,
  kInvalidArgument,     // malformed input from the caller or a file
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // creating something that is there
  kFailedPrecondition,  // the system is not in the state the operation needs
  kPermissionDenied,    // the caller may not do this
  kOutOfRange,          // a value past a valid range (e.g. an instant beyond year 9999)
  kUnimplemented,
  kInternal,     // a broken invariant: a bug
  kUnavailable,  // try again later
  kDataLoss,     // integrity check failed: corruption or tampering
};

// The stable lowercase name of a code, e.g. "invalid-argument".
std::string_view CodeName(Code code);

// An error: a code and a message that already carries its context ("parties.toml:3:7: ...").
struct Error {
  Code code = Code::kInternal;
  std::string message;
  // Damage found in this node's own stored state as a whole (its database, its log, a partner's
  // keys): a kDataLoss, set where the store and the log check what they read back
  // (OwnStateDamaged). It is no fault of the input being handled, and no other input would fare
  // better: a partner's envelope is then not refused for good but kUnavailable, still marked
  // (decision #186). Damage confined to one object's records leaves it unset.
  bool own_state = false;

  // "invalid-argument: parties.toml:3:7: ..." for logs and the command line.
  [[nodiscard]] std::string ToString() const;
};

template <typename T>
using Result = tl::expected<T, Error>;
using Status = tl::expected<void, Error>;

// Builds a failed Result of any type: `return Fail(Code::kNotFound, "no party `KOR`");`
[[nodiscard]] inline tl::unexpected<Error> Fail(Code code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}

// Prefixes an error with context from the layer above ("loading `dir`: ").
[[nodiscard]] inline Error WithContext(Error e, std::string_view context) {
  e.message.insert(0, std::string(context) + ": ");
  return e;
}

// `e`, marked as damage found in this node's own stored state (Error::own_state).
[[nodiscard]] inline Error OwnState(Error e) {
  e.own_state = true;
  return e;
}

// A kDataLoss in this node's own stored state, found as it was read back.
[[nodiscard]] inline tl::unexpected<Error> OwnStateDamaged(std::string message) {
  return tl::unexpected<Error>(Error{Code::kDataLoss, std::move(message), true});
}

inline Status OkStatus() { return {}; }

// The text of an exception caught where a library may throw, for an error's message: "out of
// memory" for std::bad_alloc (whose what() names the C++ type), and otherwise what() without the
// source location Boost appends to a system error's text (" [system:98 at /usr/include/boost/
// ...]"), which names the library's files rather than what went wrong.
[[nodiscard]] std::string ExceptionText(const std::exception& e);

}  // namespace accord

#define ACCORD_CONCAT_INNER_(a, b) a##b
#define ACCORD_CONCAT_(a, b) ACCORD_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (a Status or Result) failed.
#define ACCORD_RETURN_IF_ERROR(expr)                                    \
  do {                                                                  \
    if (auto ACCORD_CONCAT_(accord_status_, __LINE__) = (expr);         \
        !ACCORD_CONCAT_(accord_status_, __LINE__).has_value()) {        \
      return ::tl::unexpected<::accord::Error>(                         \
          std::move(ACCORD_CONCAT_(accord_status_, __LINE__)).error()); \
    }                                                                   \
  } while (false)

// `ACCORD_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result or returns its error.
#define ACCORD_ASSIGN_OR_RETURN(lhs, expr) \
  ACCORD_ASSIGN_OR_RETURN_IMPL_(ACCORD_CONCAT_(accord_result_, __LINE__), lhs, expr)
#define ACCORD_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)                 \
  auto tmp = (expr);                                                  \
  if (!tmp.has_value()) {                                             \
    return ::tl::unexpected<::accord::Error>(std::move(tmp).error()); \
  }                                                                   \
  lhs = std::move(*tmp)

#endif  // ACCORD_STATUS_H_
