// Conv kernels.
#include "common.h"

namespace aten_addon {

void InitConv(Napi::Env env, Napi::Object exports) {}

}  // namespace aten_addon
