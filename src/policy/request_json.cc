// JSON Lines codec for decision requests, on Boost.JSON. The parser writes into a monotonic
// buffer that is released before each line, and the views handed out point into it.
#include "accord/request_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <optional>
#include <vector>

#include "accord/json.h"
#include "accord/utf8.h"

namespace accord {
namespace json = boost::json;

namespace {

// A decode failure carrying the field path; thrown nowhere: returned up the call chain.
using Fallible = tl::expected<void, std::string>;

std::string At(std::string_view path, std::string_view what) {
  return fmt::format("`{}`: {}", path, what);
}

tl::expected<std::string_view, std::string> GetString(const json::object& obj, std::string_view key,
                                                      std::string_view path, bool required) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || (!required && v->is_null())) {
    if (required) return tl::unexpected(fmt::format("missing field `{}{}`", path, key));
    return std::string_view{};
  }
  if (!v->is_string()) {
    return tl::unexpected(At(fmt::format("{}{}", path, key), "must be a string"));
  }
  const json::string& s = v->get_string();
  return std::string_view(s.data(), s.size());
}

tl::expected<Instant, std::string> GetInstant(const json::object& obj, std::string_view key,
                                              std::string_view path) {
  auto text = GetString(obj, key, path, true);
  if (!text) return tl::unexpected(std::move(text).error());
  auto t = ParseInstant(*text);
  if (!t) return tl::unexpected(At(fmt::format("{}{}", path, key), t.error().message));
  return *t;
}

// `required`: for a list whose absence would widen what a decision allows (an object's topics),
// so that a misspelt field is refused, never read as an empty list.
Fallible GetStringArray(const json::object& obj, std::string_view key, std::string_view path,
                        std::vector<std::string_view>& out, bool required = false) {
  out.clear();
  const json::value* v = obj.if_contains(key);
  if (v == nullptr && required)
    return tl::unexpected(fmt::format("missing field `{}{}`", path, key));
  if (v == nullptr || (!required && v->is_null())) return {};
  if (!v->is_array()) {
    return tl::unexpected(At(fmt::format("{}{}", path, key), "must be an array of strings"));
  }
  if (v->get_array().size() > kMaxLabelListItems) {
    return tl::unexpected(
        At(fmt::format("{}{}", path, key), fmt::format("at most {} items", kMaxLabelListItems)));
  }
  for (const json::value& item : v->get_array()) {
    if (!item.is_string()) {
      return tl::unexpected(At(fmt::format("{}{}", path, key), "must be an array of strings"));
    }
    const json::string& s = item.get_string();
    out.emplace_back(s.data(), s.size());
  }
  return {};
}

// Calls fn(object, index) for each element of an optional array of objects, of at most
// kMaxHistoryEntries: a decision compares each forward with each release, and a request
// carries its history, so its length bounds the work one line of input can ask for.
template <typename Fn>
Fallible ForEachObject(const json::object& obj, std::string_view key, std::string_view path,
                       Fn&& fn) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || v->is_null()) return {};
  if (!v->is_array()) {
    return tl::unexpected(At(fmt::format("{}{}", path, key), "must be an array of objects"));
  }
  const json::array& a = v->get_array();
  if (a.size() > kMaxHistoryEntries) {
    return tl::unexpected(
        At(fmt::format("{}{}", path, key), fmt::format("at most {} entries", kMaxHistoryEntries)));
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_object()) {
      return tl::unexpected(At(fmt::format("{}{}[{}]", path, key, i), "must be an object"));
    }
    if (auto r = fn(a[i].get_object(), fmt::format("{}{}[{}].", path, key, i)); !r) return r;
  }
  return {};
}

bool IsObjectField(std::string_view key) {
  static constexpr std::array<std::string_view, 10> kFields = {
      "id",     "originator", "level",    "topics",   "compartments",
      "rel_to", "releases",   "forwards", "consents", "destroyed_at"};
  return std::find(kFields.begin(), kFields.end(), key) != kFields.end();
}

}  // namespace

struct RequestDecoder::Impl {
  std::array<unsigned char, 16384> first_block{};
  // Made anew for each line: Boost.JSON's release() keeps the size of the next block it would
  // take, which doubles with every line that outgrows the first block, until one line asks for
  // gigabytes (a stream of large lines, or the fuzzer, found it).
  std::optional<json::monotonic_resource> arena;
  JsonParser parser;
  std::string id_json = "null";
  RequestView view;
  std::vector<std::string_view> need_to_know, subject_compartments, topics, compartments, rel_to;
  std::vector<ReleaseView> releases;
  std::vector<ForwardView> forwards;
  std::vector<ConsentView> consents;

