// testbed_clone_bench URI IMAGES_DIR BASE N [PARALLEL]: makes a testbed pool
// under IMAGES_DIR and N linked clones (qcow2 overlays of BASE, qcow2, with
// the backing format explicit) through the libvirt API, PARALLEL at a time
// (default 1), then removes the pool. Prints the time spent creating. Run
// by bench/testbed_clones.sh against a private libvirtd.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "testbed/volume.h"

using namespace rw::testbed;

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s URI IMAGES_DIR BASE N [PARALLEL]\n", argv[0]);
    return 2;
  }
  const std::string uri = argv[1], dir = argv[2], base = argv[3];
  const int n = std::atoi(argv[4]);
  const int parallel = argc > 5 ? std::max(1, std::atoi(argv[5])) : 1;
  auto host = Virt::open(uri);
  if (!host) return std::fprintf(stderr, "%s\n", host.error().message.c_str()), 1;
  const std::string id = "bench-" + std::to_string(::getpid());
  auto pool = ensure_pool(*host, id, dir);
  if (!pool) return std::fprintf(stderr, "%s\n", pool.error().message.c_str()), 1;
  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < parallel; ++w)
    workers.emplace_back([&] {
      for (int i; (i = next++) < n;) {
        auto v = ensure_overlay(*host, pool->get(), "c" + std::to_string(i) + ".qcow2", base, "qcow2", 64 << 20);
        if (!v) {
          std::fprintf(stderr, "%s\n", v.error().message.c_str());
          ++failed;
        }
      }
    });
  for (auto& t : workers) t.join();
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto removed = remove_pool(*host, id);
  std::printf("%d clones, parallel %d: %.1f ms (%.2f ms each)%s\n", n, parallel, ms, ms / n,
              failed ? ", some FAILED" : "");
  return failed || !removed ? 1 : 0;
}
