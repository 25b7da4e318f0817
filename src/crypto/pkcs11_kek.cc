// pkcs11_kek.cc — the key-encryption key that never leaves a PKCS#11 token (keystore.h).
//
// The KEK is an AES-256 key generated inside the token as sensitive and non-extractable. Wrap and
// Unwrap are CKM_AES_GCM operations done by the token, with a nonce from OpenSSL (not the
// token's generator), in the same layout as LocalKek: nonce(12) || ciphertext || tag(16).
//
// Two PKCS#11 facts shape this file:
//   * C_Initialize/C_Finalize act on the whole process, so one KEK's C_Finalize would break every
//     other KEK on the same module. `ModuleRef` therefore counts the users of each loaded module
//     in a process-wide table and finalises and unloads it with the last one. This is the one
//     global in the crypto module; the PKCS#11 API leaves no way around it.
//   * The login state of a token is shared by all of the process's sessions on it: C_Login on a
//     second session says CKR_USER_ALREADY_LOGGED_IN without looking at the PIN, and C_Logout
//     logs every session out. `UserSession` therefore remembers the PIN the token accepted and
//     checks later opens against it, never calls C_Logout, and lets the token log the user out
//     when the last session closes (PKCS#11 2.40, C_CloseSession).
//
// Thread safety: a Pkcs11Kek serialises the calls on its session with a mutex, because a PKCS#11
// session must not be used by two threads at once. The module is initialised with
// CKF_OS_LOCKING_OK, so different KEKs (different sessions) work in parallel.
#include <dlfcn.h>
#include <fmt/format.h>
#include <p11-kit/pkcs11.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "accord/crypto.h"
#include "accord/keystore.h"
#include "accord/secret.h"
#include "accord/status.h"

namespace accord {
namespace {

constexpr CK_ULONG kKekSize = 32;      // AES-256
constexpr size_t kKeyIdSize = 16;      // the random CKA_ID a KEK is made with
constexpr CK_ULONG kGcmTagBits = 128;  // kAeadTagSize bytes
constexpr size_t kTokenLabelSize = 32;

static_assert(kGcmTagBits == kAeadTagSize * 8);

// The name of the return values an operator is likely to meet; hex for the rest.
std::string RvText(CK_RV rv) {
  switch (rv) {
    case CKR_GENERAL_ERROR:
      return "CKR_GENERAL_ERROR";
    case CKR_FUNCTION_FAILED:
      return "CKR_FUNCTION_FAILED";
    case CKR_HOST_MEMORY:
      return "CKR_HOST_MEMORY";
    case CKR_DEVICE_ERROR:
      return "CKR_DEVICE_ERROR";
    case CKR_DEVICE_MEMORY:
      return "CKR_DEVICE_MEMORY";
    case CKR_DEVICE_REMOVED:
      return "CKR_DEVICE_REMOVED";
    case CKR_TOKEN_NOT_PRESENT:
      return "CKR_TOKEN_NOT_PRESENT";
    case CKR_TOKEN_WRITE_PROTECTED:
      return "CKR_TOKEN_WRITE_PROTECTED";
    case CKR_SESSION_COUNT:
      return "CKR_SESSION_COUNT";
    case CKR_MECHANISM_INVALID:
      return "CKR_MECHANISM_INVALID";
    case CKR_MECHANISM_PARAM_INVALID:
      return "CKR_MECHANISM_PARAM_INVALID";
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
      return "CKR_KEY_FUNCTION_NOT_PERMITTED";
    case CKR_TEMPLATE_INCONSISTENT:
      return "CKR_TEMPLATE_INCONSISTENT";
    case CKR_ATTRIBUTE_VALUE_INVALID:
      return "CKR_ATTRIBUTE_VALUE_INVALID";
    default:
      return fmt::format("{:#x}", rv);
  }
}

Error TokenError(std::string_view call, std::string_view token, CK_RV rv) {
  return Error{Code::kUnavailable,
               fmt::format("PKCS#11 `{}` on token `{}` failed: {}", call, token, RvText(rv))};
}

Error DecryptionFailed() { return Error{Code::kDataLoss, "decryption failed"}; }

// How much more than the buffer first given (GCM's output for Wrap, the ciphertext with its tag
// for Unwrap) a token may ask room for (CKR_BUFFER_TOO_SMALL): a block.
constexpr CK_ULONG kSlack = 16;

// Return values that say the session or the token went away, not that the data was bad.
bool IsTokenFailure(CK_RV rv) {
  switch (rv) {
    case CKR_HOST_MEMORY:
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_MEMORY:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_OPERATION_NOT_INITIALIZED:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OPERATION_ACTIVE:  // an operation left unfinished on the session
    case CKR_BUFFER_TOO_SMALL:  // twice, for at least GCM's own output size
      return true;
    default:
      return false;
  }
}

// A token's label as text: CK_TOKEN_INFO pads it to 32 bytes with spaces (some modules use NULs).
std::string TokenLabel(const CK_TOKEN_INFO& info) {
  std::string label(reinterpret_cast<const char*>(info.label), kTokenLabelSize);
  const size_t end = label.find_last_not_of(std::string_view(" \0", 2));
  label.resize(end == std::string::npos ? 0 : end + 1);
  return label;
}

// --- Loaded modules ------------------------------------------------------------------------

// The login of this process on one token.
struct Login {
  SecretBytes pin;      // the PIN the token accepted, to check later opens against
  size_t sessions = 0;  // our open sessions on the token; it logs out when the last closes
};

// One loaded and initialised module.
struct Module {
  void* library = nullptr;                   // from dlopen
  CK_FUNCTION_LIST_PTR functions = nullptr;  // owned by the module
  bool finalize = false;                     // C_Initialize was ours, so C_Finalize is too
  size_t users = 0;                          // GUARDED_BY(Registry::mu)

