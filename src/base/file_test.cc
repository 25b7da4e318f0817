#include "accord/file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace accord {
namespace {

namespace fs = std::filesystem;

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = (fs::temp_directory_path() / "accord-file-XXXXXX").string();
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  fs::path dir_;
};

TEST_F(FileTest, ReadsAFileOfUpToTheBound) {
  const std::string content(100'000, 'x');  // more than the first chunk of a pipe
  const std::string path = Write("f", content);
  auto text = ReadFileAtMost(path, content.size());
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_EQ(*text, content);
  auto secret = ReadSecretFileAtMost(path, content.size());
  ASSERT_TRUE(secret) << secret.error().message;
  EXPECT_EQ(secret->RevealText(InsecureSecretAccess()), content);

  auto empty = ReadFileAtMost(Write("empty", ""), 0);
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_EQ(*empty, "");
}

TEST_F(FileTest, RefusesAFileLargerThanTheBound) {
  const std::string path = Write("f", std::string(1001, 'x'));
  auto text = ReadFileAtMost(path, 1000);
  auto secret = ReadSecretFileAtMost(path, 1000);
  ASSERT_FALSE(text);
  ASSERT_FALSE(secret);
  for (const Error& error : {text.error(), secret.error()}) {
    EXPECT_EQ(error.code, Code::kInvalidArgument);
    EXPECT_EQ(error.message, "`" + path + "` is larger than 1000 bytes");
  }
  EXPECT_FALSE(ReadFileAtMost(Write("one", "x"), 0));
}

// A device or a pipe has no size to check first: it is read until the bound is passed, and no
// further (/dev/zero never ends).
TEST_F(FileTest, StopsReadingAnEndlessFileAtTheBound) {
  auto zero = ReadFileAtMost("/dev/zero", 300'000);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().message, "`/dev/zero` is larger than 300000 bytes");
  EXPECT_FALSE(ReadSecretFileAtMost("/dev/zero", 1 << 20));
}

TEST_F(FileTest, ReadsAPipeInChunksUpToTheBound) {
  // A writer whose reader has gone gets EPIPE, not a signal that ends the test.
  const auto previous = std::signal(SIGPIPE, SIG_IGN);
  for (const size_t sent : {size_t{0}, size_t{1}, size_t{65'536}, size_t{200'000}}) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::thread writer([&] {
      const std::string bytes(sent, 'p');
      size_t done = 0;
      while (done < bytes.size()) {
        const ssize_t n = ::write(fds[1], bytes.data() + done, bytes.size() - done);
        if (n <= 0) break;  // the reader stopped at the bound and closed its end
        done += static_cast<size_t>(n);
      }
      ::close(fds[1]);
    });
    const std::string path = "/dev/fd/" + std::to_string(fds[0]);
    auto text = sent <= 100'000 ? ReadFileAtMost(path, 100'000) : ReadFileAtMost(path, 199'999);
    ::close(fds[0]);
    writer.join();
    if (sent <= 100'000) {
      ASSERT_TRUE(text) << sent << ": " << text.error().message;
      EXPECT_EQ(*text, std::string(sent, 'p'));
    } else {
      ASSERT_FALSE(text);
      EXPECT_EQ(text.error().message, "`" + path + "` is larger than 199999 bytes");
    }
  }
  std::signal(SIGPIPE, previous);
}

// Standard input redirected from `path` while it lives, then given back.
class StdinFrom {
 public:
  explicit StdinFrom(const std::string& path) : saved_(::dup(STDIN_FILENO)) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ok_ = saved_ >= 0 && fd >= 0 && ::dup2(fd, STDIN_FILENO) == STDIN_FILENO;
    if (fd >= 0) ::close(fd);
  }
  StdinFrom(const StdinFrom&) = delete;
  StdinFrom& operator=(const StdinFrom&) = delete;
  ~StdinFrom() {
    if (saved_ < 0) return;
    ::dup2(saved_, STDIN_FILENO);
    ::close(saved_);
  }
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  const int saved_;
  bool ok_ = false;
};

// Standard input may be a file read partly already: what is left is what counts.
TEST_F(FileTest, StandardInputCountsWhatIsLeftOfAFile) {
  const StdinFrom in(Write("f", std::string(200, 'x') + std::string(100, 'y')));
  ASSERT_TRUE(in.ok());
  ASSERT_EQ(::lseek(STDIN_FILENO, 200, SEEK_SET), 200);
  auto rest = ReadFileAtMost("-", 100);
  ASSERT_TRUE(rest) << rest.error().message;
  EXPECT_EQ(*rest, std::string(100, 'y'));
  // Past its end, nothing is left of it, however large it is.
  ASSERT_EQ(::lseek(STDIN_FILENO, 400, SEEK_SET), 400);
  auto none = ReadFileAtMost("-", 10);
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_EQ(*none, "");
}

