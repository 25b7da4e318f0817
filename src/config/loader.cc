// The TOML policy loader. Parsing (toml11) and model validation (ValidatePolicy) are separate:
// this file turns TOML into model values, records where each value came from, and maps the
// model's problems back to those positions.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <toml.hpp>
#include <vector>

#include "accord/config.h"
#include "accord/file.h"
#include "accord/utf8.h"

namespace accord {
namespace {

struct Position {
  std::string file;
  uint32_t line = 0;
  uint32_t column = 0;
};

// toml11 counts columns in bytes; people and editors count characters. Converts a 1-based byte
// column of `line` to a 1-based column in UTF-8 code points.
uint32_t CharacterColumn(const std::string& line, uint32_t byte_column) {
  const size_t end = std::min<size_t>(byte_column > 0 ? byte_column - 1 : 0, line.size());
  uint32_t column = 1;
  for (size_t i = 0; i < end; ++i) {
    if ((static_cast<unsigned char>(line[i]) & 0xC0) != 0x80) ++column;  // not a continuation byte
  }
  return column;
}

Position PositionOf(const toml::source_location& loc, const std::string& file) {
  return Position{file, loc.line(), CharacterColumn(loc.line_str(), loc.column())};
}

Position PositionOf(const toml::value& v, const std::string& file) {
  return PositionOf(v.location(), file);
}

// Where `token` is in `line` as TOML text, not in a quoted string (basic, with its escapes, or
// literal) nor in the comment: npos if it is not there. Multi-line strings are not followed.
size_t FindInValues(std::string_view line, std::string_view token) {
  char quote = 0;  // the quote of the string the scan is in, if any
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote == 0) {
      if (c == '#') return std::string_view::npos;
      if (c == '"' || c == '\'') {
        quote = c;
      } else if (line.substr(i, token.size()) == token) {
        return i;
      }
    } else if (c == '\\' && quote == '"') {
      ++i;  // an escaped character of a basic string
    } else if (c == quote) {
      quote = 0;
    }
  }
  return std::string_view::npos;
}

// Where a parse error of `f` is. toml11 3.7 reports a malformed date, time or offset at a
// location inside the token alone (line 1 of the token's text): such a position is moved to
// the first line of the file that holds that text outside strings and comments.
Position ParseErrorPosition(const toml::source_location& loc, const PolicyFile& f) {
  Position p = PositionOf(loc, f.name);
  const std::string token = loc.line_str();
  if (p.line != 1 || token.empty()) return p;
  size_t start = 0;
  for (uint32_t line = 1; start < f.text.size(); ++line) {
    const size_t end = std::min(f.text.find('\n', start), f.text.size());
    const std::string text = f.text.substr(start, end - start);
    if (const size_t at = FindInValues(text, token); at != std::string_view::npos) {
      return Position{f.name, line,
                      CharacterColumn(text, static_cast<uint32_t>(at + loc.column()))};
    }
    start = end + 1;
  }
  return p;
}

// Under its first line, toml11 3.7 quotes the line of the file and points at the place, with a
// note of what it expected there:
//    " 17 | kind = termination-notice"
//    "    |        ^--- the next token is not a boolean"
// Some show two places, the second being the mistake ("array starts here", then "it is not a
// valid value"): the last is taken.
struct TomlCaret {
  std::string source;  // the line of the file, as quoted
  size_t offset = 0;   // the byte of `source` pointed at
  std::string note;
};

std::optional<TomlCaret> CaretOf(std::string_view what) {
  std::string_view quoted;
  std::optional<TomlCaret> last;
  while (!what.empty()) {
    const size_t end = std::min(what.find('\n'), what.size());
    const std::string_view line = what.substr(0, end);
    what.remove_prefix(std::min(end + 1, what.size()));
    const size_t bar = line.find(" | ");
    if (bar == std::string_view::npos) continue;
    const size_t caret = line.find("^---", bar);
    if (caret == std::string_view::npos) {
      quoted = line;
      continue;
    }
    if (quoted.find(" | ") != bar || caret < bar + 3) continue;  // not the layout above
    std::string note(line.substr(caret + 4));
    while (!note.empty() && (note.front() == ' ')) note.erase(0, 1);
    while (!note.empty() && (note.back() == '.' || note.back() == ' ')) note.pop_back();
    std::string source(quoted.substr(bar + 3));
    if (!source.empty() && source.back() == '\r') source.pop_back();  // a CRLF file's line
    last = TomlCaret{std::move(source), caret - bar - 3, std::move(note)};
  }
  return last;
}