  std::mutex login_mu;                 // serialises logins and session opening and closing
  std::map<CK_SLOT_ID, Login> logins;  // GUARDED_BY(login_mu)
};

struct Registry {
  std::mutex mu;
  // INVARIANT: each entry holds one dlopen reference to its key and has users > 0.
  std::map<void*, std::unique_ptr<Module>> modules;  // GUARDED_BY(mu), keyed by dlopen handle
};

Registry& TheRegistry() {
  // Never destroyed, so that a KEK released during static destruction still finds it.
  static Registry* const registry = new Registry;
  return *registry;
}

// A counted use of a loaded module. Keying the table by the dlopen handle means two paths to the
// same library (a symlink) share one initialisation.
class ModuleRef {
 public:
  // kUnavailable when `path` cannot be loaded, is no PKCS#11 module, or fails to initialise.
  [[nodiscard]] static Result<ModuleRef> Load(const std::string& path) {
    Registry& registry = TheRegistry();
    const std::lock_guard lock(registry.mu);
    void* const library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      const char* const why = dlerror();
      return Fail(Code::kUnavailable, fmt::format("cannot load PKCS#11 module `{}`: {}", path,
                                                  why != nullptr ? why : "unknown error"));
    }
    if (const auto it = registry.modules.find(library); it != registry.modules.end()) {
      dlclose(library);  // the entry holds its own reference
      ++it->second->users;
      return ModuleRef(it->second.get());
    }
    const auto get_function_list =
        reinterpret_cast<CK_C_GetFunctionList>(dlsym(library, "C_GetFunctionList"));
    CK_FUNCTION_LIST_PTR functions = nullptr;
    if (get_function_list == nullptr || get_function_list(&functions) != CKR_OK ||
        functions == nullptr) {
      dlclose(library);
      return Fail(Code::kUnavailable, fmt::format("`{}` is not a PKCS#11 module", path));
    }
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    const CK_RV rv = functions->C_Initialize(&args);
    // Already initialised means other code in this process uses the module too: it finalises it.
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      dlclose(library);
      return Fail(Code::kUnavailable,
                  fmt::format("cannot initialise PKCS#11 module `{}`: {}", path, RvText(rv)));
    }
    auto module = std::make_unique<Module>();
    module->library = library;
    module->functions = functions;
    module->finalize = rv == CKR_OK;
    module->users = 1;
    Module* const raw = module.get();
    registry.modules.emplace(library, std::move(module));
    return ModuleRef(raw);
  }