TEST_F(FileTest, SaysWhyAFileCannotBeRead) {
  const std::string missing = (dir_ / "missing").string();
  auto none = ReadFileAtMost(missing, 10);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Code::kNotFound);
  EXPECT_EQ(none.error().message, "cannot read `" + missing + "`: No such file or directory");

  auto directory = ReadSecretFileAtMost(dir_.string(), 10);
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code, Code::kFailedPrecondition);
  EXPECT_EQ(directory.error().message, "cannot read `" + dir_.string() + "`: Is a directory");
}

// For a caller whose own message names the file (a policy file's diagnostic), the errors call it
// "it" and keep their reason.
TEST_F(FileTest, CanCallTheFileItForACallerThatNamesIt) {
  auto none = ReadFileAtMost((dir_ / "missing").string(), 10, FileNamed::kAsIt);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Code::kNotFound);
  EXPECT_EQ(none.error().message, "cannot read it: No such file or directory");
  auto directory = ReadFileAtMost(dir_.string(), 10, FileNamed::kAsIt);
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().message, "cannot read it: Is a directory");
  auto large = ReadFileAtMost(Write("two", "xy"), 1, FileNamed::kAsIt);
  ASSERT_FALSE(large);
  EXPECT_EQ(large.error().code, Code::kInvalidArgument);
  EXPECT_EQ(large.error().message, "it is larger than 1 bytes");
}

// A file, a directory, and a link to one are made durable, and the directory that holds each; a
// path that is not there is an error naming it.
TEST_F(FileTest, MakesAFileOrADirectoryDurable) {
  const std::string file = Write("f", "x");
  fs::create_directory_symlink(dir_, dir_ / "link");
  for (const std::string& path : {file, dir_.string(), (dir_ / "link").string()}) {
    EXPECT_TRUE(SyncPath(path)) << path;
    EXPECT_TRUE(SyncDirectoryOf(path)) << path;
  }
  EXPECT_TRUE(SyncDirectoryOf("a-name-here"));  // the working directory
  EXPECT_TRUE(SyncDirectoryOf("/"));
  EXPECT_EQ(DirectoryOf("a/b/c"), "a/b");
  EXPECT_EQ(DirectoryOf("/c"), "/");
  EXPECT_EQ(DirectoryOf("c"), ".");
  const std::string missing = (dir_ / "missing").string();
  const Status gone = SyncPath(missing);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Code::kUnavailable);
  EXPECT_EQ(gone.error().message,
            "cannot make `" + missing + "` durable: No such file or directory");
}

// ReplaceFile puts a new file in place: a file already there (another name still holds it) and
// a symbolic link are replaced, not written through; a failure leaves nothing behind.
TEST_F(FileTest, ReplacesAFileWholeWithANewOne) {
  const std::string path = (dir_ / "key").string();
  ASSERT_TRUE(ReplaceFile(path, "first", 0600));
  EXPECT_EQ(*ReadFileAtMost(path, 100), "first");
  EXPECT_EQ(fs::status(path).permissions(), fs::perms(0600));

  fs::create_hard_link(path, dir_ / "planted");
  ASSERT_TRUE(ReplaceFile(path, "second", 0644));
  EXPECT_EQ(*ReadFileAtMost(path, 100), "second");
  EXPECT_EQ(fs::status(path).permissions(), fs::perms(0644));
  EXPECT_EQ(*ReadFileAtMost((dir_ / "planted").string(), 100), "first");

  fs::create_symlink(dir_ / "target", dir_ / "link");
  ASSERT_TRUE(ReplaceFile((dir_ / "link").string(), "third", 0600));
  EXPECT_FALSE(fs::is_symlink(dir_ / "link"));
  EXPECT_FALSE(fs::exists(dir_ / "target"));
  EXPECT_TRUE(ReplaceFile((dir_ / "empty").string(), "", 0600));
  EXPECT_EQ(fs::file_size(dir_ / "empty"), 0u);

  const std::string nowhere = (dir_ / "missing" / "key").string();
  const Status failed = ReplaceFile(nowhere, "x", 0600);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, Code::kFailedPrecondition);
  EXPECT_EQ(failed.error().message, "cannot write `" + nowhere + "`: No such file or directory");
  // A directory is not replaced: the rename fails after the new file was written, and the new
  // file goes.
  fs::create_directory(dir_ / "dir");
  const Status not_a_file = ReplaceFile((dir_ / "dir").string(), "x", 0600);
  ASSERT_FALSE(not_a_file);
  EXPECT_EQ(not_a_file.error().message,
            "cannot write `" + (dir_ / "dir").string() + "`: Is a directory");
  EXPECT_TRUE(fs::is_directory(dir_ / "dir"));
  size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 5u);  // key, planted, link, empty, dir
}

