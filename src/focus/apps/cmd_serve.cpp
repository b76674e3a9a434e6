// `focus serve` (the HTTP server, serve/server.hpp) and `focus keys create` (API keys,
// serve/keys.hpp). SIGTERM and SIGINT start a graceful drain: they are blocked in every thread
// and taken by one waiting thread, so no handler runs in a signal context; a second signal
// during the drain exits at once (status 1).
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <pthread.h>
#include <thread>

#include "focus/apps/commands.hpp"
#include "focus/serve/keys.hpp"
#include "focus/serve/options.hpp"
#include "focus/serve/server.hpp"

namespace focus {
namespace {

int serve(const ServeOptions& flags, const std::string& config_file, bool dump,
          const std::vector<std::string>& set_by_flag) {
  // Precedence: defaults < config file < flags given on the command line.
  ServeOptions opt;
  if (!config_file.empty()) load_config_file(opt, config_file);
  const nlohmann::json given = to_json(flags);
  nlohmann::json overrides = nlohmann::json::object();
  for (const std::string& name : set_by_flag) overrides[name] = given[name];
  apply_json(opt, overrides, "command line");
  if (dump) {
    std::cout << to_json(opt).dump(2) << "\n";
    return 0;
  }
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGUSR2);  // the internal wake-up of the waiting threads
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before any thread exists
  Server server(opt);
  const int port = server.bind();
  std::fprintf(stderr, "focus serve: listening on %s://%s:%d\n", opt.tls_cert.empty() ? "http" : "https",
               opt.host.c_str(), port);
  std::atomic<bool> clean{true};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (sig == SIGUSR2) return;  // woken by the main thread after run() ended
    std::fprintf(stderr, "focus serve: %s: draining (at most %lld ms)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 static_cast<long long>(opt.drain_timeout_ms));
    std::thread second([&] {
      int again = 0;
      sigwait(&stop_signals, &again);
      if (again == SIGUSR2) return;
      std::fprintf(stderr, "focus serve: second signal: exiting without waiting\n");
      std::_Exit(1);
    });
    clean = server.shutdown();
    std::fprintf(stderr, "focus serve: %s\n", clean ? "drained: every admitted request was answered"
                                                    : "drain timed out: some requests were cut off");
    pthread_kill(second.native_handle(), SIGUSR2);
    second.join();
  });
  server.run();
  pthread_kill(waiter.native_handle(), SIGUSR2);  // no-op if it already returned
  waiter.join();
  return clean ? 0 : 1;
}

}  // namespace

Command add_serve_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "serve", "serve models over HTTP: KServe V2 and /v1 endpoints, dynamic batching, API keys, "
               "limits, Prometheus metrics, reload, graceful drain (docs/SERVING.md)");
  struct State {
    ServeOptions opt;
    std::string config;
    bool dump = false;
    std::vector<CLI::Option*> options;
    std::vector<std::string> names;
  };
  auto st = std::make_shared<State>();
  sub->add_option("--config", st->config, "JSON config file (flags override it)");
  sub->add_flag("--dump-config", st->dump, "print the effective configuration as JSON and exit");
  visit_fields(st->opt, [&](const char* name, auto& field, const char* help) {
    using F = std::decay_t<decltype(field)>;
    CLI::Option* o = nullptr;
    if constexpr (std::is_same_v<F, bool>)
      o = sub->add_option("--" + std::string(name), field, help)->default_val(field ? "true" : "false");
    else if constexpr (std::is_same_v<F, std::vector<std::string>>)
      o = sub->add_option("--" + std::string(name), field, help)->take_all();
    else if constexpr (std::is_same_v<F, std::vector<double>>)
      o = sub->add_option("--" + std::string(name), field, help)->take_all()->delimiter(',');
    else
      o = sub->add_option("--" + std::string(name), field, help)->capture_default_str();
    if (std::string(name) == "slo-ladder") o->delimiter(',');  // f32,int8 as well as f32 int8
    st->options.push_back(o);
    st->names.push_back(name);
  });
  return [st] {
    std::vector<std::string> given;
    for (size_t i = 0; i < st->options.size(); ++i)
      if (st->options[i]->count() > 0) given.push_back(st->names[i]);
    return serve(st->opt, st->config, st->dump, given);
  };
}

Command add_keys_command(CLI::App& app) {
  CLI::App* keys = app.add_subcommand("keys", "manage API keys for focus serve");
  keys->require_subcommand(1);
  CLI::App* create = keys->add_subcommand(
      "create", "add a key to a key file and print its secret once (only its SHA-256 is stored)");
  struct State {
    std::string file, id, roles = "infer";
    double rate = 0, burst = 0;
    int64_t quota = 0;
  };
  auto st = std::make_shared<State>();
  create->add_option("--file", st->file, "key file (created if missing)")->required();
  create->add_option("--id", st->id, "the key's name (logs and metrics show it)")->required();
  create->add_option("--roles", st->roles, "comma-separated: infer, explain, admin, metrics, review")->capture_default_str();
  create->add_option("--rate", st->rate, "requests per second (token bucket; 0 = unlimited)");
  create->add_option("--burst", st->burst, "bucket size (default: max(1, rate))");
  create->add_option("--daily-quota", st->quota, "requests per UTC day (0 = unlimited)");
  return [st] {
    ApiKey k;
    k.id = st->id;
    k.roles = parse_roles(st->roles);
    k.rate_per_s = st->rate;
    k.burst = st->burst;
    k.daily_quota = st->quota;
    FOCUS_CHECK(k.rate_per_s >= 0 && k.burst >= 0 && k.daily_quota >= 0, ValueError,
                "--rate, --burst and --daily-quota must be >= 0");
    const std::string secret = create_key(st->file, k);
    std::printf("%s\n", secret.c_str());
    std::fprintf(stderr, "focus keys: added '%s' (%s) to %s; the secret above is shown only now\n",
                 k.id.c_str(), roles_to_string(k.roles).c_str(), st->file.c_str());
    return 0;
  };
}

}  // namespace focus