  ModuleRef(ModuleRef&& other) noexcept : module_(std::exchange(other.module_, nullptr)) {}
  ModuleRef& operator=(ModuleRef&&) = delete;
  ModuleRef(const ModuleRef&) = delete;
  ModuleRef& operator=(const ModuleRef&) = delete;

  ~ModuleRef() {
    if (module_ == nullptr) {
      return;
    }
    Registry& registry = TheRegistry();
    const std::lock_guard lock(registry.mu);
    if (--module_->users > 0) {
      return;
    }
    // Under the registry lock, so a concurrent Load cannot see the module half finalised.
    if (module_->finalize) {
      module_->functions->C_Finalize(nullptr);
    }
    void* const library = module_->library;
    registry.modules.erase(library);  // destroys *module_
    dlclose(library);
  }

  [[nodiscard]] Module& operator*() const { return *module_; }
  [[nodiscard]] Module* operator->() const { return module_; }

 private:
  explicit ModuleRef(Module* module) : module_(module) {}
  Module* module_;  // null once moved from
};

// The slot holding the initialised token labelled `label`.
Result<CK_SLOT_ID> FindToken(const Module& module, const std::string& label) {
  CK_FUNCTION_LIST_PTR const f = module.functions;
  std::vector<CK_SLOT_ID> slots;
  CK_RV rv = CKR_BUFFER_TOO_SMALL;
  // A token may appear between the two calls; then ask again.
  for (int attempt = 0; attempt < 3 && rv == CKR_BUFFER_TOO_SMALL; ++attempt) {
    CK_ULONG count = 0;
    rv = f->C_GetSlotList(CK_TRUE, nullptr, &count);
    if (rv != CKR_OK) {
      break;
    }
    slots.resize(count);
    rv = f->C_GetSlotList(CK_TRUE, slots.data(), &count);
    slots.resize(std::min<CK_ULONG>(count, slots.size()));
  }
  if (rv != CKR_OK) {
    return Fail(Code::kUnavailable, fmt::format("PKCS#11 `C_GetSlotList` failed: {}", RvText(rv)));
  }
  std::optional<CK_SLOT_ID> found;
  for (const CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info{};
    if (f->C_GetTokenInfo(slot, &info) != CKR_OK) {
      continue;  // removed meanwhile
    }
    if ((info.flags & CKF_TOKEN_INITIALIZED) == 0 || TokenLabel(info) != label) {
      continue;
    }
    if (found.has_value()) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("more than one PKCS#11 token `{}`", label));
    }
    found = slot;
  }
  if (!found.has_value()) {
    return Fail(Code::kNotFound, fmt::format("no PKCS#11 token `{}`", label));
  }
  return *found;
}

enum class SessionMode { kReadOnly, kReadWrite };

