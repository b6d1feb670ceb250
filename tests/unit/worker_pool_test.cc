#include "common/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <thread>

namespace rw {
namespace {

using namespace std::chrono_literals;

TEST(WorkerPool, RunsEveryJobBeforeItIsDestroyed) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool;
    for (int i = 0; i < 50; ++i)
      pool.submit([&] {
        std::this_thread::sleep_for(1ms);
        ++ran;
      });
  }
  EXPECT_EQ(ran.load(), 50);
}

TEST(WorkerPool, AJobNeverWaitsForABusyOne) {
  WorkerPool pool;
  std::promise<void> release;
  auto released = release.get_future().share();
  pool.submit([released] { released.wait(); });
  std::promise<void> second;
  pool.submit([&] { second.set_value(); });
  // The first job blocks until the second has run: they must overlap.
  EXPECT_EQ(second.get_future().wait_for(10s), std::future_status::ready);
  release.set_value();
}

TEST(WorkerPool, ReusesIdleThreadsForJobsOneAfterAnother) {
  WorkerPool pool;
  std::mutex mu;
  std::set<std::thread::id> ids;
  for (int i = 0; i < 100; ++i) {
    std::promise<void> done;
    pool.submit([&] {
      {
        std::lock_guard<std::mutex> lock(mu);
        ids.insert(std::this_thread::get_id());
      }
      done.set_value();
    });
    done.get_future().wait();
  }
  // A job may be submitted just before the last one's thread is idle again:
  // then a second thread starts; never one per job.
  EXPECT_LE(ids.size(), 10u);
  EXPECT_LE(pool.threads(), 10u);
}

TEST(WorkerPool, ThreadsIdleLongerThanTheLimitEnd) {
  WorkerPool pool(20ms);
  std::promise<void> done;
  pool.submit([&] { done.set_value(); });
  done.get_future().wait();
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (pool.threads() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(pool.threads(), 0u);
  // And it still runs jobs afterwards.
  std::promise<void> again;
  pool.submit([&] { again.set_value(); });
  EXPECT_EQ(again.get_future().wait_for(10s), std::future_status::ready);
}

}  // namespace
}  // namespace rw
