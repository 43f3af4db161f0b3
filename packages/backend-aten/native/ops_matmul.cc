// Matmul kernels.
#include "common.h"

namespace aten_addon {

void InitMatmul(Napi::Env env, Napi::Object exports) {}

}  // namespace aten_addon
