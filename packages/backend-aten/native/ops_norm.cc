// Norm kernels.
#include "common.h"

namespace aten_addon {

void InitNorm(Napi::Env env, Napi::Object exports) {}

}  // namespace aten_addon
