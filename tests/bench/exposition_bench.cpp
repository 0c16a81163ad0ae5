// /metrics rendering cost: a scrape is served from memory. Measures a scrape of
// an unchanged snapshot (the common case: cached text) and a scrape right after a
// collector wrote (snapshot rebuild + prometheus-cpp serialisation), each as plain text
// and gzip-encoded (what Prometheus asks for).
#include <benchmark/benchmark.h>

#include "agent/core/sample_store.h"
#include "exporters/prometheus/exposition.h"

namespace {

void fill(dbpulse::SampleStore& store, int series) {
  dbpulse::SampleBatch batch;
  for (int i = 0; i < series; ++i) {
    const std::string family = "dbpulse_bench_family_" + std::to_string(i % 50);
    batch.gauge(family, "A benchmark family.",
                dbpulse::Labels{{"datname", "chat"},
                                {"relname", "table_" + std::to_string(i)},
                                {"schemaname", "public"}},
                i * 1.5);
  }
  store.write("bench", batch, std::chrono::hours(1));
}

// Scrapes of an unchanged snapshot: the cached text (or its cached gzip) is handed out.
void scrapeUnchanged(benchmark::State& state, bool gzip) {
  dbpulse::SystemClock clock;
  dbpulse::SampleStore store(clock);
  fill(store, static_cast<int>(state.range(0)));
  dbpulse::exporters::Exposition exposition(store);
  for (auto _ : state) {
    auto text = gzip ? exposition.renderGzip() : exposition.render();
    benchmark::DoNotOptimize(text->size());
  }
  state.counters["series"] = static_cast<double>(state.range(0));
  state.counters["bytes"] =
      static_cast<double>((gzip ? exposition.renderGzip() : exposition.render())->size());
}

void BM_ScrapeUnchanged(benchmark::State& state) { scrapeUnchanged(state, false); }
BENCHMARK(BM_ScrapeUnchanged)->Arg(1000)->Arg(5000)->Unit(benchmark::kMicrosecond);

// One scrape right after a collector wrote: rebuild, serialise (and compress, once).
void scrapeAfterWrite(benchmark::State& state, bool gzip) {
  dbpulse::SystemClock clock;
  dbpulse::SampleStore store(clock);
  fill(store, static_cast<int>(state.range(0)));
  dbpulse::exporters::Exposition exposition(store);
  dbpulse::SampleBatch tick;
  tick.gauge("dbpulse_tick", "x", {}, 1);
  for (auto _ : state) {
    state.PauseTiming();
    store.write("tick", tick, std::chrono::hours(1));
    state.ResumeTiming();
    auto text = gzip ? exposition.renderGzip() : exposition.render();
    benchmark::DoNotOptimize(text->size());
  }
  state.counters["series"] = static_cast<double>(state.range(0));
}

void BM_ScrapeAfterWrite(benchmark::State& state) { scrapeAfterWrite(state, false); }
BENCHMARK(BM_ScrapeAfterWrite)->Arg(1000)->Arg(5000)->Unit(benchmark::kMicrosecond);

void BM_ScrapeUnchangedGzip(benchmark::State& state) { scrapeUnchanged(state, true); }
BENCHMARK(BM_ScrapeUnchangedGzip)->Arg(1000)->Arg(5000)->Unit(benchmark::kMicrosecond);

void BM_ScrapeAfterWriteGzip(benchmark::State& state) { scrapeAfterWrite(state, true); }
BENCHMARK(BM_ScrapeAfterWriteGzip)->Arg(1000)->Arg(5000)->Unit(benchmark::kMicrosecond);

}  // namespace
