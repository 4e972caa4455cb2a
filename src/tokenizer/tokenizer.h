// tokenizer/tokenizer.h — the Tokenizer is public: include/heterokv/tokenizer.h.
#pragma once

#include "heterokv/tokenizer.h"
