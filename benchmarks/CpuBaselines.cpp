//===- CpuBaselines.cpp - OpenBLAS baselines for the CPU benchmark -------===//
//
// Measures, on this machine and in the same run as the compiled kernels:
//  - OpenBLAS sgemm on large square matrices (the machine's practical peak);
//  - unfused attention: per head S = Q K^T (sgemm), masked softmax, O = P V
//    (sgemm), the way a framework without a fused kernel computes it;
//  - a large read and a large memcpy, each split over the same number of
//    threads: bytes read per second (what a decode step, which reads its
//    cache once, can hope for) and bytes copied per second.
// Prints JSON. Useful FLOP/s count visible query-key pairs only.
//
//===----------------------------------------------------------------------===//

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Median of `repeats` timed runs after one warm-up.
template <typename F> double medianSeconds(int repeats, F &&run) {
  run();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    double start = now();
    run();
    times.push_back(now() - start);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

/// body(t) on `threads` threads at once, t = 0 .. threads - 1.
template <typename F> void onThreads(int threads, F &&body) {
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] { body(t); });
  for (std::thread &w : workers)
    w.join();
}

std::vector<float> randomVector(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist;
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(rng);
  return v;
}

double sgemmGflops(int n) {
  std::vector<float> a = randomVector(size_t(n) * n, 1),
                     b = randomVector(size_t(n) * n, 2), c(size_t(n) * n);
  double seconds = medianSeconds(5, [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f,
                a.data(), n, b.data(), n, 0.0f, c.data(), n);
  });
  return 2.0 * n * n * double(n) / seconds / 1e9;
}

/// One head at a time: q, k, v are [seq, dim] slices of [1, seq, heads, dim].
double unfusedSeconds(int seq, int heads, int dim, int window) {
  std::vector<float> q = randomVector(size_t(seq) * heads * dim, 3),
                     k = randomVector(size_t(seq) * heads * dim, 4),
                     v = randomVector(size_t(seq) * heads * dim, 5),
                     out(size_t(seq) * heads * dim), scores(size_t(seq) * seq);
  int ld = heads * dim;
  float scale = 1.0f / std::sqrt(float(dim));
  return medianSeconds(3, [&] {
    for (int h = 0; h < heads; ++h) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, seq, seq, dim, scale,
                  q.data() + h * dim, ld, k.data() + h * dim, ld, 0.0f,
                  scores.data(), seq);
      for (int i = 0; i < seq; ++i) {
        float *row = scores.data() + size_t(i) * seq;
        int begin = window > 0 ? std::max(0, i - window + 1) : 0;
        float max = -std::numeric_limits<float>::infinity();
        for (int j = begin; j <= i; ++j)
          max = std::max(max, row[j]);
        float sum = 0;
        for (int j = 0; j < seq; ++j) {
          float p = (j >= begin && j <= i) ? std::exp(row[j] - max) : 0.0f;
          row[j] = p;
          sum += p;
        }
        for (int j = begin; j <= i; ++j)
          row[j] /= sum;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, seq, dim, seq,
                  1.0f, scores.data(), seq, v.data() + h * dim, ld, 0.0f,
                  out.data() + h * dim, ld);
    }
  });
}

/// GB/s of copying `megabytes` MB, each of `threads` threads its own part.
double memcpyGbps(int megabytes, int threads) {
  size_t bytes = size_t(megabytes) << 20;
  std::vector<char> from(bytes, 1), to(bytes, 0);
  size_t part = bytes / threads;
  auto copy = [&] {
    onThreads(threads, [&](int t) {
      std::memcpy(to.data() + t * part, from.data() + t * part, part);
    });
  };
  return double(bytes) / medianSeconds(5, copy) / 1e9;
}

