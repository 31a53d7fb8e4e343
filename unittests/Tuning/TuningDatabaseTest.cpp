//===- TuningDatabaseTest.cpp - Round trip, buckets, lookup, errors -------===//

#include "hybrid/Tuning/TuningDatabase.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"

#include <gtest/gtest.h>

#include <fstream>

using namespace hybrid;

namespace {
TuningEntry entry(const char *target, int64_t bucket, int64_t qTile,
                  int64_t kTile, double ms = 0, double defaultMs = 0) {
  TuningEntry e;
  e.target = target;
  e.kernel = "sig";
  e.seqBucket = bucket;
  e.qTile = qTile;
  e.kTile = kTile;
  e.ms = ms;
  e.defaultMs = defaultMs;
  return e;
}

/// A temporary JSON file, removed when it goes out of scope.
class TempFile {
public:
  explicit TempFile(const char *name) {
    llvm::SmallString<128> path;
    llvm::sys::fs::createTemporaryFile(name, "json", path);
    this->path = path.str().str();
    remover.setFile(path);
  }
  const std::string &getPath() const { return path; }

private:
  std::string path;
  llvm::FileRemover remover;
};
} // namespace

TEST(TuningDatabase, Buckets) {
  EXPECT_EQ(TuningDatabase::getBucket(1), 256);
  EXPECT_EQ(TuningDatabase::getBucket(256), 256);
  EXPECT_EQ(TuningDatabase::getBucket(257), 512);
  EXPECT_EQ(TuningDatabase::getBucket(4096), 4096);
  EXPECT_EQ(TuningDatabase::getBucket(100000), 131072);
}

TEST(TuningDatabase, RoundTripAndReplace) {
  TuningDatabase db;
  db.add(entry("cpu:x", 4096, 64, 128, 1.5, 2.0));
  db.add(entry("cpu:x", 1024, 32, 64, 0.5, 0.5));
  db.add(entry("cpu:x", 4096, 128, 64, 1.2, 2.0)); // replaces the first
  ASSERT_EQ(db.getEntries().size(), 2u);
  TempFile file("tuning");
  std::string path = file.getPath(), error;
  ASSERT_TRUE(db.save(path, error)) << error;
  TuningDatabase back;
  ASSERT_TRUE(back.load(path, error)) << error;
  ASSERT_EQ(back.getEntries().size(), 2u);
  const TuningEntry *e = back.lookup("cpu:x", "sig", 4000);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->qTile, 128);
  EXPECT_EQ(e->kTile, 64);
  EXPECT_DOUBLE_EQ(e->ms, 1.2);
  EXPECT_DOUBLE_EQ(e->defaultMs, 2.0);
}

TEST(TuningDatabase, GPUVariantsRoundTrip) {
  TuningDatabase db;
  TuningEntry e = entry("cuda:sm_90a", 8192, 64, 128, 0.8, 1.1);
  GPUKernelVariant v;
  v.tensorCores = TensorCores::Wgmma;
  v.tma = true;
  v.stages = 2;
  v.softmaxOverlap = true;
  v.warpSpecialized = true;
  v.pingPong = true;
  v.warps = 8;
  v.rescaleThreshold = 4;
  v.minCtasPerSM = 1;
  v.valueSlice = 128;
  e.gpu = v;
  e.device = "NVIDIA H100 80GB HBM3";
  db.add(e);
  db.add(entry("cpu:x", 8192, 32, 64)); // no variant
  TempFile file("tuning");
  std::string path = file.getPath(), error;
  ASSERT_TRUE(db.save(path, error)) << error;
  TuningDatabase back;
  ASSERT_TRUE(back.load(path, error)) << error;
  const TuningEntry *gpu = back.lookup("cuda:sm_90a", "sig", 8192);
  ASSERT_TRUE(gpu && gpu->gpu);
  EXPECT_TRUE(*gpu->gpu == v);
  EXPECT_EQ(gpu->gpu->getName(), "wgmma.tma.s2.overlap.ws.pp.w8.t4.m1.v128");
  EXPECT_EQ(gpu->device, "NVIDIA H100 80GB HBM3");
  EXPECT_FALSE(back.lookup("cpu:x", "sig", 8192)->gpu);
  GPUKernelVariant rows;
  rows.warpRows = 32;
  EXPECT_EQ(rows.getName(), "mma.sync.w4.r32");
  rows.rescaleThreshold = 0.5;
  rows.minCtasPerSM = 3;
  EXPECT_EQ(rows.getName(), "mma.sync.w4.r32.t0.5.m3");
}

TEST(TuningDatabase, LookupPicksNearestBucketAndFallsBack) {
  TuningDatabase db;
  db.add(entry("cpu:x", 1024, 16, 32, 0, 0));
  db.add(entry("cpu:x", 16384, 128, 64, 0, 0));
  db.add(entry("cpu:y", 4096, 64, 64, 0, 0));
  EXPECT_EQ(db.lookup("cpu:x", "sig", 1000)->qTile, 16);    // same bucket
  EXPECT_EQ(db.lookup("cpu:x", "sig", 2048)->qTile, 16);    // 1 vs 3 away
  EXPECT_EQ(db.lookup("cpu:x", "sig", 4096)->qTile, 128);   // 2 vs 2: larger
  EXPECT_EQ(db.lookup("cpu:x", "sig", 131072)->qTile, 128); // beyond
  EXPECT_EQ(db.lookup("cpu:x", "other", 1024), nullptr);    // fallback
  EXPECT_EQ(db.lookup("cpu:z", "sig", 1024), nullptr);      // other machine
}

