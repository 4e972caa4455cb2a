// tools/cli/build_info.h — the commit the heterokv binary was built from, for --version and the
// records of bench and eval: the short hash, "+dirty" when tracked files differed from it,
// "unknown" outside a git checkout. Defined in a source file generated at every build
// (cmake/HkvGitCommit.cmake).
#pragma once

const char* hkv_git_commit();
