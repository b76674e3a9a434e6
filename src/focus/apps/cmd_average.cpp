// `focus average --out FILE IN...`: checkpoint averaging of model files (train/average.hpp).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "focus/apps/commands.hpp"
#include "focus/train/average.hpp"

namespace focus {

Command add_average_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "average", "average the weights of model files of one model (e.g. a run's last epochs, "
                 "written with `train --keep-epochs N`) into one model file");
  struct Opts {
    std::vector<std::string> inputs;
    std::string out;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("INPUTS", o->inputs, "model files (.safetensors) of one model")->required();
  sub->add_option("-o,--out", o->out, "output model file")->required();
  return [o] {
    const AverageReport r = average_model_files(o->inputs, o->out);
    std::printf("averaged %d files (%d float tensors, %lld parameters) into %s\n", r.files,
                r.tensors, r.parameters, o->out.c_str());
    return 0;
  };
}

}  // namespace focus