TEST(TuningDatabase, ErrorsNameTheField) {
  struct Case {
    const char *text, *message;
  } cases[] = {
      {"{", "(file): not valid JSON"},
      {"{\"entries\": []}", "version: missing or not an integer"},
      {"{\"version\": 2, \"entries\": []}",
       "version: this compiler reads version 1, not 2"},
      {"{\"version\": 1}", "entries: missing or not an array"},
      {"{\"version\": 1, \"entries\": [{\"target\": \"t\", \"kernel\": \"k\", "
       "\"seq_bucket\": 256, \"q_tile\": 0, \"k_tile\": 64}]}",
       "entries[0].q_tile: missing or not a positive integer"},
      {"{\"version\": 1, \"entries\": [{\"kernel\": \"k\"}]}",
       "entries[0].target: missing or not a string"},
      {"{\"version\": 1, \"entries\": [{\"target\": \"cuda:sm_90a\", "
       "\"kernel\": \"k\", "
       "\"seq_bucket\": 256, \"q_tile\": 64, \"k_tile\": 64, \"gpu\": 1}]}",
       "entries[0].gpu: not an object"},
      {"{\"version\": 1, \"entries\": [{\"target\": \"cuda:sm_90a\", "
       "\"kernel\": \"k\", "
       "\"seq_bucket\": 256, \"q_tile\": 64, \"k_tile\": 64, \"gpu\": "
       "{\"tensor_cores\": \"wmma\"}}]}",
       "entries[0].gpu.tensor_cores: not \"mma.sync\" or \"wgmma\""},
      {"{\"version\": 1, \"entries\": [{\"target\": \"cuda:sm_90a\", "
       "\"kernel\": \"k\", "
       "\"seq_bucket\": 256, \"q_tile\": 64, \"k_tile\": 64, \"gpu\": "
       "{\"tma\": 1}}]}",
       "entries[0].gpu.tma: not a boolean"},
      {"{\"version\": 1, \"entries\": [{\"target\": \"cuda:sm_90a\", "
       "\"kernel\": \"k\", "
       "\"seq_bucket\": 256, \"q_tile\": 64, \"k_tile\": 64, \"gpu\": "
       "{\"stages\": 0}}]}",
       "entries[0].gpu.stages: not a positive integer"},
      {"{\"version\": 1, \"entries\": [{\"target\": \"cuda:sm_90a\", "
       "\"kernel\": \"k\", "
       "\"seq_bucket\": 256, \"q_tile\": 64, \"k_tile\": 64, \"gpu\": "
       "{\"min_ctas_per_sm\": -1}}]}",
       "entries[0].gpu.min_ctas_per_sm: not an integer >= 0"},
      {"{\"version\": 1, \"entries\": [{\"target\": \"cuda:sm_90a\", "
       "\"kernel\": \"k\", "
       "\"seq_bucket\": 256, \"q_tile\": 64, \"k_tile\": 64, \"gpu\": "
       "{\"rescale_threshold\": \"8\"}}]}",
       "entries[0].gpu.rescale_threshold: not a number"},
      {"{\"version\": 1, \"entries\": [{\"target\": \"cuda:sm_90a\", "
       "\"kernel\": \"k\", "
       "\"seq_bucket\": 256, \"q_tile\": 64, \"k_tile\": 64, \"gpu\": "
       "{\"warp_row\": 32}}]}",
       "entries[0].gpu.warp_row: not a field of a kernel variant"},
      {"{\"version\": 1, \"entries\": [{\"target\": \"cuda:sm_90a\", "
       "\"kernel\": \"k\", "
       "\"seq_bucket\": 256, \"q_tile\": 64, \"k_tile\": 64}]}",
       "entries[0].gpu: missing (a cuda: target's entry names its kernel "
       "variant)"},
      {"{\"version\": 1, \"entries\": [{\"target\": \"cpu:x\", \"kernel\": "
       "\"k\", "
       "\"seq_bucket\": 256, \"q_tile\": 64, \"k_tile\": 64, \"gpu\": {}}]}",
       "entries[0].gpu: only for cuda: targets"},
  };
  for (const Case &c : cases) {
    TempFile file("bad");
    std::string path = file.getPath(), error;
    std::ofstream(path) << c.text;
    TuningDatabase db;
    EXPECT_FALSE(db.load(path, error)) << c.text;
    EXPECT_NE(error.find(c.message), std::string::npos) << error;
  }
  TuningDatabase db;
  std::string error;
  EXPECT_FALSE(db.load("/nonexistent/tuning.json", error));
  EXPECT_NE(error.find("cannot be read"), std::string::npos) << error;
}
