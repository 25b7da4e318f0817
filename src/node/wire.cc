#include "wire.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <limits>

#include "accord/json.h"
#include "accord/utf8.h"

namespace accord::node_internal {
namespace json = boost::json;
namespace {

constexpr size_t kMaxListItems = 256;
constexpr size_t kMaxIdBytes = 256;

std::string_view AsText(ByteView bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

Bytes ToBytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

// Reads typed fields of one JSON object; the first problem wins and names the field.
class Fields {
 public:
  Fields(const json::object& object, std::string_view what) : object_(object), what_(what) {}

  Result<std::string> Text(std::string_view key, size_t max = kMaxIdBytes) const {
    const json::value* v = object_.if_contains(key);
    if (v == nullptr || !v->is_string()) {
      return Missing(key, "a string");
    }
    const json::string& s = v->get_string();
    if (s.size() > max) {
      return Fail(Code::kInvalidArgument, fmt::format("{}: `{}` is too long", what_, key));
    }
    return std::string(s);
  }

  // An id, a party, a kind: text a person reads in a log or a terminal, so without a control
  // or bidirectional formatting character that would show it as another (decision #129).
  Result<std::string> NonEmpty(std::string_view key) const {
    ACCORD_ASSIGN_OR_RETURN(std::string s, Text(key));
    if (s.empty()) {
      return Fail(Code::kInvalidArgument, fmt::format("{}: `{}` is empty", what_, key));
    }
    if (!IsPlainText(s)) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("{}: `{}` holds a control or bidirectional formatting character",
                              what_, key));
    }
    return s;
  }

  Result<Instant> At(std::string_view key) const {
    ACCORD_ASSIGN_OR_RETURN(std::string s, Text(key));
    auto t = ParseInstant(s);
    if (!t) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("{}: `{}`: {}", what_, key, t.error().message));
    }
    return *t;
  }

  Result<int64_t> Integer(std::string_view key) const {
    const json::value* v = object_.if_contains(key);
    if (v == nullptr || !v->is_int64()) {
      return Missing(key, "an integer");
    }
    return v->get_int64();
  }

  Result<Bytes> Base64(std::string_view key, size_t max) const {
    ACCORD_ASSIGN_OR_RETURN(std::string s, Text(key, max / 3 * 4 + 4));
    auto b = Base64Decode(s);
    if (!b) {
      return Fail(Code::kInvalidArgument, fmt::format("{}: `{}` is not base64", what_, key));
    }
    return std::move(*b);
  }

  Result<std::vector<std::string>> List(std::string_view key) const {
    const json::value* v = object_.if_contains(key);
    if (v == nullptr || !v->is_array()) {
      return Missing(key, "a list of strings");
    }
    const json::array& a = v->get_array();
    if (a.size() > kMaxListItems) {
      return Fail(Code::kInvalidArgument, fmt::format("{}: `{}` is too long", what_, key));
    }
    std::vector<std::string> out;
    out.reserve(a.size());
    for (const json::value& item : a) {
      if (!item.is_string() || item.get_string().empty() ||
          item.get_string().size() > kMaxIdBytes) {
        return Missing(key, "a list of non-empty strings");
      }
      out.emplace_back(item.get_string());
    }
    return out;
  }

  Result<const json::object*> Object(std::string_view key) const {
    const json::value* v = object_.if_contains(key);
    if (v == nullptr || !v->is_object()) {
      return Missing(key, "an object");
    }
    return &v->get_object();
  }

  bool Has(std::string_view key) const { return object_.contains(key); }

 private:
  tl::unexpected<Error> Missing(std::string_view key, std::string_view type) const {
    return Fail(Code::kInvalidArgument, fmt::format("{}: `{}` must be {}", what_, key, type));
  }
  const json::object& object_;
  std::string_view what_;
};

Result<json::object> ParseObject(ByteView bytes, std::string_view what) {
  json::parse_options opts;
  opts.max_depth = 16;
  auto parsed = ParseJson(AsText(bytes), opts);
  if (!parsed) {
    return Fail(Code::kInvalidArgument,
                fmt::format("{} is not valid JSON: {}", what, parsed.error()));
  }
  json::value& v = *parsed;
  if (!v.is_object()) {
    return Fail(Code::kInvalidArgument, fmt::format("{} is not a JSON object", what));
  }
  return std::move(v.get_object());
}