// toml11's message, made one plain line: its first line without the "[error] toml::parse_xxx: "
// prefix, with the note at the caret when it says more. A bare word where a value goes (toml11
// tries it as a boolean or a number, and says only that it is not one) is the usual mistake of a
// string without its quotes, and is said so.
std::string SummarizeTomlMessage(std::string_view what, const std::optional<TomlCaret>& caret) {
  std::string line(what.substr(0, what.find('\n')));
  if (line.rfind("[error] ", 0) == 0) line.erase(0, 8);
  if (line.rfind("toml::", 0) == 0) {
    const size_t colon = line.find(": ");
    if (colon != std::string::npos) line.erase(0, colon + 2);
  }
  while (!line.empty() && (line.back() == '.' || line.back() == ' ')) line.pop_back();
  if (caret &&
      (line.empty() || line == "bad format: unknown value appeared" ||
       line == "value having invalid format appeared in an array") &&
      caret->offset < caret->source.size()) {
    const std::string_view rest = std::string_view(caret->source).substr(caret->offset);
    const std::string_view word = rest.substr(0, rest.find_first_of(" \t\r,]}#"));
    if (!word.empty()) {
      return fmt::format("`{}` is not a TOML value: text goes in quotes (\"{}\")", word, word);
    }
  }
  if (caret && !caret->note.empty() && caret->note != "here" && !line.empty()) {
    line += fmt::format(" ({})", caret->note);
  }
  if (line.empty()) line = "malformed TOML";
  return line;
}

// Reads one file's TOML into model values.
class Reader {
 public:
  explicit Reader(std::vector<Diagnostic>& diags) : diags_(diags) {}

  // A message may quote a key or a value as the file's escapes spelt it (`"\n" = 1`): it is
  // made one line with nothing a terminal would act on, as every diagnostic is.
  void Error(const Position& at, std::string_view message) {
    diags_.push_back(Diagnostic{at.file, at.line, at.column, OneLine(message, 1000)});
  }
  void Error(const toml::value& v, const std::string& file, std::string_view message) {
    Error(PositionOf(v, file), message);
  }
  void Remember(const std::string& path, const toml::value& v, const std::string& file) {
    positions_.emplace(path, PositionOf(v, file));
  }
  void RememberFile(const std::string& path, const std::string& file) {
    positions_.emplace(path, Position{file, 0, 0});
  }

  // The position recorded for `path`, or for its nearest recorded parent.
  Position Find(std::string path) const {
    while (true) {
      if (auto it = positions_.find(path); it != positions_.end()) return it->second;
      const size_t cut = path.find_last_of(".[");
      if (cut == std::string::npos || cut == 0) return Position{};
      path.resize(cut);
    }
  }

  std::optional<toml::value> Parse(const PolicyFile& f) {
    if (auto unsafe = TomlUnsafe(f.text, f.name)) {
      diags_.push_back(std::move(*unsafe));
      return std::nullopt;
    }
    std::istringstream in(f.text);
    try {
      return toml::parse(in, f.name);
    } catch (const std::exception& e) {
      diags_.push_back(TomlParseDiagnostic(e, f));
    }
    return std::nullopt;
  }