  Fallible DecodeObject(const json::object& root) {
    const json::value* ov = root.if_contains("object");
    if (ov == nullptr) return tl::unexpected(std::string("missing field `object`"));
    if (!ov->is_object()) return tl::unexpected(At("object", "must be an object"));
    const json::object& o = ov->get_object();
    ObjectView& out = view.object;
    constexpr std::string_view p = "object.";
    // Unknown fields are ignored elsewhere (decision 15), but not in the object: a misspelt
    // `compartments` or `destroyed_at` would be read as absent, and either one's absence
    // widens what a decision allows (decision 88).
    for (const auto& field : o) {
      if (!IsObjectField(field.key())) {
        return tl::unexpected(
            At(fmt::format("{}{}", p, OneLine(field.key(), 64)), "is not a field of an object"));
      }
    }
    auto id = GetString(o, "id", p, true);
    if (!id) return tl::unexpected(id.error());
    out.id = *id;
    auto originator = GetString(o, "originator", p, true);
    if (!originator) return tl::unexpected(originator.error());
    out.originator = *originator;
    auto level = GetString(o, "level", p, true);
    if (!level) return tl::unexpected(level.error());
    out.level = *level;
    if (auto r = GetStringArray(o, "topics", p, topics, /*required=*/true); !r) return r;
    if (auto r = GetStringArray(o, "compartments", p, compartments); !r) return r;
    if (auto r = GetStringArray(o, "rel_to", p, rel_to); !r) return r;
    releases.clear();
    forwards.clear();
    consents.clear();
    auto r1 = ForEachObject(o, "releases", p,
                            [&](const json::object& e, const std::string& path) -> Fallible {
                              auto to = GetString(e, "to", path, true);
                              if (!to) return tl::unexpected(to.error());
                              auto at = GetInstant(e, "at", path);
                              if (!at) return tl::unexpected(at.error());
                              auto agreement = GetString(e, "agreement", path, true);
                              if (!agreement) return tl::unexpected(agreement.error());
                              auto lvl = GetString(e, "level", path, false);
                              if (!lvl) return tl::unexpected(lvl.error());
                              releases.push_back(ReleaseView{*to, *at, *agreement, *lvl});
                              return {};
                            });
    if (!r1) return r1;
    auto r2 = ForEachObject(o, "forwards", p,
                            [&](const json::object& e, const std::string& path) -> Fallible {
                              auto from = GetString(e, "from", path, true);
                              if (!from) return tl::unexpected(from.error());
                              auto to = GetString(e, "to", path, true);
                              if (!to) return tl::unexpected(to.error());
                              auto at = GetInstant(e, "at", path);
                              if (!at) return tl::unexpected(at.error());
                              auto agreement = GetString(e, "agreement", path, true);
                              if (!agreement) return tl::unexpected(agreement.error());
                              forwards.push_back(ForwardView{*from, *to, *at, *agreement});
                              return {};
                            });
    if (!r2) return r2;
    auto r3 = ForEachObject(o, "consents", p,
                            [&](const json::object& e, const std::string& path) -> Fallible {
                              auto to = GetString(e, "to", path, true);
                              if (!to) return tl::unexpected(to.error());
                              auto at = GetInstant(e, "at", path);
                              if (!at) return tl::unexpected(at.error());
                              consents.push_back(ConsentView{*to, *at});
                              return {};
                            });
    if (!r3) return r3;
    out.destroyed_at.reset();
    if (const json::value* d = o.if_contains("destroyed_at"); d != nullptr && !d->is_null()) {
      auto at = GetInstant(o, "destroyed_at", p);
      if (!at) return tl::unexpected(at.error());
      out.destroyed_at = *at;
    }
    out.topics = topics;
    out.compartments = compartments;
    out.rel_to = rel_to;
    out.releases = releases;
    out.forwards = forwards;
    out.consents = consents;
    return {};
  }

  Fallible DecodeRoot(const json::object& root) {
    auto action_name = GetString(root, "action", "", true);
    if (!action_name) return tl::unexpected(action_name.error());
    auto action = ParseAction(*action_name);
    if (!action) {
      return tl::unexpected(
          At("action", fmt::format("unknown action `{}`; expected read, release or forward",
                                   OneLine(*action_name, 64))));
    }
    view = RequestView{};
    view.action = *action;
    auto at = GetInstant(root, "at", "");
    if (!at) return tl::unexpected(at.error());
    view.at = *at;
    if (auto r = DecodeObject(root); !r) return r;
    if (view.action == Action::kRead) {
      const json::value* sv = root.if_contains("subject");
      if (sv == nullptr) return tl::unexpected(std::string("missing field `subject`"));
      if (!sv->is_object()) return tl::unexpected(At("subject", "must be an object"));
      const json::object& s = sv->get_object();
      auto party = GetString(s, "party", "subject.", true);
      if (!party) return tl::unexpected(party.error());
      auto clearance = GetString(s, "clearance", "subject.", true);
      if (!clearance) return tl::unexpected(clearance.error());
      if (auto r = GetStringArray(s, "need_to_know", "subject.", need_to_know); !r) return r;
      if (auto r = GetStringArray(s, "compartments", "subject.", subject_compartments); !r) {
        return r;
      }
      view.subject = SubjectView{*party, *clearance, need_to_know, subject_compartments};
    } else {
      auto to = GetString(root, "to", "", true);
      if (!to) return tl::unexpected(to.error());
      view.to = *to;
      if (view.action == Action::kForward) {
        auto holder = GetString(root, "holder", "", true);
        if (!holder) return tl::unexpected(holder.error());
        view.holder = *holder;
      }
    }
    return {};
  }
};

