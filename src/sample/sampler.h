// sample/sampler.h — the Sampler is public: include/heterokv/sampler.h.
#pragma once

#include "heterokv/sampler.h"