  // Reports keys of `table` not in `allowed`, ordered by position.
  void CheckKeys(const toml::value& table, const std::string& file,
                 std::initializer_list<std::string_view> allowed, std::string_view what) {
    std::vector<std::pair<Position, std::string>> unknown;
    for (const auto& [key, value] : table.as_table()) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        unknown.emplace_back(PositionOf(value, file), key);
      }
    }
    std::sort(unknown.begin(), unknown.end(), [](const auto& a, const auto& b) {
      return std::tie(a.first.line, a.first.column) < std::tie(b.first.line, b.first.column);
    });
    for (auto& [pos, key] : unknown) {
      Error(pos, fmt::format("unknown key `{}` in {}", key, what));
    }
  }

  const toml::value* Member(const toml::value& table, std::string_view key) {
    const auto& t = table.as_table();
    auto it = t.find(std::string(key));
    return it == t.end() ? nullptr : &it->second;
  }

  // A required or optional string member. Missing required keys are reported at the table.
  std::optional<std::string> String(const toml::value& table, std::string_view key,
                                    const std::string& file, bool required, std::string_view what) {
    const toml::value* v = Member(table, key);
    if (v == nullptr) {
      if (required) Error(table, file, fmt::format("{} needs `{}`", what, key));
      return std::nullopt;
    }
    if (!v->is_string()) {
      Error(*v, file, fmt::format("`{}` must be a string", key));
      return std::nullopt;
    }
    return v->as_string().str;
  }

  std::vector<std::string> StringArray(const toml::value& v, const std::string& file,
                                       std::string_view key) {
    std::vector<std::string> out;
    if (!v.is_array()) {
      Error(v, file, fmt::format("`{}` must be an array of strings", key));
      return out;
    }
    for (const toml::value& item : v.as_array()) {
      if (!item.is_string()) {
        Error(item, file, fmt::format("`{}` must be an array of strings", key));
        continue;
      }
      out.push_back(item.as_string().str);
    }
    return out;
  }

  // An instant: an offset date-time, a local date-time or date (on the clock of `zone`), or a
  // string holding either form.
  std::optional<Instant> ReadInstant(const toml::value& v, const std::string& file, ZoneOffset zone,
                                     std::string_view key) {
    auto civil = [&](const toml::local_date& d, int64_t sod, int64_t micros,
                     ZoneOffset z) -> std::optional<Instant> {
      auto t = FromCivil(d.year, static_cast<unsigned>(d.month) + 1, d.day, sod, z);
      if (!t) {
        Error(v, file, fmt::format("`{}`: {}", key, t.error().message));
        return std::nullopt;
      }
      t->micros += micros;
      return *t;
    };
    auto time_of = [&](const toml::local_time& lt) -> std::optional<std::pair<int64_t, int64_t>> {
      if (lt.second > 59) {
        Error(v, file, fmt::format("`{}`: leap seconds are not supported", key));
        return std::nullopt;
      }
      return std::pair<int64_t, int64_t>{lt.hour * 3600 + lt.minute * 60 + lt.second,
                                         int64_t{lt.millisecond} * 1000 + lt.microsecond};
    };
    switch (v.type()) {
      case toml::value_t::local_date:
        return civil(v.as_local_date(), 0, 0, zone);
      case toml::value_t::local_datetime: {
        const auto& ldt = v.as_local_datetime();
        auto t = time_of(ldt.time);
        if (!t) return std::nullopt;
        return civil(ldt.date, t->first, t->second, zone);
      }
      case toml::value_t::offset_datetime: {
        const auto& odt = v.as_offset_datetime();
        auto t = time_of(odt.time);
        if (!t) return std::nullopt;
        return civil(odt.date, t->first, t->second,
                     ZoneOffset{odt.offset.hour * 60 + odt.offset.minute});
      }
      case toml::value_t::string: {
        auto t = ParseInstantInZone(v.as_string().str, zone);
        if (!t) {
          Error(v, file, fmt::format("`{}`: {}", key, t.error().message));
          return std::nullopt;
        }
        return *t;
      }
      default:
        Error(
            v, file,
            fmt::format("`{}` must be a date or date-time such as 2019-08-23T15:25:00+09:00", key));
        return std::nullopt;
    }
  }

  std::optional<CalendarDuration> ReadDuration(const toml::value& table, std::string_view key,
                                               const std::string& file) {
    const toml::value* v = Member(table, key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) {
      Error(*v, file, fmt::format("`{}` must be an ISO 8601 duration string such as \"P1Y\"", key));
      return std::nullopt;
    }
    auto d = ParseDuration(v->as_string().str);
    if (!d) {
      Error(*v, file, d.error().message);
      return std::nullopt;
    }
    return *d;
  }

 private:
  std::vector<Diagnostic>& diags_;
  std::map<std::string, Position> positions_;
};