json::array ToArray(const std::vector<std::string>& items) {
  json::array a;
  for (const auto& s : items) {
    a.emplace_back(s);
  }
  return a;
}

Bytes Serialize(const json::object& o) { return ToBytes(json::serialize(o)); }

void AppendField(Bytes& out, std::string_view field) {
  const uint64_t n = field.size();
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<uint8_t>(n >> shift));
  }
  out.insert(out.end(), field.begin(), field.end());
}

Result<Label> ParseLabel(const json::object& o) {
  Fields f(o, "label");
  Label l;
  ACCORD_ASSIGN_OR_RETURN(l.id, f.NonEmpty("id"));
  ACCORD_ASSIGN_OR_RETURN(l.originator, f.NonEmpty("originator"));
  ACCORD_ASSIGN_OR_RETURN(l.level, f.NonEmpty("level"));
  ACCORD_ASSIGN_OR_RETURN(l.topics, f.List("topics"));
  ACCORD_ASSIGN_OR_RETURN(l.compartments, f.List("compartments"));
  ACCORD_ASSIGN_OR_RETURN(l.rel_to, f.List("rel_to"));
  ACCORD_ASSIGN_OR_RETURN(l.version, f.Integer("version"));
  if (l.version < 1) {
    return Fail(Code::kInvalidArgument, "label: `version` must be at least 1");
  }
  if (f.Has("commitment")) {
    ACCORD_ASSIGN_OR_RETURN(l.commitment, f.Text("commitment", 64));
    const bool hex = l.commitment.size() == 64 &&
                     l.commitment.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex) {
      return Fail(Code::kInvalidArgument, "label: `commitment` must be 64 lowercase hex digits");
    }
  }
  return l;
}

Result<LogEvidence> ParseEvidence(const json::object& o, std::string_view what) {
  Fields l(o, what);
  LogEvidence ev;
  ACCORD_ASSIGN_OR_RETURN(ev.checkpoint, l.Text("checkpoint", 64 << 10));
  ACCORD_ASSIGN_OR_RETURN(int64_t index, l.Integer("index"));
  if (index < 0) {
    return Fail(Code::kInvalidArgument, fmt::format("{}: `index` is negative", what));
  }
  ev.index = static_cast<uint64_t>(index);
  ACCORD_ASSIGN_OR_RETURN(ev.entry, l.Base64("entry", 64 << 10));
  ACCORD_ASSIGN_OR_RETURN(std::vector<std::string> proof, l.List("proof"));
  if (proof.size() > 64) {
    return Fail(Code::kInvalidArgument, fmt::format("{}: the proof is too long", what));
  }
  for (const std::string& hex : proof) {
    auto hash = HexDecode(hex);
    if (!hash || hash->size() != 32) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("{}: a proof hash is not 64 hex digits", what));
    }
    std::array<uint8_t, 32> h{};
    std::copy(hash->begin(), hash->end(), h.begin());
    ev.proof.push_back(h);
  }
  return ev;
}

json::object EvidenceJson(const LogEvidence& ev) {
  json::array proof;
  for (const auto& h : ev.proof) {
    proof.emplace_back(HexEncode(h));
  }
  return json::object{{"checkpoint", ev.checkpoint},
                      {"index", ev.index},
                      {"entry", Base64Encode(ev.entry)},
                      {"proof", std::move(proof)}};
}

json::object LabelJson(const Label& l) {
  json::object o{{"id", l.id},
                 {"originator", l.originator},
                 {"level", l.level},
                 {"topics", ToArray(l.topics)},
                 {"compartments", ToArray(l.compartments)},
                 {"rel_to", ToArray(l.rel_to)},
                 {"version", l.version}};
  if (!l.commitment.empty()) o["commitment"] = l.commitment;
  return o;
}

}  // namespace

