//===- TuningResults.cpp - hybrid-tune's report: a table and a plot -------===//

#include "TuningResults.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>

using namespace llvm;
using namespace hybrid::tune;

std::string Candidate::getName() const {
  if (gpu)
    return gpu->getName() + ".k" + std::to_string(kTile);
  return (qTile ? std::to_string(qTile) : "auto") + "/" + std::to_string(kTile);
}

const Trial *hybrid::tune::getBest(const KernelResult &kernel) {
  const Trial *best = nullptr;
  for (const Trial &t : kernel.trials)
    if (t.passed && (!best || t.ms < best->ms))
      best = &t;
  return best;
}

bool hybrid::tune::writeReport(const std::string &reportDir,
                               const TuningSetup &setup,
                               const std::vector<KernelResult> &kernels) {
  bool gpu = setup.gpu;
  if (std::error_code ec = sys::fs::create_directories(reportDir)) {
    WithColor::error(errs(), "hybrid-tune")
        << reportDir << ": " << ec.message() << "\n";
    return false;
  }
  std::error_code ec;
  raw_fd_ostream md(reportDir + "/tuning-report.md", ec);
  md << "# Tuning report\n\nTarget " << setup.target
     << (gpu ? " (" + setup.device + ")" : "") << ", prompt " << setup.seqLen
     << " tokens, median of " << setup.repeat << " runs"
     << (gpu ? " (device time of the attention kernel)" : "") << ". "
     << setup.check << "\n";
  for (const KernelResult &k : kernels) {
    md << "\n## " << k.symbol << " (" << k.signature << ", layer " << k.layer
       << ")\n\n| " << (gpu ? "variant" : "q-tile")
       << " | k-tile | kernel tiles | "
       << (gpu ? "registers (spill bytes) | " : "") << "ms | vs default | |\n"
       << "|---:|---:|---|" << (gpu ? "---:|" : "") << "---:|---:|---|\n";
    double base = k.trials.empty() ? 0 : k.trials.front().ms;
    for (const Trial &t : k.trials)
      md << "| "
         << (gpu                 ? t.candidate.gpu->getName()
             : t.candidate.qTile ? std::to_string(t.candidate.qTile)
                                 : std::string("auto"))
         << " | " << t.candidate.kTile << " | "
         << (t.qTile ? formatv("{0} x {1}", t.qTile, t.kTile).str() : "-")
         << (t.valueSlices > 1
                 ? formatv(", {0} value slices", t.valueSlices).str()
                 : std::string())
         << " | "
         << (!gpu ? std::string()
             : t.registers >= 0
                 ? formatv("{0} ({1}){2} | ", t.registers, t.spillBytes,
                           t.performanceLosses ? formatv(", {0} ptxas loss",
                                                         t.performanceLosses)
                                                     .str()
                                               : std::string())
                       .str()
                 : std::string("- | "))
         << (t.ms > 0 ? formatv("{0:f2}", t.ms).str() : "-") << " | "
         << (t.ms > 0 && base > 0 ? formatv("{0:f2}x", base / t.ms).str() : "-")
         << " | " << (t.status.empty() ? "ok" : t.status) << " |\n";
  }
  // One row of bars per kernel: candidate time, the winner filled.
  raw_fd_ostream svg(reportDir + "/tuning-report.svg", ec);
  // GPU names are long: their labels slant.
  int barWidth = 26, rowHeight = gpu ? 230 : 150, left = 60;
  size_t most = 0;
  for (const KernelResult &k : kernels)
    most = std::max(most, k.trials.size());
  int width = left + int(most) * (barWidth + 6) + 20;
  int height = int(kernels.size()) * rowHeight + 20;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width
      << "' height='" << height
      << "' font-family='sans-serif' font-size='9'>\n";
  for (size_t i = 0; i < kernels.size(); ++i) {
    const KernelResult &k = kernels[i];
    int top = int(i) * rowHeight + 20, base = top + rowHeight - 40;
    double maxMs = 0;
    for (const Trial &t : k.trials)
      maxMs = std::max(maxMs, t.ms);
    const Trial *best = getBest(k);
    if (gpu)
      base = top + rowHeight - 120;
    svg << "<text x='4' y='" << top - 4 << "' font-size='11'>" << k.symbol
        << " (" << k.signature << "): " << (gpu ? "device " : "")
        << "ms per prefill of " << setup.seqLen << " tokens</text>\n";
    for (size_t j = 0; j < k.trials.size(); ++j) {
      const Trial &t = k.trials[j];
      int x = left + int(j) * (barWidth + 6);
      int h = maxMs > 0 ? int((base - top - 10) * t.ms / maxMs) : 0;
      svg << "<rect x='" << x << "' y='" << base - h << "' width='" << barWidth
          << "' height='" << h << "' fill='"
          << (&t == best ? "#1f77b4"
              : t.passed ? "#aec7e8"
                         : "#d62728")
          << "'/>\n<text x='" << x << "' y='" << base + 12 << "'"
          << (gpu ? formatv(" transform='rotate(60 {0} {1})'", x, base + 12)
                        .str()
                  : "")
          << ">" << t.candidate.getName() << "</text>\n";
      if (t.ms > 0)
        svg << "<text x='" << x << "' y='" << base - h - 2 << "'>"
            << formatv("{0:f1}", t.ms) << "</text>\n";
    }
    if (!gpu)
      svg << "<text x='4' y='" << base + 24 << "'>q-tile/k-tile</text>\n";
  }
  svg << "</svg>\n";
  return true;
}