// False when the file gave no list of parties (not TOML, or no `[[party]]`).
bool ReadParties(Reader& r, const PolicyFile& f, Policy& policy) {
  auto root = r.Parse(f);
  if (!root) return false;
  r.CheckKeys(*root, f.name, {"party"}, "parties.toml");
  const toml::value* list = r.Member(*root, "party");
  if (list == nullptr || !list->is_array()) {
    r.Error(Position{f.name, 1, 1}, "parties.toml needs a `[[party]]` table for each party");
    return false;
  }
  for (const toml::value& pv : list->as_array()) {
    if (!pv.is_table()) {
      r.Error(pv, f.name, "each `party` must be a table");
      continue;
    }
    const std::string path = fmt::format("party[{}]", policy.parties.size());
    r.Remember(path, pv, f.name);
    r.CheckKeys(pv, f.name, {"id", "name", "levels"}, "a party");
    Party p;
    p.id = r.String(pv, "id", f.name, true, "a party").value_or("");
    if (const toml::value* id = r.Member(pv, "id")) r.Remember(path + ".id", *id, f.name);
    p.name = r.String(pv, "name", f.name, true, "a party").value_or("");
    const toml::value* levels = r.Member(pv, "levels");
    if (levels == nullptr || !levels->is_array()) {
      r.Error(
          levels ? *levels : pv, f.name,
          fmt::format("party `{}` needs `levels`: an array of {{ id, name, gloss }} lowest first",
                      p.id));
    } else {
      r.Remember(path + ".levels", *levels, f.name);
      size_t with_rank = 0;
      for (const toml::value& lv : levels->as_array()) {
        if (!lv.is_table()) {
          r.Error(lv, f.name, "each level must be a table { id, name, gloss }");
          continue;
        }
        const std::string lpath = fmt::format("{}.levels[{}]", path, p.levels.size());
        r.Remember(lpath, lv, f.name);
        r.CheckKeys(lv, f.name, {"id", "name", "gloss", "rank"}, "a level");
        Level l;
        l.id = r.String(lv, "id", f.name, true, "a level").value_or("");
        l.name = r.String(lv, "name", f.name, true, "a level").value_or("");
        l.gloss = r.String(lv, "gloss", f.name, false, "a level").value_or("");
        l.rank = static_cast<int32_t>(p.levels.size() + 1);
        if (const toml::value* rank = r.Member(lv, "rank")) {
          r.Remember(lpath + ".rank", *rank, f.name);
          if (!rank->is_integer() || rank->as_integer() < 0 || rank->as_integer() > 1'000'000) {
            r.Error(*rank, f.name, "`rank` must be a whole number from 0 to 1000000");
          } else {
            l.rank = static_cast<int32_t>(rank->as_integer());
            ++with_rank;
          }
        }
        p.levels.push_back(std::move(l));
      }
      if (with_rank != 0 && with_rank != p.levels.size()) {
        r.Error(*levels, f.name,
                fmt::format("either every level of `{}` has a `rank` or none does", p.id));
      }
    }
    policy.parties.push_back(std::move(p));
  }
  return true;
}