Result<Envelope> ParseEnvelope(ByteView bytes, size_t max_bytes) {
  if (bytes.size() > max_bytes) {
    return Fail(
        Code::kInvalidArgument,
        fmt::format("package of {} bytes exceeds the limit of {} bytes", bytes.size(), max_bytes));
  }
  ACCORD_ASSIGN_OR_RETURN(json::object o, ParseObject(bytes, "package"));
  Fields f(o, "package");
  ACCORD_ASSIGN_OR_RETURN(std::string format, f.Text("format"));
  if (format != kFormat) {
    return Fail(
        Code::kInvalidArgument,
        fmt::format("package: unknown format `{}` (this node reads `{}`)", format, kFormat));
  }
  Envelope e;
  ACCORD_ASSIGN_OR_RETURN(e.kind, f.NonEmpty("kind"));
  ACCORD_ASSIGN_OR_RETURN(e.signer, f.NonEmpty("signer"));
  ACCORD_ASSIGN_OR_RETURN(e.body, f.Base64("body", max_bytes));
  ACCORD_ASSIGN_OR_RETURN(e.signature, f.Base64("signature", 128));
  static constexpr std::string_view kKinds[] = {"release", "forward", "consent", "reclassify",
                                                "destroy", "report",  "receipt"};
  if (std::find(std::begin(kKinds), std::end(kKinds), e.kind) == std::end(kKinds)) {
    return Fail(Code::kInvalidArgument, fmt::format("package: unknown kind `{}`", e.kind));
  }
  if (e.signature.size() != kSignatureSize) {
    return Fail(Code::kInvalidArgument, "package: `signature` must be 64 bytes");
  }
  if (f.Has("log")) {
    ACCORD_ASSIGN_OR_RETURN(const json::object* log, f.Object("log"));
    ACCORD_ASSIGN_OR_RETURN(e.log, ParseEvidence(*log, "package log"));
  }
  return e;
}

Bytes SignedMessage(std::string_view kind, std::string_view signer, ByteView body) {
  // Built as a string: GCC 12 warns falsely (stringop-overflow) on chained vector inserts.
  std::string head;
  head.reserve(kFormat.size() + kind.size() + signer.size() + 3);
  head.append(kFormat).append("\n").append(kind).append("\n").append(signer).append("\n");
  Bytes m(head.size() + body.size());
  std::copy(head.begin(), head.end(), m.begin());
  std::copy(body.begin(), body.end(), m.begin() + static_cast<ptrdiff_t>(head.size()));
  return m;
}

Envelope SealEnvelope(std::string_view kind, std::string_view signer, ByteView body,
                      const SigningKey& key) {
  Envelope e{std::string(kind), std::string(signer), Bytes(body.begin(), body.end()),
             key.Sign(SignedMessage(kind, signer, body)), std::nullopt};
  return e;
}

Bytes EncodeEnvelope(const Envelope& e) {
  json::object o{{"format", kFormat},
                 {"kind", e.kind},
                 {"signer", e.signer},
                 {"body", Base64Encode(e.body)},
                 {"signature", Base64Encode(e.signature)}};
  if (e.log) o["log"] = EvidenceJson(*e.log);
  Bytes out = Serialize(o);
  out.push_back('\n');
  return out;
}

Status CheckLabelList(std::string_view key, const std::vector<std::string>& list) {
  if (list.size() > kMaxListItems) {
    return Fail(Code::kInvalidArgument,
                fmt::format("`{}` has {} items: at most {}", key, list.size(), kMaxListItems));
  }
  for (const std::string& item : list) {
    if (item.empty() || item.size() > kMaxIdBytes) {
      return Fail(Code::kInvalidArgument, fmt::format("an item of `{}` is {} bytes: 1 to {}", key,
                                                      item.size(), kMaxIdBytes));
    }
  }
  return OkStatus();
}

std::string ContentCommitment(ByteView content) { return HexEncode(Sha256(content)); }

Bytes EncodeLabel(const Label& label) {
  Bytes out;
  AppendField(out, "accord-label/1");
  AppendField(out, label.id);
  AppendField(out, label.originator);
  AppendField(out, label.level);
  AppendField(out, std::to_string(label.version));
  for (const auto* list : {&label.topics, &label.compartments, &label.rel_to}) {
    AppendField(out, std::to_string(list->size()));
    for (const auto& item : *list) {
      AppendField(out, item);
    }
  }
  // After the counted lists, so that a label without one encodes as before, and no label
  // without one encodes as a label with one.
  if (!label.commitment.empty()) {
    AppendField(out, "commitment");
    AppendField(out, label.commitment);
  }
  return out;
}

