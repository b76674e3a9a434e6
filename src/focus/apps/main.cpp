// The focus command line: a thin main over apps/cli.
#include "focus/apps/cli.hpp"

int main(int argc, char** argv) { return focus::run_cli(argc, argv); }