std::optional<Agreement> ReadAgreement(Reader& r, const PolicyFile& f, size_t index) {
  auto root = r.Parse(f);
  if (!root) return std::nullopt;
  const std::string path = fmt::format("agreement[{}]", index);
  r.RememberFile(path, f.name);
  r.CheckKeys(*root, f.name,
              {"id", "title", "parties", "in_force", "zone", "term", "renewal", "notice_period",
               "survival", "scope", "levels", "hub", "event"},
              "an agreement");
  for (const auto& [key, value] : root->as_table()) r.Remember(path + "." + key, value, f.name);
  Agreement a;
  constexpr std::string_view kWhat = "an agreement";
  const Position file_start{f.name, 1, 1};
  a.id = r.String(*root, "id", f.name, false, kWhat).value_or("");
  if (!r.Member(*root, "id")) r.Error(file_start, "an agreement needs `id`");
  a.title = r.String(*root, "title", f.name, false, kWhat).value_or("");
  if (const toml::value* parties = r.Member(*root, "parties")) {
    a.parties = r.StringArray(*parties, f.name, "parties");
  } else {
    r.Error(file_start, "an agreement needs `parties`");
  }
  if (auto zone = r.String(*root, "zone", f.name, false, kWhat)) {
    auto z = ParseZoneOffset(*zone);
    if (z) {
      a.zone = *z;
    } else {
      r.Error(*r.Member(*root, "zone"), f.name, z.error().message);
    }
  } else if (!r.Member(*root, "zone")) {
    r.Error(file_start, "an agreement needs `zone`, a UTC offset such as \"+09:00\"");
  }
  if (const toml::value* v = r.Member(*root, "in_force")) {
    a.in_force = r.ReadInstant(*v, f.name, a.zone, "in_force").value_or(Instant{});
  } else {
    r.Error(file_start, "an agreement needs `in_force`");
  }
  a.term = r.ReadDuration(*root, "term", f.name);
  a.notice_period = r.ReadDuration(*root, "notice_period", f.name).value_or(CalendarDuration{});
  if (auto renewal = r.String(*root, "renewal", f.name, false, kWhat)) {
    if (*renewal == "automatic") {
      a.renewal = Renewal::kAutomatic;
    } else if (*renewal == "none") {
      a.renewal = Renewal::kNone;
    } else {
      r.Error(*r.Member(*root, "renewal"), f.name,
              fmt::format("`renewal` is `automatic` or `none`, not `{}`", *renewal));
    }
  }
  if (auto survival = r.String(*root, "survival", f.name, false, kWhat)) {
    if (*survival == "protect") {
      a.survival = Survival::kProtect;
    } else if (*survival == "revoke") {
      a.survival = Survival::kRevoke;
    } else {
      r.Error(*r.Member(*root, "survival"), f.name,
              fmt::format("`survival` is `protect` or `revoke`, not `{}`", *survival));
    }
  }
  if (const toml::value* scope = r.Member(*root, "scope")) {
    a.scope = r.StringArray(*scope, f.name, "scope");
  } else {
    r.Error(file_start, "an agreement needs `scope`: topics, or [\"*\"] for all");
  }
  a.hub = r.String(*root, "hub", f.name, false, kWhat);
  if (const toml::value* levels = r.Member(*root, "levels")) {
    if (!levels->is_array()) {
      r.Error(*levels, f.name,
              "`levels` must be an array of rows such as { KOR = [\"II\"], JPN = [\"GOKUHI\"] }");
    } else {
      for (const toml::value& row : levels->as_array()) {
        const std::string rpath = fmt::format("{}.levels[{}]", path, a.levels.size());
        r.Remember(rpath, row, f.name);
        LevelRow lr;
        if (!row.is_table()) {
          r.Error(
              row, f.name,
              "an equivalence row must be a table such as { KOR = [\"II\"], JPN = [\"GOKUHI\"] }");
          a.levels.push_back(std::move(lr));
          continue;
        }
        for (const auto& [party, ids] : row.as_table()) {
          r.Remember(rpath + "." + party, ids, f.name);
          if (ids.is_string()) {
            lr.levels[party] = {ids.as_string().str};  // a single level may be written bare
          } else {
            lr.levels[party] = r.StringArray(ids, f.name, party);
          }
        }
        a.levels.push_back(std::move(lr));
      }
    }
  } else {
    r.Error(file_start, "an agreement needs `levels`: its equivalence rows");
  }
  if (const toml::value* events = r.Member(*root, "event")) {
    if (!events->is_array()) {
      r.Error(*events, f.name, "events are written as `[[event]]` tables");
    } else {
      for (const toml::value& ev : events->as_array()) {
        const std::string epath = fmt::format("{}.event[{}]", path, a.events.size());
        if (!ev.is_table()) {
          r.Error(ev, f.name, "an event must be a table with `kind`, `by` and `at`");
          continue;
        }
        r.CheckKeys(ev, f.name, {"kind", "by", "at", "note"}, "an event");
        AgreementEvent e;
        auto kind = r.String(ev, "kind", f.name, true, "an event");
        if (kind) {
          auto k = ParseEventKind(*kind);
          if (!k) {
            r.Error(*r.Member(ev, "kind"), f.name,
                    fmt::format("unknown event kind `{}`; expected termination-notice, "
                                "notice-suspended, notice-resumed, notice-withdrawn or terminated",
                                *kind));
            continue;
          }
          e.kind = *k;
        } else {
          continue;
        }
        e.by = r.String(ev, "by", f.name, true, "an event").value_or("");
        e.note = r.String(ev, "note", f.name, false, "an event").value_or("");
        const toml::value* at = r.Member(ev, "at");
        if (at == nullptr) {
          r.Error(ev, f.name, "an event needs `at`");
          continue;
        }
        auto t = r.ReadInstant(*at, f.name, a.zone, "at");
        if (!t) continue;
        e.at = *t;
        // Positions are kept for the events kept: a later check names `event[i]`, the i-th of
        // those, and an event skipped above must not leave its lines under that name.
        r.Remember(epath, ev, f.name);
        for (const auto& [key, value] : ev.as_table()) r.Remember(epath + "." + key, value, f.name);
        a.events.push_back(std::move(e));
      }
    }
  }
  return a;
}