RequestDecoder::RequestDecoder() : impl_(std::make_unique<Impl>()) {}
RequestDecoder::~RequestDecoder() = default;

std::string_view RequestDecoder::id_json() const { return impl_->id_json; }

tl::expected<const RequestView*, std::string> RequestDecoder::Decode(std::string_view line) {
  Impl& m = *impl_;
  m.id_json = "null";
  m.arena.emplace(m.first_block.data(), m.first_block.size());
  auto parsed = m.parser.Parse(line, json::storage_ptr(&*m.arena));
  if (!parsed) return tl::unexpected(fmt::format("not valid JSON: {}", parsed.error()));
  const json::value root = std::move(*parsed);
  if (!root.is_object()) return tl::unexpected(std::string("a request must be a JSON object"));
  const json::object& obj = root.get_object();
  if (const json::value* id = obj.if_contains("id")) {
    // A number Boost.JSON holds as a double (a fraction, an exponent, or an integer beyond 64
    // bits) would be written back as another text, or another number: not echoed as given.
    if (id->is_string() || id->is_int64() || id->is_uint64() || id->is_null()) {
      m.id_json = json::serialize(*id);
    } else {
      return tl::unexpected(At("id", "must be a string, an integer of at most 64 bits, or null"));
    }
  }
  // `root` owns no memory of its own (everything is in the arena), so the views outlive it.
  if (auto r = m.DecodeRoot(obj); !r) return tl::unexpected(std::move(r).error());
  return &m.view;
}

void AppendJsonString(std::string& out, std::string_view s) {
  json::serializer sr;
  sr.reset(json::string_view(s.data(), s.size()));
  char buf[256];
  while (!sr.done()) {
    const json::string_view chunk = sr.read(buf, sizeof(buf));
    out.append(chunk.data(), chunk.size());
  }
}

struct ResponseWriter::Impl {
  const Engine& engine;
  ResponseOptions options;
};

ResponseWriter::ResponseWriter(const Engine& engine, ResponseOptions options)
    : impl_(std::make_unique<Impl>(Impl{engine, options})) {}
ResponseWriter::~ResponseWriter() = default;

void ResponseWriter::Write(std::string& out, std::string_view id_json, const RequestView& request,
                           const Decision& d) {
  const Engine& e = impl_->engine;
  out += "{\"id\":";
  out += id_json;
  out += d.allow ? ",\"decision\":\"allow\",\"reason\":\"" : ",\"decision\":\"deny\",\"reason\":\"";
  out += ReasonName(d.reason);
  out += "\",\"agreement\":";
  if (d.agreement >= 0) {
    AppendJsonString(out, e.agreement(d.agreement).id);
  } else {
    out += "null";
  }
  out += ",\"marking\":";
  if (d.marking.party >= 0) {
    const Party& p = e.party(d.marking.party);
    out += "{\"party\":";
    AppendJsonString(out, p.id);
    out += ",\"level\":";
    AppendJsonString(out, p.levels[d.marking.level].id);
    out += ",\"originator\":";
    AppendJsonString(out, e.party(d.marking.originator).id);
    out += "}";
  } else {
    out += "null";
  }
  const bool invalid = d.reason == Reason::kInvalidRequest;
  const std::vector<std::string> why =
      invalid || impl_->options.explain ? e.Explain(request, d) : std::vector<std::string>{};
  if (invalid) {
    // As for a line that could not be decoded: what is wrong with the request, even without
    // --explain. Its one sentence (Explain always has it) is also the explanation.
    out += ",\"error\":";
    AppendJsonString(out, why.front());
  }
  if (impl_->options.explain) {
    out += ",\"explain\":[";
    bool first = true;
    for (const std::string& line : why) {
      if (!first) out += ',';
      first = false;
      AppendJsonString(out, line);
    }
    out += "]";
  }
  out += "}\n";
}

void ResponseWriter::WriteInvalid(std::string& out, std::string_view id_json,
                                  std::string_view error) {
  out += "{\"id\":";
  out += id_json;
  out +=
      ",\"decision\":\"deny\",\"reason\":\"invalid-request\",\"agreement\":null,\"marking\":null,"
      "\"error\":";
  AppendJsonString(out, error);
  out += "}\n";
}

std::string LineTooLongError(size_t max_line) {
  return fmt::format("line longer than {} bytes", max_line);
}

void DecideLines(std::string_view lines, const Engine& engine, RequestDecoder& decoder,
                 ResponseWriter& writer, std::string& out, size_t max_line) {
  while (!lines.empty()) {
    const size_t nl = lines.find('\n');
    std::string_view line = lines.substr(0, nl);
    lines.remove_prefix(nl == std::string_view::npos ? lines.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      continue;  // blank lines are skipped
    }
    if (line.size() > max_line) {
      writer.WriteInvalid(out, "null", LineTooLongError(max_line));
      continue;
    }
    auto request = decoder.Decode(line);
    if (!request) {
      writer.WriteInvalid(out, decoder.id_json(), request.error());
    } else {
      writer.Write(out, decoder.id_json(), **request, engine.Decide(**request));
    }
  }
}

}  // namespace accord
