// Layout kernels.
#include "common.h"

namespace aten_addon {

void InitLayout(Napi::Env env, Napi::Object exports) {}

}  // namespace aten_addon
