// heterokv — command-line front end. Subcommands are added in tools/cli/cmd_*.cpp.
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
    std::fprintf(stderr, "usage: heterokv <command> [options]\n");
    return argc > 1 && !std::strcmp(argv[1], "--help") ? 0 : 2;
}
