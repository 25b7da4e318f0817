#include "accord/json.h"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <boost/json/value_stack.hpp>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "accord/secret.h"

namespace accord {
namespace json = boost::json;

namespace {

// A key shown in an error message is cut to this many bytes.
constexpr size_t kMaxKeyShown = 64;

// The handler of Boost.JSON's own `parser` (it builds the value on a value_stack), which also
// counts the members of every object it reads. Boost.JSON's object keeps one member per key, so
// when the value holds fewer members than were read, some object named a key twice (Count below).
// Asked to name the key, it also remembers the keys of every object still open and fails on the
// second use of one: the slower way, for the error message only.
class KeyCheckingHandler {
 public:
  static constexpr size_t max_object_size = json::object::max_size();
  static constexpr size_t max_array_size = json::array::max_size();
  static constexpr size_t max_key_size = json::string::max_size();
  static constexpr size_t max_string_size = json::string::max_size();

  // `temp`: the memory of the value stack's own buffers (a string read in parts, around an
  // escape, waits there), which a document holding a secret wants wiped too.
  explicit KeyCheckingHandler(json::storage_ptr temp = {}) : stack_(std::move(temp)) {}

  // Before each document: its value's memory from `storage`; whether to name a repeated key.
  void Reset(json::storage_ptr storage, bool name_duplicate) {
    stack_.reset(std::move(storage));
    members_ = 0;
    name_duplicate_ = name_duplicate;
    frames_.clear();
    part_.clear();
    duplicate_.reset();
  }
  json::value Release() { return stack_.release(); }
  // The members of the objects read, duplicates included.
  size_t members() const { return members_; }
  // The key named twice, when that is why a parse asked to name it failed.
  const std::optional<std::string>& duplicate() const { return duplicate_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    if (name_duplicate_) frames_.emplace_back();
    return true;
  }
  bool on_object_end(size_t n, json::error_code&) {
    if (name_duplicate_) frames_.pop_back();
    members_ += n;
    stack_.push_object(n);
    return true;
  }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(size_t n, json::error_code&) {
    stack_.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, size_t, json::error_code&) {
    if (name_duplicate_) part_.append(s.data(), s.size());
    stack_.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, size_t, json::error_code& ec) {
    if (name_duplicate_) {
      part_.append(s.data(), s.size());
      // An ordered set per object: n log n comparisons for an object of n keys, whatever the
      // keys (a hash set's fixed seed would let chosen keys collide).
      if (!frames_.back().insert(part_).second) {
        duplicate_.emplace(std::string_view(part_).substr(0, kMaxKeyShown));
        ec = json::error::syntax;  // the message is the handler's (JsonParser::Parse)
        return false;
      }
      part_.clear();
    }
    stack_.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, size_t, json::error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, size_t, json::error_code&) {
    stack_.push_string(s);
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(int64_t i, json::string_view, json::error_code&) {
    stack_.push_int64(i);
    return true;
  }
  bool on_uint64(uint64_t u, json::string_view, json::error_code&) {
    stack_.push_uint64(u);
    return true;
  }
  bool on_double(double d, json::string_view, json::error_code&) {
    stack_.push_double(d);
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    stack_.push_bool(b);
    return true;
  }
  bool on_null(json::error_code&) {
    stack_.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  json::value_stack stack_;
  size_t members_ = 0;
  bool name_duplicate_ = false;
  std::vector<std::set<std::string, std::less<>>> frames_;  // the keys of each open object
  std::string part_;  // the key being read, when it comes in parts or is to be remembered
  std::optional<std::string> duplicate_;
};

// The members of the objects in `v`. Its depth is bounded by the parse's max_depth.
size_t Count(const json::value& v) {
  if (const json::object* o = v.if_object()) {
    size_t n = o->size();
    for (const json::key_value_pair& member : *o) n += Count(member.value());
    return n;
  }
  if (const json::array* a = v.if_array()) {
    size_t n = 0;
    for (const json::value& item : *a) n += Count(item);
    return n;
  }
  return 0;
}

// `key` for a message: printable ASCII kept, every other byte shown as `?`.
std::string Printable(std::string_view key) {
  std::string out(key);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

}  // namespace

struct JsonParser::Impl {
  Impl(const json::parse_options& options, json::storage_ptr temp)
      : parser(options, std::move(temp)) {}
  json::basic_parser<KeyCheckingHandler> parser;
};

JsonParser::JsonParser(const json::parse_options& options, json::storage_ptr temp)
    : impl_(std::make_unique<Impl>(options, std::move(temp))) {}

JsonParser::~JsonParser() = default;

tl::expected<json::value, std::string> JsonParser::Parse(std::string_view text,
                                                         json::storage_ptr storage) {
  json::basic_parser<KeyCheckingHandler>& p = impl_->parser;
  // What a failed or interrupted parse built is freed at once, so that no value keeps the
  // caller's storage beyond this call.
  const auto clear = [&p] { p.handler().Reset({}, false); };
  const auto parse = [&](json::storage_ptr sp, bool name_duplicate) {
    p.reset();
    p.handler().Reset(std::move(sp), name_duplicate);
    json::error_code ec;
    try {
      const size_t n = p.write_some(/*more=*/false, text.data(), text.size(), ec);
      if (!ec && n < text.size()) ec = json::error::extra_data;
    } catch (...) {  // out of memory
      clear();
      throw;
    }
    return ec;
  };
  const json::storage_ptr again = storage;  // for a second reading, in the same memory
  if (const json::error_code ec = parse(std::move(storage), false)) {
    clear();
    return tl::unexpected(ec.message());
  }
  json::value value = p.handler().Release();
  if (Count(value) == p.handler().members()) return value;
  // Some key came twice: read the document again to say which.
  parse(again, true);
  const std::optional<std::string>& duplicate = p.handler().duplicate();
  std::string message =
      duplicate ? "duplicate key `" + Printable(*duplicate) + "`" : std::string("duplicate key");
  clear();
  return tl::unexpected(std::move(message));
}

tl::expected<json::value, std::string> ParseJson(std::string_view text,
                                                 const json::parse_options& options,
                                                 json::storage_ptr storage) {
  JsonParser parser(options, storage);  // its buffers in the same memory as the value
  return parser.Parse(text, std::move(storage));
}

// Boost.JSON asks for no alignment beyond the default one of new, which plain new and delete
// give (aligned new and delete must be paired by alignment, which ASan checks).
void* WipingJsonResource::do_allocate(size_t bytes, size_t align) {
  if (align > __STDCPP_DEFAULT_NEW_ALIGNMENT__) throw std::bad_alloc();
  return ::operator new(bytes);
}

void WipingJsonResource::do_deallocate(void* p, size_t bytes, size_t /*align*/) {
  SecureWipe(p, bytes);
  ::operator delete(p);
}

bool WipingJsonResource::do_is_equal(const json::memory_resource& other) const noexcept {
  return this == &other;
}

std::optional<uint64_t> JsonCount(const json::value& v) {
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64() && v.get_int64() >= 0) return static_cast<uint64_t>(v.get_int64());
  return std::nullopt;
}

}  // namespace accord