// A staged file is not in place until it is committed, and goes when dropped; it is committed
// once, and a moved-from one owns nothing.
TEST_F(FileTest, AStagedFileIsInPlaceOnlyOnceCommitted) {
  const std::string path = (dir_ / "cert").string();
  ASSERT_TRUE(ReplaceFile(path, "old", 0644));
  const auto entries = [this] {
    size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir_)) ++n;
    return n;
  };
  {
    Result<StagedFile> dropped = StagedFile::Write(path, "dropped", 0644);
    ASSERT_TRUE(dropped);
    EXPECT_EQ(entries(), 2u);
    EXPECT_EQ(*ReadFileAtMost(path, 100), "old");
  }
  EXPECT_EQ(entries(), 1u);
  EXPECT_EQ(*ReadFileAtMost(path, 100), "old");

  Result<StagedFile> staged = StagedFile::Write(path, "new", 0644);
  ASSERT_TRUE(staged);
  StagedFile moved = std::move(*staged);
  staged = StagedFile::Write(path, "replaced by the move below", 0644);
  ASSERT_TRUE(staged);
  *staged = std::move(moved);  // its own new file goes
  EXPECT_EQ(entries(), 2u);
  ASSERT_TRUE(staged->Commit());
  EXPECT_EQ(*ReadFileAtMost(path, 100), "new");
  EXPECT_EQ(fs::status(path).permissions(), fs::perms(0644));
  EXPECT_EQ(entries(), 1u);
  const Status again = staged->Commit();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, "`" + path + "` was put in place already");
  EXPECT_FALSE(moved.Commit());  // NOLINT(bugprone-use-after-move): it owns nothing now
  EXPECT_EQ(*ReadFileAtMost(path, 100), "new");
}

// Staged files are committed in order up to the first rename that fails: the ones before it are
// in place, the ones from it on keep their old contents and leave nothing behind.
TEST_F(FileTest, StagedFilesAreCommittedInOrderUpToAFailure) {
  const auto at = [this](const char* name) { return (dir_ / name).string(); };
  for (const char* name : {"first", "third"}) ASSERT_TRUE(ReplaceFile(at(name), "old", 0644));
  std::vector<StagedFile> staged;
  for (const char* name : {"first", "second", "third"}) {
    Result<StagedFile> file = StagedFile::Write(at(name), "new", 0644);
    ASSERT_TRUE(file);
    staged.push_back(std::move(*file));
  }
  fs::create_directory(dir_ / "second");  // after staging: its rename fails
  const Status put = CommitInOrder(staged);
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().code, Code::kFailedPrecondition);
  EXPECT_EQ(put.error().message, "cannot write `" + at("second") + "`: Is a directory");
  EXPECT_EQ(*ReadFileAtMost(at("first"), 100), "new");
  EXPECT_TRUE(fs::is_directory(dir_ / "second"));
  EXPECT_EQ(*ReadFileAtMost(at("third"), 100), "old");
  staged.clear();
  size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 3u);  // first, second, third: no staged file left

  for (const char* name : {"first", "third"}) {
    Result<StagedFile> file = StagedFile::Write(at(name), "newer", 0600);
    ASSERT_TRUE(file);
    staged.push_back(std::move(*file));
  }
  ASSERT_TRUE(CommitInOrder(staged));
  EXPECT_EQ(*ReadFileAtMost(at("first"), 100), "newer");
  EXPECT_EQ(*ReadFileAtMost(at("third"), 100), "newer");
  EXPECT_TRUE(CommitInOrder({}));
}

// A lock is held by one holder at a time, threads of one process included; it goes with its
// holder, and moves with it.
TEST_F(FileTest, AFileLockHasOneHolder) {
  const std::string path = (dir_ / "serve.lock").string();
  Result<FileLock> first = FileLock::Take(path, FileLock::Wait::kNo);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(fs::status(path).permissions(), fs::perms(0600));
  const Result<FileLock> second = FileLock::Take(path, FileLock::Wait::kNo);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Code::kUnavailable);
  EXPECT_EQ(second.error().message, "`" + path + "` is locked by another holder");
  FileLock moved = std::move(*first);
  EXPECT_FALSE(FileLock::Take(path, FileLock::Wait::kNo));
  // A waiter takes it once the holder lets go.
  std::thread waiter([&path] { EXPECT_TRUE(FileLock::Take(path, FileLock::Wait::kUntilFree)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  moved = FileLock::Take((dir_ / "other.lock").string(), FileLock::Wait::kNo).value();
  waiter.join();
  EXPECT_TRUE(FileLock::Take(path, FileLock::Wait::kNo));
  // Never through a symbolic link, nor in a directory that is not there.
  fs::create_symlink(dir_ / "target", dir_ / "link.lock");
  const Result<FileLock> linked =
      FileLock::Take((dir_ / "link.lock").string(), FileLock::Wait::kNo);
  ASSERT_FALSE(linked);
  EXPECT_EQ(linked.error().code, Code::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(dir_ / "target"));
  const std::string nowhere = (dir_ / "missing" / "x.lock").string();
  const Result<FileLock> missing = FileLock::Take(nowhere, FileLock::Wait::kNo);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "cannot lock `" + nowhere + "`: No such file or directory");
}

}  // namespace
}  // namespace accord