void ReadSubjects(Reader& r, const PolicyFile& f, Policy& policy) {
  auto root = r.Parse(f);
  if (!root) return;
  r.CheckKeys(*root, f.name, {"subject"}, "subjects.toml");
  const toml::value* list = r.Member(*root, "subject");
  if (list == nullptr) return;
  if (!list->is_array()) {
    r.Error(*list, f.name, "subjects are written as `[[subject]]` tables");
    return;
  }
  for (const toml::value& sv : list->as_array()) {
    if (!sv.is_table()) {
      r.Error(sv, f.name, "each `subject` must be a table");
      continue;
    }
    const std::string path = fmt::format("subject[{}]", policy.subjects.size());
    r.Remember(path, sv, f.name);
    r.CheckKeys(sv, f.name, {"id", "party", "clearance", "need_to_know", "compartments"},
                "a subject");
    for (const auto& [key, value] : sv.as_table()) r.Remember(path + "." + key, value, f.name);
    Subject s;
    s.id = r.String(sv, "id", f.name, true, "a subject").value_or("");
    s.party = r.String(sv, "party", f.name, true, "a subject").value_or("");
    s.clearance = r.String(sv, "clearance", f.name, true, "a subject").value_or("");
    if (const toml::value* v = r.Member(sv, "need_to_know")) {
      s.need_to_know = r.StringArray(*v, f.name, "need_to_know");
    }
    if (const toml::value* v = r.Member(sv, "compartments")) {
      s.compartments = r.StringArray(*v, f.name, "compartments");
    }
    policy.subjects.push_back(std::move(s));
  }
}

// The file's text, or why it cannot be had ("cannot read it: REASON"): the diagnostic names it.
Result<std::string> ReadFile(const std::filesystem::path& path) {
  return ReadFileAtMost(path.string(), kMaxTomlFileBytes, FileNamed::kAsIt);
}

}  // namespace

std::string Diagnostic::ToString() const {
  if (line == 0) return fmt::format("{}: {}", file, message);
  return fmt::format("{}:{}:{}: {}", file, line, column, message);
}

LoadResult LoadPolicy(const PolicySources& sources) {
  std::vector<Diagnostic> diags;
  Reader reader(diags);
  Policy policy;
  const bool parties_read = ReadParties(reader, sources.parties, policy);
  for (size_t i = 0; i < sources.agreements.size(); ++i) {
    if (auto a = ReadAgreement(reader, sources.agreements[i], policy.agreements.size())) {
      policy.agreements.push_back(std::move(*a));
    }
  }
  if (sources.subjects) ReadSubjects(reader, *sources.subjects, policy);
  // Model rules are checked only on what parsed; a file with syntax errors was skipped above.
  // Without the parties, every party an agreement or subject names would be reported unknown,
  // before (by file name) the one mistake to mend: the model is not checked then.
  if (parties_read) {
    for (const Problem& p : ValidatePolicy(policy)) {
      const Position at = reader.Find(p.path);
      diags.push_back(Diagnostic{at.file, at.line, at.column, OneLine(p.message, 1000)});
    }
  }
  if (diags.empty()) return policy;
  std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.file, a.line, a.column) < std::tie(b.file, b.line, b.column);
  });
  return tl::unexpected(std::move(diags));
}

