// accord/json.h — JSON parsing that refuses an object naming a key twice.
//
// Boost.JSON keeps the last of duplicate keys. Where two readers of one document may differ in
// which one they keep (a proxy, an auditor's script, another JSON library that keeps the first),
// the same bytes mean two things: `{"level":"SECRET","level":"TOP SECRET"}`. RFC 8259 says names
// SHOULD be unique and I-JSON (RFC 7493) that they MUST be. accord parses every document that
// comes from outside (requests, envelopes, receipts, log entries, key files) with `JsonParser`,
// which refuses such a document with "duplicate key `level`". Keys are compared after their escapes
// are decoded, so `"\u006cevel"` is `level`.
//
//   accord::JsonParser parser(options);   // reusable; keeps its buffers between documents
//   auto v = parser.Parse(text);           // or Parse(text, storage) for an arena
//   if (!v) return Fail(Code::kInvalidArgument, "the body is not valid JSON: " + v.error());
//
// Thread safety: one parser per thread; `ParseJson` is safe from any thread.
#ifndef ACCORD_JSON_H_
#define ACCORD_JSON_H_

#include <boost/json/memory_resource.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

namespace accord {

class JsonParser {
 public:
  // `temp`: the memory of the parser's own buffers (default: the heap's).
  explicit JsonParser(const boost::json::parse_options& options = {},
                      boost::json::storage_ptr temp = {});
  ~JsonParser();
  JsonParser(const JsonParser&) = delete;
  JsonParser& operator=(const JsonParser&) = delete;

  // The one JSON document that is the whole of `text` (whitespace around it allowed), its memory
  // taken from `storage`. On failure, a message in the style of accord/status.h: Boost.JSON's
  // ("syntax error", "too deep", …) or "duplicate key `name`". Never throws for bad
  // input; running out of memory throws std::bad_alloc, as Boost.JSON does. After a failure no
  // value is left that uses `storage`.
  [[nodiscard]] tl::expected<boost::json::value, std::string> Parse(
      std::string_view text, boost::json::storage_ptr storage = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One document with a parser made for it, its memory taken from `storage`.
[[nodiscard]] tl::expected<boost::json::value, std::string> ParseJson(
    std::string_view text, const boost::json::parse_options& options = {},
    boost::json::storage_ptr storage = {});

// Memory for a JSON document that holds a secret (a payload in base64): every block is wiped
// when it is freed. Give it to ParseJson as the storage (it then holds the parser's buffers
// too), or to JsonParser's constructor and Parse; it must outlive the value parsed into it.
class WipingJsonResource final : public boost::json::memory_resource {
 private:
  void* do_allocate(size_t bytes, size_t align) override;
  void do_deallocate(void* p, size_t bytes, size_t align) override;
  bool do_is_equal(const boost::json::memory_resource& other) const noexcept override;
};

// A JSON number that is a non-negative integer, as a uint64 (Boost.JSON reads an integer that
// fits an int64 as one, and a larger one as a uint64); nothing for anything else.
[[nodiscard]] std::optional<uint64_t> JsonCount(const boost::json::value& v);

}  // namespace accord

#endif  // ACCORD_JSON_H_