Bytes EncodePackageBody(const PackageBody& b) {
  json::object o{{"id", b.id},
                 {"kind", b.kind},
                 {"from", b.from},
                 {"to", b.to},
                 {"at", FormatInstant(b.at)},
                 {"agreement", b.agreement},
                 {"label", LabelJson(b.label)},
                 {"marking", json::object{{"party", b.marking_party},
                                          {"level", b.marking_level},
                                          {"originator", b.label.originator}}},
                 {"wrapped_key", Base64Encode(b.wrapped_key)},
                 {"ciphertext", Base64Encode(b.ciphertext)}};
  if (b.held_release) {
    o["held_release"] = json::object{{"to", b.held_release->to},
                                     {"at", FormatInstant(b.held_release->at)},
                                     {"agreement", b.held_release->agreement}};
    o["consent"] = Base64Encode(b.consent);
    if (b.held_log) o["held_log"] = EvidenceJson(*b.held_log);
    if (!b.reclassification.empty()) {
      o["reclassification"] = Base64Encode(b.reclassification);
    }
  }
  return Serialize(o);
}

Result<PackageBody> ParsePackageBody(ByteView bytes) {
  ACCORD_ASSIGN_OR_RETURN(json::object o, ParseObject(bytes, "package body"));
  Fields f(o, "package body");
  PackageBody b;
  ACCORD_ASSIGN_OR_RETURN(b.id, f.NonEmpty("id"));
  ACCORD_ASSIGN_OR_RETURN(b.kind, f.NonEmpty("kind"));
  if (!IsPackageKind(b.kind)) {
    return Fail(Code::kInvalidArgument, fmt::format("package body: unknown kind `{}`", b.kind));
  }
  ACCORD_ASSIGN_OR_RETURN(b.from, f.NonEmpty("from"));
  ACCORD_ASSIGN_OR_RETURN(b.to, f.NonEmpty("to"));
  ACCORD_ASSIGN_OR_RETURN(b.at, f.At("at"));
  ACCORD_ASSIGN_OR_RETURN(b.agreement, f.NonEmpty("agreement"));
  ACCORD_ASSIGN_OR_RETURN(const json::object* label, f.Object("label"));
  ACCORD_ASSIGN_OR_RETURN(b.label, ParseLabel(*label));
  ACCORD_ASSIGN_OR_RETURN(const json::object* marking, f.Object("marking"));
  Fields m(*marking, "marking");
  ACCORD_ASSIGN_OR_RETURN(b.marking_party, m.NonEmpty("party"));
  ACCORD_ASSIGN_OR_RETURN(b.marking_level, m.NonEmpty("level"));
  ACCORD_ASSIGN_OR_RETURN(std::string marking_originator, m.NonEmpty("originator"));
  if (marking_originator != b.label.originator || b.marking_party != b.to) {
    return Fail(Code::kInvalidArgument, "package body: the marking does not match the label");
  }
  ACCORD_ASSIGN_OR_RETURN(b.wrapped_key, f.Base64("wrapped_key", 1024));
  ACCORD_ASSIGN_OR_RETURN(b.ciphertext,
                          f.Base64("ciphertext", std::numeric_limits<size_t>::max() / 2));
  if (b.kind == "forward") {
    ACCORD_ASSIGN_OR_RETURN(const json::object* held, f.Object("held_release"));
    Fields h(*held, "held_release");
    HistoryRelease r;
    ACCORD_ASSIGN_OR_RETURN(r.to, h.NonEmpty("to"));
    ACCORD_ASSIGN_OR_RETURN(r.at, h.At("at"));
    ACCORD_ASSIGN_OR_RETURN(r.agreement, h.NonEmpty("agreement"));
    b.held_release = std::move(r);
    ACCORD_ASSIGN_OR_RETURN(b.consent, f.Base64("consent", 1 << 20));
    if (f.Has("held_log")) {
      ACCORD_ASSIGN_OR_RETURN(const json::object* held_log, f.Object("held_log"));
      ACCORD_ASSIGN_OR_RETURN(b.held_log, ParseEvidence(*held_log, "held_log"));
    }
    if (f.Has("reclassification")) {
      ACCORD_ASSIGN_OR_RETURN(b.reclassification, f.Base64("reclassification", 1 << 20));
      if (b.reclassification.empty()) {
        return Fail(Code::kInvalidArgument, "package body: `reclassification` is empty");
      }
    }
  } else if (f.Has("held_release") || f.Has("held_log") || f.Has("consent") ||
             f.Has("reclassification")) {
    return Fail(Code::kInvalidArgument, "package body: a release carries no forward history");
  }
  return b;
}

