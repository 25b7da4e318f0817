// WorkQueue: items handed from one thread to another, taken together.
#ifndef ACCORD_SRC_SERVER_WORK_QUEUE_H_
#define ACCORD_SRC_SERVER_WORK_QUEUE_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace accord::server_internal {

// Push from any thread; Run, on the thread that takes the items, calls `work` with every item
// waiting, oldest first, until Stop, once the queue is empty. Items pushed during a call are the
// next call's.
//
//   WorkQueue<Job> jobs;
//   std::thread t([&] { jobs.Run([](std::vector<Job>& batch) { ... }); });
//   jobs.Push(job);
//   jobs.Stop();
//   t.join();
template <typename T>
class WorkQueue {
 public:
  WorkQueue() = default;
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void Push(T item) {
    {
      std::lock_guard lock(mu_);
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
  }

  void Run(const std::function<void(std::vector<T>&)>& work) {
    std::vector<T> batch;
    while (true) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return !items_.empty() || stop_; });
        if (items_.empty()) {
          return;
        }
        batch.swap(items_);
      }
      work(batch);
      batch.clear();
    }
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<T> items_;  // GUARDED_BY(mu_)
  bool stop_ = false;     // GUARDED_BY(mu_)
};

}  // namespace accord::server_internal

#endif  // ACCORD_SRC_SERVER_WORK_QUEUE_H_