// A session on one token with the user logged in. It owns its use of the module.
class UserSession {
 public:
  // kPermissionDenied "wrong PIN for token `L`" when the token (or an earlier login of this
  // process) refuses `pin`.
  [[nodiscard]] static Result<UserSession> Open(ModuleRef module, CK_SLOT_ID slot,
                                                const std::string& token, const SecretBytes& pin,
                                                SessionMode mode) {
    CK_FUNCTION_LIST_PTR const f = module->functions;
    const std::lock_guard lock(module->login_mu);
    CK_FLAGS flags = CKF_SERIAL_SESSION;
    if (mode == SessionMode::kReadWrite) {
      flags |= CKF_RW_SESSION;
    }
    CK_SESSION_HANDLE handle = CK_INVALID_HANDLE;
    CK_RV rv = f->C_OpenSession(slot, flags, nullptr, nullptr, &handle);
    if (rv != CKR_OK) {
      return tl::unexpected(TokenError("C_OpenSession", token, rv));
    }
    const auto wrong_pin = [&] {
      return Fail(Code::kPermissionDenied, fmt::format("wrong PIN for token `{}`", token));
    };
    const SecretAccess access = InsecureSecretAccess();
    if (const auto it = module->logins.find(slot); it != module->logins.end()) {
      // The token would not look at the PIN again: compare with the one it accepted.
      if (!ConstantTimeEquals(pin.Reveal(access), it->second.pin.Reveal(access))) {
        f->C_CloseSession(handle);
        return wrong_pin();
      }
      ++it->second.sessions;
      return UserSession(std::move(module), slot, handle);
    }
    SecretBytes buffer = pin.Clone();  // C_Login takes a mutable pointer; the copy is wiped
    const std::span<uint8_t> bytes = buffer.RevealMutable(access);
    rv = f->C_Login(handle, CKU_USER, bytes.data(), bytes.size());
    buffer.Clear();
    if (rv != CKR_OK) {
      // Our only session on the token, so closing it leaves the token as it was.
      f->C_CloseSession(handle);
      switch (rv) {
        case CKR_PIN_INCORRECT:
        case CKR_PIN_INVALID:
        case CKR_PIN_LEN_RANGE:
          return wrong_pin();
        case CKR_PIN_LOCKED:
          return Fail(Code::kPermissionDenied, fmt::format("PIN locked for token `{}`", token));
        case CKR_USER_PIN_NOT_INITIALIZED:
          return Fail(Code::kFailedPrecondition, fmt::format("token `{}` has no user PIN", token));
        case CKR_USER_ALREADY_LOGGED_IN:
          // Logged in by code outside this file, so the PIN cannot be checked.
          return Fail(Code::kFailedPrecondition,
                      fmt::format("token `{}` is logged in by other code in this process", token));
        default:
          return tl::unexpected(TokenError("C_Login", token, rv));
      }
    }
    module->logins.emplace(slot, Login{pin.Clone(), 1});
    return UserSession(std::move(module), slot, handle);
  }

  UserSession(UserSession&& other) noexcept
      : module_(std::move(other.module_)),
        slot_(other.slot_),
        handle_(std::exchange(other.handle_, CK_INVALID_HANDLE)) {}
  UserSession& operator=(UserSession&&) = delete;
  UserSession(const UserSession&) = delete;
  UserSession& operator=(const UserSession&) = delete;

  // Closes the session without C_Logout, which would log out the process's other sessions too.
  ~UserSession() {
    if (handle_ == CK_INVALID_HANDLE) {
      return;
    }
    const std::lock_guard lock(module_->login_mu);
    module_->functions->C_CloseSession(handle_);
    if (const auto it = module_->logins.find(slot_);
        it != module_->logins.end() && --it->second.sessions == 0) {
      module_->logins.erase(it);  // the token has logged out; the PIN copy is wiped
    }
  }

  [[nodiscard]] CK_FUNCTION_LIST_PTR functions() const { return module_->functions; }
  [[nodiscard]] CK_SESSION_HANDLE handle() const { return handle_; }

 private:
  UserSession(ModuleRef module, CK_SLOT_ID slot, CK_SESSION_HANDLE handle)
      : module_(std::move(module)), slot_(slot), handle_(handle) {}

  ModuleRef module_;
  CK_SLOT_ID slot_;
  CK_SESSION_HANDLE handle_;  // CK_INVALID_HANDLE once moved from
};

Status CheckOptions(const Pkcs11Options& options) {
  if (options.token_label.empty() || options.token_label.size() > kTokenLabelSize) {
    return Fail(
        Code::kInvalidArgument,
        fmt::format("a PKCS#11 token label has 1 to 32 bytes, not `{}`", options.token_label));
  }
  if (options.key_label.empty()) {
    return Fail(Code::kInvalidArgument, "empty PKCS#11 key label");
  }
  if (options.pin.empty()) {
    return Fail(Code::kInvalidArgument,
                fmt::format("empty PIN for token `{}`", options.token_label));
  }
  return OkStatus();
}