Bytes EncodeNoticeBody(const NoticeBody& b) {
  json::object o{{"id", b.id},
                 {"kind", b.kind},
                 {"object", b.object_id},
                 {"originator", b.originator},
                 {"by", b.by},
                 {"at", FormatInstant(b.at)}};
  if (b.kind == "consent") {
    o["to"] = b.to;
    if (b.label) o["label"] = LabelJson(*b.label);
  } else if (b.kind == "reclassify") {
    o["level"] = b.level;
    o["version"] = b.version;
  } else if (b.kind == "report") {
    o["report"] = b.report_kind;
    o["text"] = b.text;
  }
  return Serialize(o);
}

Result<NoticeBody> ParseNoticeBody(std::string_view kind, ByteView bytes) {
  ACCORD_ASSIGN_OR_RETURN(json::object o, ParseObject(bytes, "notice"));
  Fields f(o, "notice");
  NoticeBody b;
  ACCORD_ASSIGN_OR_RETURN(b.id, f.NonEmpty("id"));
  ACCORD_ASSIGN_OR_RETURN(b.kind, f.NonEmpty("kind"));
  if (b.kind != kind) {
    return Fail(Code::kInvalidArgument,
                fmt::format("notice: kind `{}` inside an envelope of kind `{}`", b.kind, kind));
  }
  ACCORD_ASSIGN_OR_RETURN(b.object_id, f.NonEmpty("object"));
  ACCORD_ASSIGN_OR_RETURN(b.originator, f.NonEmpty("originator"));
  ACCORD_ASSIGN_OR_RETURN(b.by, f.NonEmpty("by"));
  ACCORD_ASSIGN_OR_RETURN(b.at, f.At("at"));
  if (kind == "consent") {
    ACCORD_ASSIGN_OR_RETURN(b.to, f.NonEmpty("to"));
    if (f.Has("label")) {
      ACCORD_ASSIGN_OR_RETURN(const json::object* label, f.Object("label"));
      ACCORD_ASSIGN_OR_RETURN(b.label, ParseLabel(*label));
      if (b.label->id != b.object_id || b.label->originator != b.originator) {
        return Fail(Code::kInvalidArgument, "notice: the consent's label is of another object");
      }
    }
  } else if (kind == "reclassify") {
    ACCORD_ASSIGN_OR_RETURN(b.level, f.NonEmpty("level"));
    ACCORD_ASSIGN_OR_RETURN(b.version, f.Integer("version"));
    if (b.version < 2) {
      return Fail(Code::kInvalidArgument, "notice: a reclassification's `version` is at least 2");
    }
  } else if (kind == "report") {
    ACCORD_ASSIGN_OR_RETURN(b.report_kind, f.NonEmpty("report"));
    if (b.report_kind != "loss" && b.report_kind != "compromise") {
      return Fail(Code::kInvalidArgument, "notice: `report` must be `loss` or `compromise`");
    }
    ACCORD_ASSIGN_OR_RETURN(b.text, f.Text("text", kMaxReportTextBytes));
  } else if (kind != "destroy") {
    return Fail(Code::kInvalidArgument, fmt::format("notice: unknown kind `{}`", kind));
  }
  if (kind != "report" && b.by != b.originator) {
    return Fail(Code::kInvalidArgument, "notice: only the originator issues this notice");
  }
  return b;
}

Bytes EncodeReceiptBody(const ReceiptBody& b) {
  return Serialize(json::object{{"package", b.package_id},
                                {"digest", b.package_digest},
                                {"kind", b.kind},
                                {"object", b.object_id},
                                {"from", b.from},
                                {"by", b.by},
                                {"at", FormatInstant(b.at)}});
}

Result<ReceiptBody> ParseReceiptBody(ByteView bytes) {
  ACCORD_ASSIGN_OR_RETURN(json::object o, ParseObject(bytes, "receipt"));
  Fields f(o, "receipt");
  ReceiptBody b;
  ACCORD_ASSIGN_OR_RETURN(b.package_id, f.NonEmpty("package"));
  ACCORD_ASSIGN_OR_RETURN(b.package_digest, f.NonEmpty("digest"));
  ACCORD_ASSIGN_OR_RETURN(b.kind, f.NonEmpty("kind"));
  ACCORD_ASSIGN_OR_RETURN(b.object_id, f.NonEmpty("object"));
  ACCORD_ASSIGN_OR_RETURN(b.from, f.NonEmpty("from"));
  ACCORD_ASSIGN_OR_RETURN(b.by, f.NonEmpty("by"));
  ACCORD_ASSIGN_OR_RETURN(b.at, f.At("at"));
  return b;
}

