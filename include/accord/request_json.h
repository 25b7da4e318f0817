// accord/request_json.h — the JSON Lines wire format of `accord decide` (DESIGN.md §4).
//
// `RequestDecoder` turns one line of JSON into a `RequestView` whose strings point into the
// decoder's own buffers, reused from line to line, so that a long stream runs in flat memory.
// `ResponseWriter` appends one response line. `DecideLines` runs both over many lines.
//
// Every instant in a request must carry an offset; a plain date is an error. Unknown fields are
// ignored (newer clients may send more); missing or mistyped fields are errors naming the field.
//
// Thread safety: a decoder or writer is used by one thread at a time; use one per thread.
#ifndef ACCORD_REQUEST_JSON_H_
#define ACCORD_REQUEST_JSON_H_

#include <memory>
#include <string>
#include <string_view>

#include "accord/engine.h"

namespace accord {

// The most entries a request's `releases`, `forwards` or `consents` may hold. A decision
// compares each forward with each release, so this bounds what one line of input costs; an
// object's real history is a few entries per partner.
inline constexpr size_t kMaxHistoryEntries = 256;

// The most items an object's `topics`, `compartments` or `rel_to`, or a subject's
// `need_to_know` or `compartments`, may hold. A decision compares each object topic with each
// of the subject's, and compartments likewise; a node's labels have the same bound.
inline constexpr size_t kMaxLabelListItems = 256;

class RequestDecoder {
 public:
  RequestDecoder();
  ~RequestDecoder();
  RequestDecoder(const RequestDecoder&) = delete;
  RequestDecoder& operator=(const RequestDecoder&) = delete;

  // Decodes one request. On success the view stays valid until the next call to Decode. On
  // failure returns a one-line message such as "`object.releases[0].at`: bad instant ...".
  [[nodiscard]] tl::expected<const RequestView*, std::string> Decode(std::string_view line);

  // The request's `id` as JSON text ("\"q1\"", "7", or "null" when absent or unreadable), from the
  // last call to Decode, so that even a malformed line is answered with its id.
  [[nodiscard]] std::string_view id_json() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ResponseOptions {
  bool explain = true;  // include the "explain" array
};

class ResponseWriter {
 public:
  explicit ResponseWriter(const Engine& engine, ResponseOptions options = {});
  ~ResponseWriter();
  ResponseWriter(const ResponseWriter&) = delete;
  ResponseWriter& operator=(const ResponseWriter&) = delete;

  // Appends {"id",...,"decision","reason","agreement","marking","explain"} and a newline; an
  // invalid-request also has "error" (its one sentence), as WriteInvalid's answer has.
  void Write(std::string& out, std::string_view id_json, const RequestView& request,
             const Decision& decision);
  // Appends the answer to a line that could not be decoded: a deny with reason invalid-request.
  void WriteInvalid(std::string& out, std::string_view id_json, std::string_view error);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Appends `s` as a JSON string literal (quoted and escaped) to `out`.
void AppendJsonString(std::string& out, std::string_view s);

// Decides every line of `lines` (JSON Lines: blank lines skipped, a trailing '\r' dropped) and
// appends one response line per request to `out`: the loop of `accord decide` and of
// `POST /v1/decide`. A line longer than `max_line` bytes (default: no bound) is not decoded; it is
// answered as invalid, with id null and LineTooLongError's message.
void DecideLines(std::string_view lines, const Engine& engine, RequestDecoder& decoder,
                 ResponseWriter& writer, std::string& out,
                 size_t max_line = std::string_view::npos);
// "line longer than N bytes": DecideLines's answer to such a line, and `accord decide`'s to one
// whose end it does not wait for.
[[nodiscard]] std::string LineTooLongError(size_t max_line);

}  // namespace accord

#endif  // ACCORD_REQUEST_JSON_H_