// Loads the module, finds the token and logs in.
Result<UserSession> Connect(const Pkcs11Options& options, SessionMode mode) {
  ACCORD_RETURN_IF_ERROR(CheckOptions(options));
  ACCORD_ASSIGN_OR_RETURN(ModuleRef module, ModuleRef::Load(options.module));
  ACCORD_ASSIGN_OR_RETURN(const CK_SLOT_ID slot, FindToken(*module, options.token_label));
  return UserSession::Open(std::move(module), slot, options.token_label, options.pin, mode);
}

// The secret keys labelled `options.key_label`, and with the CKA_ID `id` when it is given: none,
// one, or two (enough to say "more than one").
Result<std::vector<CK_OBJECT_HANDLE>> FindSecretKeys(const UserSession& session,
                                                     const Pkcs11Options& options,
                                                     ByteView id = {}) {
  CK_FUNCTION_LIST_PTR const f = session.functions();
  CK_OBJECT_CLASS object_class = CKO_SECRET_KEY;
  std::string label = options.key_label;
  Bytes id_copy(id.begin(), id.end());  // the template takes non-const pointers
  std::array<CK_ATTRIBUTE, 3> match{{
      {CKA_CLASS, &object_class, sizeof(object_class)},
      {CKA_LABEL, label.data(), label.size()},
      {CKA_ID, id_copy.data(), id_copy.size()},
  }};
  // With an id, only the key that has it; without, every key of the label.
  const CK_ULONG matched = id.empty() ? 2 : 3;
  CK_RV rv = f->C_FindObjectsInit(session.handle(), match.data(), matched);
  if (rv != CKR_OK) {
    return tl::unexpected(TokenError("C_FindObjectsInit", options.token_label, rv));
  }
  std::vector<CK_OBJECT_HANDLE> found(2, CK_INVALID_HANDLE);
  CK_ULONG count = 0;
  rv = f->C_FindObjects(session.handle(), found.data(), found.size(), &count);
  f->C_FindObjectsFinal(session.handle());
  if (rv != CKR_OK) {
    return tl::unexpected(TokenError("C_FindObjects", options.token_label, rv));
  }
  found.resize(std::min<CK_ULONG>(count, found.size()));
  return found;
}

// --- The KEK -------------------------------------------------------------------------------

