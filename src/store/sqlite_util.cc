// Private helpers of the SQLite backend (sqlite_util.h).
#include "sqlite_util.h"

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace accord::sqlite_internal {
namespace {

// A non-null pointer for empty buffers: sqlite3_bind_blob with a null pointer binds NULL, not an
// empty blob.
constexpr uint8_t kEmpty[1] = {0};

void AppendHexDigit(std::string& out, unsigned value) {
  out.push_back("0123456789abcdef"[value & 0xfu]);
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// A strict reader of one JSON array of strings.
class ListParser {
 public:
  explicit ListParser(std::string_view text) : text_(text) {}

  Result<std::vector<std::string>> Parse() {
    std::vector<std::string> items;
    SkipSpace();
    if (!Eat('[')) {
      return Bad();
    }
    SkipSpace();
    if (Eat(']')) {
      return Finish(std::move(items));
    }
    while (true) {
      SkipSpace();
      std::string item;
      if (!ParseString(item)) {
        return Bad();
      }
      items.push_back(std::move(item));
      SkipSpace();
      if (Eat(']')) {
        return Finish(std::move(items));
      }
      if (!Eat(',')) {
        return Bad();
      }
    }
  }

 private:
  static tl::unexpected<Error> Bad() { return Fail(Code::kDataLoss, "malformed string list"); }

  Result<std::vector<std::string>> Finish(std::vector<std::string> items) {
    SkipSpace();
    if (pos_ != text_.size()) {
      return Bad();
    }
    return items;
  }

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Eat(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  bool ReadHex4(uint32_t& value) {
    if (text_.size() - pos_ < 4) {
      return false;
    }
    value = 0;
    for (int i = 0; i < 4; ++i) {
      const int digit = HexDigitValue(text_[pos_++]);
      if (digit < 0) {
        return false;
      }
      value = (value << 4) | static_cast<uint32_t>(digit);
    }
    return true;
  }

  bool ParseString(std::string& out) {
    if (!Eat('"')) {
      return false;
    }
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') {
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return false;  // JSON forbids raw control characters in strings
      }
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) {
        return false;
      }
      switch (text_[pos_++]) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!ReadHex4(cp)) {
            return false;
          }
          if (cp >= 0xdc00 && cp <= 0xdfff) {
            return false;  // a low surrogate alone
          }
          if (cp >= 0xd800 && cp <= 0xdbff) {
            uint32_t low = 0;
            if (!Eat('\\') || !Eat('u') || !ReadHex4(low) || low < 0xdc00 || low > 0xdfff) {
              return false;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;  // unterminated
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// The connections watched for damage (DamageWatch), and where each one's goes. Looked up only
// when a statement fails on damage. Never destroyed: a store may close during exit.
struct Watches {
  std::mutex mu;
  std::unordered_map<sqlite3*, std::function<void(const Error&)>> noted;  // GUARDED_BY(mu)
};

Watches& TheWatches() {
  static auto* watches = new Watches();
  return *watches;
}

}  // namespace

DamageWatch::DamageWatch(sqlite3* db, std::function<void(const Error&)> noted) : db_(db) {
  Watches& w = TheWatches();
  std::lock_guard lock(w.mu);
  w.noted[db_] = std::move(noted);
}

DamageWatch::~DamageWatch() {
  Watches& w = TheWatches();
  std::lock_guard lock(w.mu);
  w.noted.erase(db_);
}

Code CodeForSqlite(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Code::kUnavailable;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Code::kDataLoss;
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        return Code::kAlreadyExists;
      }
      return Code::kInternal;
    case SQLITE_IOERR:
      return rc == SQLITE_IOERR_CORRUPTFS ? Code::kDataLoss : Code::kInternal;
    case SQLITE_FULL:
      return Code::kUnavailable;  // a full disk is no bug: it may have room later
    default:
      return Code::kInternal;
  }
}

Error SqliteError(sqlite3* db, int rc, std::string_view action, std::string_view key) {
  std::string message = "sqlite: ";
  message.append(action);
  if (!key.empty()) {
    message.append(" `").append(key).append("`");
  }
  message.append(": ");
  // The connection's message describes its most recent failure; fall back to the generic text of
  // the code when there is no connection (open failed before one existed).
  const char* text = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string_view detail = text != nullptr ? text : "unknown error";
  while (!detail.empty() && (detail.back() == '.' || detail.back() == '\n')) {
    detail.remove_suffix(1);
  }
  for (const char c : detail) {
    message.push_back(c == '\n' ? ' ' : c);
  }
  const Code code = CodeForSqlite(rc);
  // A corrupt database is this node's own (its store), whatever the caller was handling.
  Error error{code, std::move(message), code == Code::kDataLoss};
  if (error.own_state && db != nullptr) {
    Watches& w = TheWatches();
    std::lock_guard lock(w.mu);
    if (auto watch = w.noted.find(db); watch != w.noted.end()) watch->second(error);
  }
  return error;
}

Result<StmtPtr> Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) {
    return tl::unexpected<Error>(SqliteError(db, rc, "prepare", sql));
  }
  return stmt;
}