LoadResult LoadPolicyDir(const std::filesystem::path& dir) {
  std::vector<Diagnostic> diags;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    diags.push_back(Diagnostic{dir.string(), 0, 0, "not a policy directory"});
    return tl::unexpected(std::move(diags));
  }
  PolicySources sources;
  const std::filesystem::path parties = dir / "parties.toml";
  auto text = ReadFile(parties);
  if (!text) {
    diags.push_back(Diagnostic{parties.string(), 0, 0,
                               text.error().code == Code::kNotFound
                                   ? "missing: a policy directory needs parties.toml"
                                   : text.error().message});
    return tl::unexpected(std::move(diags));
  }
  sources.parties = PolicyFile{parties.string(), std::move(*text)};
  std::vector<std::filesystem::path> agreement_files;
  const std::filesystem::path agreements_dir = dir / "agreements";
  // Each optional part is looked at without following a last link: one that leads nowhere, or
  // cannot be looked at, is said, not taken for a policy without it.
  const auto present = [&diags](const std::filesystem::path& path) {
    std::error_code error;
    // Not there is not_found, with `error` set too (ENOENT, ENOTDIR).
    const auto type = std::filesystem::symlink_status(path, error).type();
    if (type == std::filesystem::file_type::not_found) return false;
    if (error) {
      diags.push_back(
          Diagnostic{path.string(), 0, 0, fmt::format("cannot be looked at: {}", error.message())});
      return false;
    }
    return true;
  };
  const bool has_agreements = present(agreements_dir);
  if (has_agreements && !std::filesystem::is_directory(agreements_dir, ec)) {
    const bool dangling = ec == std::errc::no_such_file_or_directory;
    diags.push_back(Diagnostic{agreements_dir.string(), 0, 0,
                               dangling ? std::string("a link to nothing: not a directory")
                               : ec     ? fmt::format("cannot be looked at: {}", ec.message())
                                        : std::string("not a directory")});
  } else if (has_agreements) {
    // increment(ec), not ++: a directory that fails midway must not throw out of the loader.
    for (std::filesystem::directory_iterator it(agreements_dir, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->path().extension() == ".toml") agreement_files.push_back(it->path());
    }
    if (ec) {  // unreadable: not a policy with no agreements
      diags.push_back(Diagnostic{agreements_dir.string(), 0, 0,
                                 fmt::format("cannot list the agreements: {}", ec.message())});
    }
  }
  std::sort(agreement_files.begin(), agreement_files.end());
  for (const auto& path : agreement_files) {
    auto body = ReadFile(path);
    if (!body) {
      diags.push_back(Diagnostic{path.string(), 0, 0, body.error().message});
      continue;
    }
    sources.agreements.push_back(PolicyFile{path.string(), std::move(*body)});
  }
  const std::filesystem::path subjects = dir / "subjects.toml";
  if (present(subjects)) {  // a link to nothing fails to be read, and says so
    auto body = ReadFile(subjects);
    if (!body) {
      diags.push_back(Diagnostic{subjects.string(), 0, 0, body.error().message});
    } else {
      sources.subjects = PolicyFile{subjects.string(), std::move(*body)};
    }
  }
  if (!diags.empty()) return tl::unexpected(std::move(diags));
  return LoadPolicy(sources);
}

Error DiagnosticsToError(const std::vector<Diagnostic>& diagnostics) {
  if (diagnostics.empty()) return Error{Code::kInternal, "policy failed to load"};
  std::string message = diagnostics.front().ToString();
  if (diagnostics.size() > 1) message += fmt::format(" (and {} more)", diagnostics.size() - 1);
  return Error{Code::kInvalidArgument, std::move(message)};
}

Diagnostic TomlParseDiagnostic(const std::exception& thrown, const PolicyFile& file) {
  const auto* toml_error = dynamic_cast<const toml::exception*>(&thrown);
  if (toml_error == nullptr) {  // out of memory, say: not a mistake in the file
    return Diagnostic{file.name, 0, 0, "cannot be read as TOML: " + ExceptionText(thrown)};
  }
  const toml::exception& e = *toml_error;
  Position at = ParseErrorPosition(e.location(), file);
  const std::optional<TomlCaret> caret = CaretOf(e.what());
  // The caret's column, when the line it quotes is that line of the file: toml11 locates some
  // errors at the start of the key, not at the value it could not read.
  if (caret && at.line > 0) {
    std::string_view text = file.text;
    for (uint32_t line = 1; line < at.line && !text.empty(); ++line) {
      text.remove_prefix(std::min(text.find('\n'), text.size() - 1) + 1);
    }
    text = text.substr(0, text.find('\n'));
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text == caret->source) {
      at.column = CharacterColumn(caret->source, static_cast<uint32_t>(caret->offset + 1));
    }
  }
  return Diagnostic{at.file, at.line, at.column,
                    OneLine(SummarizeTomlMessage(e.what(), caret), 1000)};
}

namespace {

// The length of a UTF-8 byte order mark at the start of `text`, which TOML allows and which
// counts as no column in a diagnostic.
size_t ByteOrderMarkSize(std::string_view text) { return text.starts_with("\xEF\xBB\xBF") ? 3 : 0; }

}  // namespace