Status CheckForwardLabel(const Label& label, const Label& consented,
                         const NoticeBody* reclassification) {
  const auto unlike = [&](std::string_view field) {
    return Fail(Code::kPermissionDenied,
                fmt::format("the forward's label of `{}` differs in `{}` from the one its "
                            "originator `{}` consented under",
                            label.id, field, consented.originator));
  };
  if (label.id != consented.id) return unlike("id");
  if (label.originator != consented.originator) return unlike("originator");
  if (label.topics != consented.topics) return unlike("topics");
  if (label.compartments != consented.compartments) return unlike("compartments");
  if (label.rel_to != consented.rel_to) return unlike("rel_to");
  if (label.commitment != consented.commitment) return unlike("commitment");
  if (label.version < consented.version) {
    return Fail(Code::kFailedPrecondition,
                fmt::format("the forward labels `{}` version {}, older than the version {} its "
                            "originator consented at: the forwarder has not applied the "
                            "reclassification",
                            label.id, label.version, consented.version));
  }
  if (label.version == consented.version) {
    if (label.level != consented.level) return unlike("level");
    if (reclassification != nullptr) {
      return Fail(Code::kInvalidArgument,
                  fmt::format("the forward of `{}` carries a reclassification its label, the "
                              "consented one, does not need",
                              label.id));
    }
    return OkStatus();
  }
  if (reclassification == nullptr) {
    return Fail(Code::kPermissionDenied,
                fmt::format("the forward labels `{}` version {}, newer than the version {} its "
                            "originator consented at, without the originator's reclassification",
                            label.id, label.version, consented.version));
  }
  if (reclassification->kind != "reclassify" || reclassification->object_id != label.id ||
      reclassification->originator != label.originator ||
      reclassification->version != label.version || reclassification->level != label.level) {
    return Fail(Code::kPermissionDenied,
                fmt::format("the forward's reclassification (`{}` version {} at {}) is not the "
                            "one its label gives (version {} at {})",
                            reclassification->object_id, reclassification->version,
                            reclassification->level, label.version, label.level));
  }
  return OkStatus();
}

Status ParseAnyBody(std::string_view kind, ByteView body) {
  if (IsPackageKind(kind)) {
    ACCORD_RETURN_IF_ERROR(ParsePackageBody(body));
  } else if (kind == "receipt") {
    ACCORD_RETURN_IF_ERROR(ParseReceiptBody(body));
  } else {
    ACCORD_RETURN_IF_ERROR(ParseNoticeBody(kind, body));
  }
  return OkStatus();
}

std::string EncodePublicKeys(const PublicKeys& keys) {
  return json::serialize(json::object{{"format", "accord-public/1"},
                                      {"party", keys.party},
                                      {"sign", Base64Encode(keys.sign)},
                                      {"wrap", Base64Encode(keys.wrap)}}) +
         "\n";
}

Result<PublicKeys> ParsePublicKeys(std::string_view text) {
  auto v = ParseJson(text);
  if (!v) {  // not JSON, or a key twice: what is wrong, then what was expected
    return Fail(Code::kInvalidArgument,
                fmt::format("not a public key file ({}; expected the output of `accord keys "
                            "export-public`)",
                            v.error()));
  }
  const json::object* o = v->if_object();
  auto field = [&](const char* key) -> std::string {
    const json::value* f = o == nullptr ? nullptr : o->if_contains(key);
    return f != nullptr && f->is_string() ? std::string(f->get_string()) : std::string();
  };
  if (field("format") != "accord-public/1") {
    return Fail(Code::kInvalidArgument,
                "not a public key file (expected the output of `accord keys export-public`)");
  }
  auto sign = Base64Decode(field("sign"));
  auto wrap = Base64Decode(field("wrap"));
  if (!sign || sign->size() != kPublicKeySize || !wrap || wrap->size() != kPublicKeySize) {
    return Fail(Code::kInvalidArgument, "the public key file has malformed keys");
  }
  PublicKeys keys;
  keys.party = field("party");
  if (keys.party.empty()) {
    return Fail(Code::kInvalidArgument, "the public key file names no party (`party`)");
  }
  std::copy(sign->begin(), sign->end(), keys.sign.begin());
  std::copy(wrap->begin(), wrap->end(), keys.wrap.begin());
  return keys;
}

std::string NewId() { return HexEncode(RandomBytes(16)); }

}  // namespace accord::node_internal
