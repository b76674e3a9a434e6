// Entry point of the `focus` command: parses the subcommand and its options, runs it, and turns
// every focus::Error into a message on stderr and a non-zero exit code.
#pragma once

namespace focus {
int run_cli(int argc, char** argv);
}