// toml11 3.7 parses arrays and inline tables recursively and overflows the stack on deep nesting
// (found by fuzz/policy_loader_fuzz), and copies and frees nested tables recursively, a dotted
// key's as well (`a.a.a…` with 100,000 parts, decision #156). No file of accord's needs more
// than a few levels, so nesting beyond kMaxTomlNesting is refused before toml11 sees the text. The
// scan skips strings and comments; a multi-line string ends, as in toml11's lexer, at three quotes
// followed by up to two more, which belong to the string (`'''a''''` is the string `a'`).
std::optional<Diagnostic> TomlTooDeep(std::string_view text, const std::string& file) {
  uint32_t line = 1;
  size_t line_start = ByteOrderMarkSize(text);  // not a column an editor shows
  const auto too_deep = [&](size_t i) {
    const std::string_view so_far = text.substr(line_start, i - line_start);
    uint32_t column = 1;
    for (const char b : so_far) {
      if ((static_cast<unsigned char>(b) & 0xC0) != 0x80) ++column;  // not a continuation
    }
    return Diagnostic{
        file, line, column,
        fmt::format("arrays and tables nested deeper than {} levels", kMaxTomlNesting)};
  };
  // The nesting, counted as toml11 builds it: each bracket open, each dot of a dotted key and
  // each part of a table header is a level, and they add up (a key's dots inside an inline table
  // inside the table of a header).
  std::vector<int> nest;  // for each value bracket open, innermost last: the nesting inside it
  std::string kinds;      // and its kind: '[' or '{'
  int base = 0;           // the nesting of the table the last header named
  int header = 0;         // 1 inside `[…]`, 2 inside `[[…]]`, 0 elsewhere
  bool in_key = true;     // where a key (or a header's name) is read
  int key_dots = 0;       // the dots of the key or header being read, or just read
  const auto here = [&] {
    return header > 0 ? header + key_dots : (nest.empty() ? base : nest.back()) + key_dots;
  };
  for (size_t i = line_start; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      line_start = i + 1;
      // A line starts a key, unless it goes on with an array's values.
      in_key = nest.empty();
      key_dots = 0;
      header = 0;
    } else if (c == '#') {
      while (i + 1 < text.size() && text[i + 1] != '\n') ++i;
    } else if (c == '"' || c == '\'') {
      const bool multi = text.substr(i, 3) == std::string_view(c == '"' ? "\"\"\"" : "\'\'\'");
      const std::string_view close = multi ? text.substr(i, 3) : text.substr(i, 1);
      i += close.size();
      while (i < text.size() && text.substr(i, close.size()) != close) {
        if (c == '"' && text[i] == '\\') ++i;  // an escape in a basic string
        if (i < text.size() && text[i] == '\n') {
          if (!multi) break;  // an unterminated string: toml11 reports it
          ++line;
          line_start = i + 1;
        }
        ++i;
      }
      i += close.size() - 1;
      for (int more = 0; multi && more < 2 && i + 1 < text.size() && text[i + 1] == c; ++more) {
        ++i;
      }
    } else if (c == '[' && in_key && nest.empty() && (header == 0 || text[i - 1] == '[')) {
      header += 1;  // a table header where a key starts, `[[` for an array of tables
      key_dots = 0;
    } else if (c == ']' && header > 0 && nest.empty()) {
      base = here();  // the second `]` of `[[…]]` then closes nothing
      header = 0;
      in_key = false;
      key_dots = 0;
    } else if (c == '[' || c == '{') {
      nest.push_back(here() + 1);
      kinds.push_back(c);
      if (nest.back() > kMaxTomlNesting) return too_deep(i);
      in_key = c == '{';
      key_dots = 0;
    } else if ((c == ']' || c == '}') && !nest.empty()) {
      nest.pop_back();
      kinds.pop_back();
      in_key = false;
      key_dots = 0;
    } else if (c == ',' && !nest.empty()) {
      in_key = kinds.back() == '{';  // the next key of an inline table, or an array's value
      key_dots = 0;
    } else if (c == '=') {
      in_key = false;  // the key's dots still nest what its value opens
    } else if (c == '.' && in_key) {
      // toml11 makes a table of each dotted key's part: `a.b.c = 1` nests as deep as
      // `a = {b = {c = 1}}`, and copies and frees them recursively.
      ++key_dots;
      if (here() > kMaxTomlNesting) return too_deep(i);
    }
  }
  return std::nullopt;
}

std::optional<Diagnostic> TomlUnsafe(std::string_view text, const std::string& file) {
  uint32_t line = 1;
  uint32_t column = 1;  // in code points
  for (size_t i = ByteOrderMarkSize(text); i < text.size();) {
    const size_t n = Utf8SequenceLength(text.substr(i));
    if (n == 0) {
      return Diagnostic{file, line, column,
                        fmt::format("byte 0x{:02x} is not UTF-8 (a TOML file is UTF-8)",
                                    static_cast<unsigned char>(text[i]))};
    }
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += n;
  }
  return TomlTooDeep(text, file);
}

}  // namespace accord