class Pkcs11Kek final : public KeyEncryptionKey {
 public:
  [[nodiscard]] static Result<std::unique_ptr<KeyEncryptionKey>> Open(
      const Pkcs11Options& options) {
    ACCORD_ASSIGN_OR_RETURN(UserSession session, Connect(options, SessionMode::kReadOnly));
    ACCORD_ASSIGN_OR_RETURN(const std::vector<CK_OBJECT_HANDLE> keys,
                            FindSecretKeys(session, options));
    if (keys.empty()) {
      return Fail(Code::kNotFound,
                  fmt::format("no key `{}` on token `{}`", options.key_label, options.token_label));
    }
    if (keys.size() > 1) {
      return Fail(Code::kFailedPrecondition, fmt::format("more than one key `{}` on token `{}`",
                                                         options.key_label, options.token_label));
    }
    // Refuse a key that is not AES-256 now rather than at the first Wrap; one that could leave
    // the token (not sensitive, or extractable), which the KEK must never do; one that could have
    // left it before (imported, or extractable or not sensitive once: its value may be known
    // elsewhere); and one usable without logging in (not private: SoftHSM2 also keeps such a
    // key's value unencrypted in its token directory).
    CK_KEY_TYPE key_type = 0;
    CK_ULONG size = 0;
    CK_BBOOL sensitive = CK_FALSE;
    CK_BBOOL extractable = CK_TRUE;
    CK_BBOOL always_sensitive = CK_FALSE;
    CK_BBOOL never_extractable = CK_FALSE;
    CK_BBOOL is_private = CK_FALSE;
    std::array<CK_ATTRIBUTE, 7> attributes{{
        {CKA_KEY_TYPE, &key_type, sizeof(key_type)},
        {CKA_VALUE_LEN, &size, sizeof(size)},
        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
        {CKA_ALWAYS_SENSITIVE, &always_sensitive, sizeof(always_sensitive)},
        {CKA_NEVER_EXTRACTABLE, &never_extractable, sizeof(never_extractable)},
        {CKA_PRIVATE, &is_private, sizeof(is_private)},
    }};
    const CK_RV rv = session.functions()->C_GetAttributeValue(session.handle(), keys[0],
                                                              attributes.data(), attributes.size());
    if (rv != CKR_OK) {
      return tl::unexpected(TokenError("C_GetAttributeValue", options.token_label, rv));
    }
    if (key_type != CKK_AES || size != kKekSize) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("key `{}` on token `{}` is not an AES-256 key", options.key_label,
                              options.token_label));
    }
    if (sensitive != CK_TRUE || extractable != CK_FALSE) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("key `{}` on token `{}` can leave the token (it must be sensitive "
                              "and not extractable)",
                              options.key_label, options.token_label));
    }
    if (always_sensitive != CK_TRUE || never_extractable != CK_TRUE) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("key `{}` on token `{}` may have left the token (it must have been "
                              "made on the token sensitive and not extractable, and stayed so)",
                              options.key_label, options.token_label));
    }
    if (is_private != CK_TRUE) {
      return Fail(Code::kFailedPrecondition,
                  fmt::format("key `{}` on token `{}` can be used without logging in (it must "
                              "be private)",
                              options.key_label, options.token_label));
    }
    return std::unique_ptr<KeyEncryptionKey>(
        new Pkcs11Kek(std::move(session), keys[0], options.token_label));
  }

  [[nodiscard]] Result<Bytes> Wrap(const SecretBytes& key,
                                   ByteView associated_data) const override {
    ACCORD_ASSIGN_OR_RETURN(Bytes nonce, TryRandomBytes(kAeadNonceSize));
    Bytes aad(associated_data.begin(), associated_data.end());  // the API wants mutable pointers
    CK_GCM_PARAMS params = GcmParams(nonce, aad);
    CK_MECHANISM mechanism{CKM_AES_GCM, &params, sizeof(params)};
    SecretBytes input = key.Clone();
    const std::span<uint8_t> plaintext = input.RevealMutable(InsecureSecretAccess());
    uint8_t none = 0;  // a non-null pointer for an empty key: null would mean "no data"
    uint8_t* const in = plaintext.empty() ? &none : plaintext.data();
    // GCM's output size is known: the buffer is made before the operation starts, which one call
    // then ends. A size query first would leave the operation active on the session if the
    // allocation between the two calls failed, and every later C_EncryptInit refused.
    Bytes sealed(kAeadNonceSize + plaintext.size() + kAeadTagSize);

    const std::lock_guard lock(mu_);
    CK_FUNCTION_LIST_PTR const f = session_.functions();
    CK_RV rv = f->C_EncryptInit(session_.handle(), &mechanism, key_);
    if (rv != CKR_OK) {
      return tl::unexpected(TokenError("C_EncryptInit", token_, rv));
    }
    CK_ULONG written = plaintext.size() + kAeadTagSize;
    rv = f->C_Encrypt(session_.handle(), in, plaintext.size(), sealed.data() + kAeadNonceSize,
                      &written);
    if (rv == CKR_BUFFER_TOO_SMALL && written <= plaintext.size() + kAeadTagSize + kSlack) {
      // A token that asks for a little more than GCM's output: its operation stays active until
      // a call with that much room ends it (PKCS#11 §5.2). More than a block's slack is refused
      // as the token's failure.
      sealed.resize(kAeadNonceSize + written);
      rv = f->C_Encrypt(session_.handle(), in, plaintext.size(), sealed.data() + kAeadNonceSize,
                        &written);
    }
    if (rv != CKR_OK) {
      return tl::unexpected(TokenError("C_Encrypt", token_, rv));
    }
    if (written != plaintext.size() + kAeadTagSize) {
      return Fail(Code::kInternal,
                  fmt::format("PKCS#11 token `{}` returned a GCM message of {} bytes for {}",
                              token_, written, plaintext.size()));
    }
    std::copy(nonce.begin(), nonce.end(), sealed.begin());
    sealed.resize(kAeadNonceSize + written);
    return sealed;
  }

  [[nodiscard]] Result<SecretBytes> Unwrap(ByteView wrapped,
                                           ByteView associated_data) const override {
    if (wrapped.size() < kAeadOverhead) {
      return tl::unexpected(DecryptionFailed());
    }
    Bytes nonce(wrapped.begin(), wrapped.begin() + kAeadNonceSize);
    Bytes body(wrapped.begin() + kAeadNonceSize, wrapped.end());  // ciphertext || tag
    Bytes aad(associated_data.begin(), associated_data.end());
    CK_GCM_PARAMS params = GcmParams(nonce, aad);
    CK_MECHANISM mechanism{CKM_AES_GCM, &params, sizeof(params)};

    // Made before the operation starts, as in Wrap, and as large as the body with its tag
    // (SoftHSM2 asks for that much): never empty, since a null output would be a size query,
    // which checks no tag.
    SecretBytes plaintext(body.size());
    const std::span<uint8_t> out = plaintext.RevealMutable(InsecureSecretAccess());

    const std::lock_guard lock(mu_);
    CK_FUNCTION_LIST_PTR const f = session_.functions();
    // Nothing in `wrapped` can make the init fail: an error here is the token's.
    CK_RV rv = f->C_DecryptInit(session_.handle(), &mechanism, key_);
    if (rv != CKR_OK) {
      return tl::unexpected(TokenError("C_DecryptInit", token_, rv));
    }
    CK_ULONG written = plaintext.size();
    rv = f->C_Decrypt(session_.handle(), body.data(), body.size(), out.data(), &written);
    if (rv == CKR_BUFFER_TOO_SMALL && written <= body.size() + kSlack) {  // as in Wrap
      plaintext.Resize(written);
      const std::span<uint8_t> more = plaintext.RevealMutable(InsecureSecretAccess());
      rv = f->C_Decrypt(session_.handle(), body.data(), body.size(), more.data(), &written);
    }
    if (rv == CKR_OK && written == body.size() - kAeadTagSize) {
      plaintext.Resize(written);
      return plaintext;
    }
    // SoftHSM2 says CKR_GENERAL_ERROR or CKR_ENCRYPTED_DATA_INVALID for a bad tag. Only errors
    // that no input can cause are reported as the token's; everything else is the data's.
    if (rv != CKR_OK && IsTokenFailure(rv)) {
      return tl::unexpected(TokenError("C_Decrypt", token_, rv));
    }
    return tl::unexpected(DecryptionFailed());
  }

  [[nodiscard]] std::string Describe() const override {
    return fmt::format("PKCS#11 token `{}`", token_);
  }

 private:
  Pkcs11Kek(UserSession session, CK_OBJECT_HANDLE key, std::string token)
      : session_(std::move(session)), key_(key), token_(std::move(token)) {}

  // The parameters point into `nonce` and `aad`, which must outlive the operation's init.
  static CK_GCM_PARAMS GcmParams(Bytes& nonce, Bytes& aad) {
    CK_GCM_PARAMS params{};
    params.pIv = nonce.data();
    params.ulIvLen = nonce.size();
    params.ulIvBits = nonce.size() * 8;
    params.pAAD = aad.data();
    params.ulAADLen = aad.size();
    params.ulTagBits = kGcmTagBits;
    return params;
  }

  mutable std::mutex mu_;
  const UserSession session_;  // GUARDED_BY(mu_): every call on it holds mu_
  const CK_OBJECT_HANDLE key_;
  const std::string token_;
};

}  // namespace