/// XOR of the 64-bit words p[0, n), 64 bytes an iteration; with
/// `prefetchAhead`, each iteration first asks for the line that many bytes on
/// into L2 (a single stream a core reads only by itself stays below the
/// memory's bandwidth on some CPUs: +20% on a Xeon; the decode kernel
/// prefetches too).
uint64_t foldWords(const uint64_t *p, size_t n, size_t prefetchAhead) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t ahead = prefetchAhead / sizeof(uint64_t);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    if (ahead)
      __builtin_prefetch(p + i + ahead, /*rw=*/0, /*locality=*/2);
    a ^= p[i] ^ p[i + 4];
    b ^= p[i + 1] ^ p[i + 5];
    c ^= p[i + 2] ^ p[i + 6];
    d ^= p[i + 3] ^ p[i + 7];
  }
  return a ^ b ^ c ^ d;
}

/// GB/s of reading `megabytes` MB once, each of `threads` threads its own
/// part (64-bit words folded by XOR so that nothing is skipped): the faster
/// of a plain loop and one that prefetches 4 KiB ahead.
double readGbps(int megabytes, int threads) {
  size_t words = (size_t(megabytes) << 20) / sizeof(uint64_t);
  std::vector<uint64_t> data(words);
  std::iota(data.begin(), data.end(), uint64_t(1));
  std::vector<uint64_t> folds(threads);
  size_t part = words / threads;
  double best = 0;
  for (size_t prefetchAhead : {size_t(0), size_t(4096)}) {
    auto read = [&] {
      onThreads(threads, [&](int t) {
        folds[t] = foldWords(data.data() + t * part, part, prefetchAhead);
      });
    };
    double seconds = medianSeconds(5, read);
    best = std::max(best, double(words * sizeof(uint64_t)) / seconds / 1e9);
  }
  // Use the folds so that the reads are not optimised away.
  if (std::accumulate(folds.begin(), folds.end(), uint64_t(0),
                      std::bit_xor<uint64_t>()) == 42)
    std::fprintf(stderr, "\n");
  return best;
}

} // namespace

int main(int argc, char **argv) {
  int heads = 8, dim = 128, sgemmSize = 2048, memcpyMegabytes = 512;
  std::vector<int> seqs;
  std::vector<int> windows = {0};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (arg == "--heads")
      heads = next();
    else if (arg == "--head-dim")
      dim = next();
    else if (arg == "--seq-len")
      seqs.push_back(next());
    else if (arg == "--window")
      windows.push_back(next());
    else if (arg == "--sgemm-size")
      sgemmSize = next();
    else if (arg == "--memcpy-mb")
      memcpyMegabytes = next();
    else {
      std::fprintf(stderr,
                   "usage: hybrid-cpu-baselines [--heads H] [--head-dim D] "
                   "[--seq-len N]... [--window W]... [--sgemm-size N] "
                   "[--memcpy-mb N]\n");
      return 2;
    }
  }
  if (heads <= 0 || dim <= 0 || sgemmSize <= 0 || memcpyMegabytes <= 0) {
    std::fprintf(stderr, "hybrid-cpu-baselines: sizes must be positive\n");
    return 2;
  }
  int threads = openblas_get_num_threads();
  std::printf("{\n  \"threads\": %d,\n  \"openblas_core\": \"%s\",\n"
              "  \"sgemm\": {\"size\": %d, \"gflops\": %.2f},\n"
              "  \"read\": {\"megabytes\": %d, \"gbytes_per_s\": %.2f},\n"
              "  \"memcpy\": {\"megabytes\": %d, \"gbytes_per_s\": %.2f},\n"
              "  \"unfused\": [",
              threads, openblas_get_corename(), sgemmSize,
              sgemmGflops(sgemmSize), memcpyMegabytes,
              readGbps(memcpyMegabytes, threads), memcpyMegabytes,
              memcpyGbps(memcpyMegabytes, threads));
  const char *sep = "";
  for (int seq : seqs)
    for (int window : windows) {
      double seconds = unfusedSeconds(seq, heads, dim, window);
      double pairs = 0;
      for (int i = 0; i < seq; ++i)
        pairs += window > 0 ? std::min(i + 1, window) : i + 1;
      std::printf("%s\n    {\"seq_len\": %d, \"window\": %d, \"ms\": %.3f, "
                  "\"gflops\": %.2f}",
                  sep, seq, window, seconds * 1e3,
                  4.0 * pairs * dim * heads / seconds / 1e9);
      sep = ",";
    }
  std::printf("\n  ]\n}\n");
  return 0;
}
