// accord/config.h — the policy directory (DESIGN.md §4) read into a `Policy`.
//
// A policy directory holds `parties.toml`, `agreements/*.toml` (one agreement each, read in file
// name order) and optionally `subjects.toml`. Every mistake is reported with its file, line and
// column, and loading goes on after a mistake so that one run lists them all.
//
// The loader never throws: toml11's exceptions are caught at the call and become diagnostics.
//
// Thread safety: stateless functions.
#ifndef ACCORD_CONFIG_H_
#define ACCORD_CONFIG_H_

#include <cstdint>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "accord/model.h"
#include "accord/status.h"

namespace accord {

// One mistake in a policy file. `line` and `column` are 1-based; 0 when the mistake concerns the
// whole file (a missing file, say).
struct Diagnostic {
  std::string file;
  uint32_t line = 0;
  uint32_t column = 0;
  std::string message;

  // "agreements/kor-jpn.toml:17:14: unknown level `X` for party `JPN`"
  [[nodiscard]] std::string ToString() const;
};

// The text of one TOML file (of a policy, or `serve.toml`) and the name it is reported under.
struct PolicyFile {
  std::string name;
  std::string text;
};

// A policy directory's files, already read (the fuzzer and tests build these in memory).
struct PolicySources {
  PolicyFile parties;
  std::vector<PolicyFile> agreements;
  std::optional<PolicyFile> subjects;
};

using LoadResult = tl::expected<Policy, std::vector<Diagnostic>>;

// Parses and validates. On failure returns every diagnostic, ordered by file, line and column.
[[nodiscard]] LoadResult LoadPolicy(const PolicySources& sources);

// The largest TOML file accord reads: a policy's files, a node's `serve.toml`. A file larger
// than this is refused before it is read.
inline constexpr size_t kMaxTomlFileBytes = 64 << 20;

// Reads the directory and calls LoadPolicy. File names in diagnostics are `dir/parties.toml` etc.
// A file larger than kMaxTomlFileBytes is a diagnostic.
[[nodiscard]] LoadResult LoadPolicyDir(const std::filesystem::path& dir);

// The most arrays and tables a TOML file read by accord may nest. toml11 3.7 parses arrays and
// inline tables recursively, and copies and frees every table recursively (a dotted key's
// parts are nested tables): a file nested deeply enough overflows the stack.
inline constexpr int kMaxTomlNesting = 32;

// Where `text`, TOML, nests arrays and tables deeper than kMaxTomlNesting (each bracket open, each
// dot of a dotted key and each part of a table header a level, added up: a header's, a key's under
// it, the keys of inline tables in its value), as a diagnostic of `file`; nullopt when it does not.
// Strings and comments are skipped as toml11 reads them. Run it before toml::parse on any file from
// outside.
[[nodiscard]] std::optional<Diagnostic> TomlTooDeep(std::string_view text, const std::string& file);

// Where `text` cannot be given to toml11 3.7 safely, as a diagnostic of `file`: the first byte
// that is not well-formed UTF-8 (TOML files are UTF-8, and toml11 3.7 reads past its buffer on
// such a byte inside a literal string: its issue #199, fixed after the release Debian 12 ships),
// then TomlTooDeep. nullopt when it can. Run it before toml::parse on any file from outside.
[[nodiscard]] std::optional<Diagnostic> TomlUnsafe(std::string_view text, const std::string& file);

// The diagnostic of one line for `e`, thrown by toml::parse on `file`'s text: where toml11 says
// the mistake is (a malformed date or time, which toml11 3.7 places on line 1 of its own text,
// moved to its line in the file; the value it could not read, rather than its key), and the first
// line of toml11's message with its note (a bare word where a value goes: "text goes in
// quotes"). An exception that is not toml11's (out of memory) is said as such, with no line.
[[nodiscard]] Diagnostic TomlParseDiagnostic(const std::exception& e, const PolicyFile& file);

// One Error for callers that need a Status: the first diagnostic, and how many more there are.
[[nodiscard]] Error DiagnosticsToError(const std::vector<Diagnostic>& diagnostics);

}  // namespace accord

#endif  // ACCORD_CONFIG_H_