void BoundStatement::BindText(int index, std::string_view text) {
  const int rc = sqlite3_bind_text64(stmt_, index, text.empty() ? "" : text.data(), text.size(),
                                     SQLITE_STATIC, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) {
    bind_rc_ = rc;
  }
}

void BoundStatement::BindBlob(int index, ByteView bytes) {
  const int rc = sqlite3_bind_blob64(stmt_, index, bytes.empty() ? kEmpty : bytes.data(),
                                     bytes.size(), SQLITE_STATIC);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) {
    bind_rc_ = rc;
  }
}

void BoundStatement::BindInt(int index, int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) {
    bind_rc_ = rc;
  }
}

void BoundStatement::BindNull(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) {
    bind_rc_ = rc;
  }
}

Result<bool> BoundStatement::Step(std::string_view action, std::string_view key) {
  if (bind_rc_ != SQLITE_OK) {
    Error e = SqliteError(nullptr, bind_rc_, action, key);
    return tl::unexpected<Error>(std::move(e));
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  return tl::unexpected<Error>(SqliteError(db_, rc, action, key));
}

Status BoundStatement::Run(std::string_view action, std::string_view key) {
  ACCORD_ASSIGN_OR_RETURN(const bool row, Step(action, key));
  if (row) {
    return Fail(Code::kInternal, "sqlite: " + std::string(action) + ": unexpected row");
  }
  return OkStatus();
}

std::string BoundStatement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (text == nullptr || size <= 0) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

ByteView BoundStatement::ColumnBlobView(int column) const {
  const void* blob = sqlite3_column_blob(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (blob == nullptr || size <= 0) {
    return {};
  }
  return {static_cast<const uint8_t*>(blob), static_cast<size_t>(size)};
}

Bytes BoundStatement::ColumnBlob(int column) const {
  const ByteView view = ColumnBlobView(column);
  return Bytes(view.begin(), view.end());
}

int64_t BoundStatement::ColumnInt(int column) const {
  return static_cast<int64_t>(sqlite3_column_int64(stmt_, column));
}

bool BoundStatement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

void EncodeStringList(const std::vector<std::string>& items, std::string& out) {
  out.clear();
  out.push_back('[');
  bool first = true;
  for (const std::string& item : items) {
    if (!first) {
      out.push_back(',');
    }
    first = false;
    out.push_back('"');
    for (const char c : item) {
      const auto byte = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(c);
      } else if (byte < 0x20) {
        out.append("\\u00");
        AppendHexDigit(out, byte >> 4);
        AppendHexDigit(out, byte);
      } else {
        out.push_back(c);
      }
    }
    out.push_back('"');
  }
  out.push_back(']');
}

Result<std::vector<std::string>> DecodeStringList(std::string_view json) {
  return ListParser(json).Parse();
}

}  // namespace accord::sqlite_internal
