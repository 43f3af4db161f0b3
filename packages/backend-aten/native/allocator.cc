// A caching CPU allocator for ATen. Fresh multi-megabyte buffers page-fault on first touch
// (20-40 ms each for 64 MB here), and a training step allocates the same sizes every step,
// so freed blocks are kept in per-size free lists and handed out again.
// The DataPtr context is the data pointer itself: oneDNN uses raw_allocate(), which requires it.
#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common.h"

namespace aten_addon {
namespace {

constexpr size_t kAlign = 64;
// Above this many cached (free) bytes, freed blocks go back to the OS instead.
constexpr int64_t kMaxCached = int64_t(4) << 30;

std::mutex mu;
std::unordered_map<void*, size_t> live;                   // ptr -> rounded size
std::unordered_map<size_t, std::vector<void*>> freeLists;  // rounded size -> blocks
int64_t bytesInUse = 0, bytesCached = 0, numAllocs = 0;

size_t RoundUp(size_t n) {
  if (n <= 4096) return (n + kAlign - 1) / kAlign * kAlign;
  return (n + 4095) / 4096 * 4096;
}

void Free(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> g(mu);
  auto it = live.find(p);
  if (it == live.end()) { std::free(p); return; }
  size_t n = it->second;
  live.erase(it);
  bytesInUse -= n;
  numAllocs--;
  if (bytesCached + int64_t(n) > kMaxCached) { std::free(p); return; }
  freeLists[n].push_back(p);
  bytesCached += n;
}

struct CachingAllocator final : public at::Allocator {
  at::DataPtr allocate(size_t n) const override {
    size_t r = RoundUp(n == 0 ? 1 : n);
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> g(mu);
      auto it = freeLists.find(r);
      if (it != freeLists.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        bytesCached -= r;
      }
    }
    if (!p) {
      p = std::aligned_alloc(kAlign, r);
      if (!p) throw std::bad_alloc();
    }
    {
      std::lock_guard<std::mutex> g(mu);
      live[p] = r;
      bytesInUse += r;
      numAllocs++;
    }
    return {p, p, &Free, at::Device(at::DeviceType::CPU)};
  }
  at::DeleterFnPtr raw_deleter() const override { return &Free; }
};

CachingAllocator allocator;

}  // namespace

void InstallCachingAllocator() { c10::SetCPUAllocator(&allocator, /*priority=*/100); }

int64_t AllocatorBytesInUse() { std::lock_guard<std::mutex> g(mu); return bytesInUse; }
int64_t AllocatorBytesCached() { std::lock_guard<std::mutex> g(mu); return bytesCached; }
int64_t AllocatorNumAllocations() { std::lock_guard<std::mutex> g(mu); return numAllocs; }

void AllocatorEmptyCache() {
  std::lock_guard<std::mutex> g(mu);
  for (auto& kv : freeLists)
    for (void* p : kv.second) std::free(p);
  freeLists.clear();
  bytesCached = 0;
}

}  // namespace aten_addon