Result<Bytes> CreatePkcs11Kek(const Pkcs11Options& options) {
  ACCORD_ASSIGN_OR_RETURN(const UserSession session, Connect(options, SessionMode::kReadWrite));
  ACCORD_ASSIGN_OR_RETURN(const std::vector<CK_OBJECT_HANDLE> existing,
                          FindSecretKeys(session, options));
  if (!existing.empty()) {
    return Fail(Code::kAlreadyExists, fmt::format("key `{}` already exists on token `{}`",
                                                  options.key_label, options.token_label));
  }
  CK_OBJECT_CLASS object_class = CKO_SECRET_KEY;
  CK_KEY_TYPE key_type = CKK_AES;
  CK_ULONG size = kKekSize;
  CK_BBOOL yes = CK_TRUE;
  CK_BBOOL no = CK_FALSE;
  std::string label = options.key_label;
  ACCORD_ASSIGN_OR_RETURN(Bytes id, TryRandomBytes(kKeyIdSize));
  // Sensitive and not extractable: the key never leaves the token, not even wrapped. It may only
  // encrypt and decrypt; wrapping other token keys and deriving from it are off.
  std::array<CK_ATTRIBUTE, 14> attributes{{
      {CKA_ID, id.data(), id.size()},
      {CKA_CLASS, &object_class, sizeof(object_class)},
      {CKA_KEY_TYPE, &key_type, sizeof(key_type)},
      {CKA_VALUE_LEN, &size, sizeof(size)},
      {CKA_LABEL, label.data(), label.size()},
      {CKA_TOKEN, &yes, sizeof(yes)},
      {CKA_PRIVATE, &yes, sizeof(yes)},
      {CKA_SENSITIVE, &yes, sizeof(yes)},
      {CKA_EXTRACTABLE, &no, sizeof(no)},
      {CKA_ENCRYPT, &yes, sizeof(yes)},
      {CKA_DECRYPT, &yes, sizeof(yes)},
      {CKA_WRAP, &no, sizeof(no)},
      {CKA_UNWRAP, &no, sizeof(no)},
      {CKA_DERIVE, &no, sizeof(no)},
  }};
  CK_MECHANISM mechanism{CKM_AES_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  const CK_RV rv = session.functions()->C_GenerateKey(session.handle(), &mechanism,
                                                      attributes.data(), attributes.size(), &key);
  if (rv != CKR_OK) {
    return tl::unexpected(TokenError("C_GenerateKey", options.token_label, rv));
  }
  return id;
}

Status DestroyPkcs11Kek(const Pkcs11Options& options, ByteView id) {
  if (id.empty()) {  // which would match every key of the label
    return Fail(Code::kInvalidArgument, "no key id to destroy the key by");
  }
  ACCORD_ASSIGN_OR_RETURN(const UserSession session, Connect(options, SessionMode::kReadWrite));
  ACCORD_ASSIGN_OR_RETURN(const std::vector<CK_OBJECT_HANDLE> keys,
                          FindSecretKeys(session, options, id));
  if (keys.empty()) {
    return Fail(Code::kNotFound,
                fmt::format("no key `{}` on token `{}`", options.key_label, options.token_label));
  }
  if (keys.size() > 1) {  // not knowing which is meant, none is destroyed
    return Fail(Code::kFailedPrecondition, fmt::format("more than one key `{}` on token `{}`",
                                                       options.key_label, options.token_label));
  }
  const CK_RV rv = session.functions()->C_DestroyObject(session.handle(), keys.front());
  if (rv != CKR_OK) {
    return tl::unexpected(TokenError("C_DestroyObject", options.token_label, rv));
  }
  return OkStatus();
}

Result<std::unique_ptr<KeyEncryptionKey>> OpenPkcs11Kek(const Pkcs11Options& options) {
  return Pkcs11Kek::Open(options);
}

}  // namespace accord
